// Command bench runs auditline's benchmarks on the local real stack and
// writes BENCHMARKS.md from that run's figures: each stage beside its ceiling
// (the existing Benchmark* functions of ingest, enrich, store and
// sinks/archive, run with `go test -bench` and parsed), ingest response
// times at 50 % and 90 % of its measured maximum rate, and the end-to-end
// pipeline — every stage as its own `auditline` process — with 1, 2 and 4
// partitions and consumers: sustained payloads/s, webhook-to-queryable and
// webhook-to-sealed latency, and each process's peak RSS.
//
//	source .data/env && go run ./bench            # full run, ~15 min, writes BENCHMARKS.md
//	go run ./bench --quick --out /tmp/b.md         # smoke test of the harness, ~2 min
//
// scripts/bench.sh wraps it (sources .data/env, starts the stack).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type options struct {
	quick      bool
	out        string
	partitions []int
	stages     bool
	e2e        bool
	duration   time.Duration
	bin        string
}

func main() {
	var o options
	var parts string
	flag.BoolVar(&o.quick, "quick", false, "small N and short runs: a smoke test of the harness, not figures to quote")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "write the report here")
	flag.StringVar(&parts, "partitions", "1,2,4", "end-to-end runs: partitions (and consumer processes per stage) of each")
	flag.BoolVar(&o.stages, "stages", true, "run the per-stage go test benchmarks")
	flag.BoolVar(&o.e2e, "e2e", true, "run the end-to-end pipeline runs")
	flag.DurationVar(&o.duration, "duration", 0, "send time of each load phase (default 30s, 4s with --quick)")
	flag.Parse()
	for _, p := range strings.Split(parts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			log.Fatalf("--partitions: %q", parts)
		}
		o.partitions = append(o.partitions, n)
	}
	if o.duration == 0 {
		o.duration = 30 * time.Second
		if o.quick {
			o.duration = 4 * time.Second
		}
	}
	for _, v := range []string{"AUDITLINE_KAFKA", "AUDITLINE_CLICKHOUSE", "AUDITLINE_S3", "AUDITLINE_S3_BUCKET"} {
		if os.Getenv(v) == "" {
			log.Fatalf("%s is not set: run deploy/local/start.sh all && source .data/env (or use scripts/bench.sh)", v)
		}
	}
	root, err := repoRoot()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.Chdir(root); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	rep := &report{opts: o, start: time.Now()}
	rep.machine = machineInfo(ctx)
	logf("machine: %s", rep.machine.summary())

	if o.stages {
		rep.stages = runStages(ctx, o)
	}
	if o.e2e {
		tmp, err := os.MkdirTemp("", "auditline-bench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		o.bin = filepath.Join(tmp, "auditline")
		if b, err := exec.Command("go", "build", "-o", o.bin, "./cmd/auditline").CombinedOutput(); err != nil {
			log.Fatalf("go build ./cmd/auditline: %v\n%s", err, b)
		}
		cleanLeftovers(ctx)
		rep.genRate = generatorRate(3 * time.Second)
		logf("loadgen generator alone: %.0f payloads/s on one core", rep.genRate)
		rep.ingestLat = runIngestLatency(ctx, o, tmp)
		for _, p := range o.partitions {
			rep.e2e = append(rep.e2e, runE2E(ctx, o, tmp, p))
		}
	}
	rep.end = time.Now()
	rep.loadEnd = loadAvg()
	var buf bytes.Buffer
	rep.write(&buf)
	if err := os.WriteFile(o.out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	logf("wrote %s (%s)", o.out, rep.end.Sub(rep.start).Round(time.Second))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func repoRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(b))), nil
}
