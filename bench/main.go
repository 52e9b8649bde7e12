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
	"strconv"
	"strings"
	"time"

	"github.com/auditline/auditline/internal/stacktest"
)

type options struct {
	quick      bool
	out        string
	partitions []int
	stages     bool
	e2e        bool
	duration   time.Duration
	servers    stacktest.Servers // the shared local stack
	ingestLat  bool
	perfDir    string
	backlog    bool
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
	flag.BoolVar(&o.ingestLat, "ingest-latency", true, "run ingest alone at its maximum, 50 % and 90 % rate before the end-to-end runs")
	flag.StringVar(&o.perfDir, "perf", "", "record a CPU profile of every stage process with perf(1) during each end-to-end fill, into this directory (<stage>-p<partitions>.data; read with 'perf report -i')")
	flag.BoolVar(&o.backlog, "backlog", false, "end to end: start enrich, store and archive only after the fill, so they catch up on a backlog — the worst case for their memory bounds, and a throughput figure loadgen does not share the cores with")
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
	var err error
	if o.servers, err = stacktest.ServersFromEnv(); err != nil {
		log.Fatalf("%v (or use scripts/bench.sh)", err)
	}
	if err := os.Chdir(stacktest.RepoRoot()); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	rep := &report{opts: o, start: time.Now(), kept: previousKept(o.out)}
	for _, k := range rep.kept {
		logf("keeping block %q of the previous report", k.Name)
	}
	rep.machine = machineInfo(ctx)
	logf("machine: %s", rep.machine.summary())

	if o.stages {
		rep.stages = runStages(ctx, o)
	}
	if o.e2e {
		// Build the binary before anything is timed (stacktest reuses it).
		if err := (&stacktest.Program{}).RunProgram(func(t stacktest.TB) { stacktest.Binary(t) }); err != nil {
			log.Fatal(err)
		}
		cleanLeftovers(ctx)
		rep.genRate = generatorRate(3 * time.Second)
		logf("loadgen generator alone: %.0f payloads/s on one core", rep.genRate)
		if o.ingestLat {
			rep.ingestLat = runIngestLatency(ctx, o)
		}
		if o.perfDir != "" {
			if err := os.MkdirAll(o.perfDir, 0o755); err != nil {
				log.Fatal(err)
			}
		}
		for _, p := range o.partitions {
			rep.e2e = append(rep.e2e, runE2E(ctx, o, p))
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

// previousKept reads the kept blocks (bench/kept.go) of the report being
// replaced: out when it exists, else the repository's BENCHMARKS.md (so a
// report written elsewhere shows them too).
func previousKept(out string) []keptBlock {
	b, err := os.ReadFile(out)
	if err != nil {
		b, _ = os.ReadFile("BENCHMARKS.md")
	}
	return keptBlocks(string(b))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
