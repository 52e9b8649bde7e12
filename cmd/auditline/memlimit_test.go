package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/internal/stacktest"
)

// TestProcessMemoryLimit runs `auditline ingest` on the real broker and reads
// the Go runtime's soft memory limit from its /metrics: memory.stage_limit
// (200 MiB) by default, a GOMEMLIMIT in the environment instead when one is
// set.
func TestProcessMemoryLimit(t *testing.T) {
	s := stacktest.New(t, stacktest.Servers{Kafka: testenv.Kafka(t)}, "")
	limit := regexp.MustCompile(`(?m)^go_gc_gomemlimit_bytes ([0-9.e+]+)$`)
	read := func(env ...string) float64 {
		t.Helper()
		p := s.AuditlineProc("ingest", "ingest", "--config", s.ConfigFile())
		p.Env = append(slices.Clone(s.Env), env...)
		p.Start()
		defer p.Stop()
		var got float64
		stacktest.WaitFor(t, "ingest /metrics", time.Minute, func() error {
			resp, err := http.Get(s.IngestURL() + "/metrics")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			m := limit.FindSubmatch(b)
			if m == nil {
				return fmt.Errorf("%s: no go_gc_gomemlimit_bytes", resp.Status)
			}
			var err2 error
			got, err2 = strconv.ParseFloat(string(m[1]), 64)
			return err2
		})
		return got
	}
	if got, want := read(), float64(app.DefaultStageLimit); got != want {
		t.Errorf("default: go_gc_gomemlimit_bytes %.0f, want %.0f", got, want)
	}
	if got, want := read("GOMEMLIMIT=300MiB"), float64(300<<20); got != want {
		t.Errorf("GOMEMLIMIT=300MiB: go_gc_gomemlimit_bytes %.0f, want %.0f", got, want)
	}
}
