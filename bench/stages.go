package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"time"
)

// stageRun is one `go test -bench` invocation.
type stageRun struct {
	Stage   string
	Pkg     string
	Bench   string
	Time    string // -benchtime
	Env     []string
	Results []Result
	Err     string // non-empty when the run failed (its output's tail)
	Took    time.Duration
}

func (s stageRun) get(name, unit string) (float64, bool) {
	r, ok := Find(s.Results, name)
	if !ok {
		return 0, false
	}
	v, ok := r.Metrics[unit]
	return v, ok
}

// runStages runs the stage benchmarks that already exist in the packages.
func runStages(ctx context.Context, o options) []stageRun {
	full := !o.quick
	pick := func(fullV, quickV string) string {
		if full {
			return fullV
		}
		return quickV
	}
	runs := []stageRun{
		{Stage: "ingest", Pkg: "./ingest/", Bench: "^BenchmarkIngest$", Time: pick("40x", "2x")},
		{Stage: "enrich", Pkg: "./enrich/", Bench: "^BenchmarkEnrich$", Time: pick("5x", "1x")},
		{Stage: "store", Pkg: "./store/", Bench: "^BenchmarkStoreVsKafkaEngine$", Time: "1x",
			Env: []string{"AUDITLINE_BENCH_DECISIONS=" + pick("100000", "2000")}},
		{Stage: "archive", Pkg: "./sinks/archive/", Bench: "^BenchmarkArchive$", Time: pick("3x", "1x")},
	}
	for i := range runs {
		r := &runs[i]
		logf("stage %s: go test -run '^$' -bench '%s' -benchtime %s %s %s", r.Stage, r.Bench, r.Time, r.Pkg, strings.Join(r.Env, " "))
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", r.Bench, "-benchtime", r.Time, "-timeout", "15m", r.Pkg)
		cmd.Env = append(os.Environ(), r.Env...)
		cmd.Env = append(cmd.Env, "AUDITLINE_REQUIRE_SERVERS=1")
		out, err := cmd.CombinedOutput()
		r.Took = time.Since(start)
		r.Results, _ = ParseBench(bytes.NewReader(out))
		if err != nil || len(r.Results) == 0 {
			t := string(out)
			if len(t) > 3000 {
				t = t[len(t)-3000:]
			}
			if err != nil {
				t = err.Error() + "\n" + t
			}
			r.Err = t
			logf("stage %s failed: %s", r.Stage, t)
			continue
		}
		for _, res := range r.Results {
			logf("  %s %v", res.Name, res.Metrics)
		}
	}
	return runs
}
