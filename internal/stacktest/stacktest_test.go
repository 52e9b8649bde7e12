package stacktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/internal/stacktest/binary"
)

// TestProc: a supervised process is restarted after an exit the test did
// not cause, not after Kill; Stop reports whether it stopped cleanly.
func TestProc(t *testing.T) {
	dir := t.TempDir()
	s := &Stack{Dir: dir, t: t}
	// Exits 0 on SIGTERM; exits 3 on its own when the file "die" exists.
	script := `trap 'echo bye; exit 0' TERM; echo up; while [ ! -f die ]; do sleep 0.05; done; rm die; exit 3`
	p := s.Command("sh", "sh", "-c", script)
	p.Dir, p.Restart, p.RestartDelay = dir, true, 10*time.Millisecond
	p.Start()
	WaitFor(t, "first start logged", 10*time.Second, func() error { return logHas(p, "up", 1) })
	if err := os.WriteFile(filepath.Join(dir, "die"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, "restart after its own exit", 10*time.Second, func() error { return logHas(p, "up", 2) })
	p.Kill()
	if p.Running() {
		t.Fatal("running after Kill")
	}
	time.Sleep(100 * time.Millisecond)
	if p.Running() {
		t.Fatal("restarted after Kill")
	}
	p.Start()
	WaitFor(t, "start after Kill", 10*time.Second, func() error { return logHas(p, "up", 3) })
	if kills, exits := p.Counts(); kills != 1 || exits != 1 {
		t.Errorf("counts: %d kills, %d exits, want 1 and 1", kills, exits)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
	if !strings.Contains(string(p.Log()), "=== stacktest: start 3 of sh") {
		t.Errorf("log:\n%s", p.Log())
	}
	if out := p.Output(); out != "up\nup\nup\nbye\n" {
		t.Errorf("output without the markers: %q", out)
	}
	// A process that ignores SIGTERM, or exits non-zero on it, is not a
	// clean stop.
	q := s.Command("stubborn", "sh", "-c", `trap 'exit 4' TERM; echo up; while true; do sleep 0.05; done`)
	q.Start()
	WaitFor(t, "up", 10*time.Second, func() error { return logHas(q, "up", 1) })
	if err := q.Stop(); err == nil || !strings.Contains(err.Error(), "did not stop cleanly") {
		t.Errorf("exit 4 on SIGTERM: Stop = %v", err)
	}
	r := s.Command("deaf", "sh", "-c", `trap '' TERM; echo up; while true; do sleep 0.05; done`)
	r.StopTimeout = 300 * time.Millisecond
	r.Start()
	WaitFor(t, "up", 10*time.Second, func() error { return logHas(r, "up", 1) })
	if err := r.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err == nil || !strings.Contains(err.Error(), "did not stop within") {
		t.Errorf("SIGTERM ignored: Stop = %v", err)
	}
}

func logHas(p *Proc, s string, n int) error {
	if c := p.LogCount(s + "\n"); c < n {
		return errors.New(s + " not yet")
	}
	return nil
}

// TestProgram: a Program collects errors, ends at Fatalf and runs its
// cleanups last-first.
func TestProgram(t *testing.T) {
	var order []string
	p := &Program{}
	err := p.RunProgram(func(tb TB) {
		tb.Cleanup(func() { order = append(order, "first") })
		tb.Cleanup(func() { order = append(order, "second") })
		tb.Errorf("one %d", 1)
		tb.Fatalf("two")
		order = append(order, "not reached")
	})
	if err == nil || err.Error() != "one 1\ntwo" || strings.Join(order, ",") != "second,first" {
		t.Fatalf("err %v, order %v", err, order)
	}
	if err := (&Program{}).RunProgram(func(TB) {}); err != nil {
		t.Fatal(err)
	}
}

// TestBinary: the binary is built once per source state; a second call, and
// another test process, reuse it.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds cmd/auditline")
	}
	t.Setenv("AUDITLINE_BIN", "")
	a, err := binary.Build()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b, err := binary.Build()
	if err != nil || a != b {
		t.Fatalf("second build: %s %v, want %s", b, err, a)
	}
	st2, _ := os.Stat(b)
	if !st2.ModTime().Equal(st.ModTime()) {
		t.Error("the binary was rebuilt")
	}
	t.Logf("cached binary %s found in %s", b, time.Since(start).Round(time.Millisecond))
}

// TestConfigFile: a Stack's configuration reaches a child process as
// written (the binary's 'config' prints it back, secrets redacted).
func TestConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds cmd/auditline")
	}
	srv := Servers{Kafka: []string{"127.0.0.1:1"}, ClickHouse: "127.0.0.1:2"}
	srv.S3.Endpoint, srv.S3.Bucket, srv.S3.SecretKey = "127.0.0.1:3", "b", "s3-secret"
	s := New(t, srv, "")
	s.Config.Kafka.SessionTimeout = 7 * time.Second
	out := s.Must("config", "--config", s.ConfigFile())
	for _, want := range []string{"session_timeout: 7s", "topic_prefix: " + s.Name + ".", "database: " + s.Name, "secret_key: <redacted>", "group: " + s.Name + "-archive"} {
		if !strings.Contains(out, want) {
			t.Errorf("config printed without %q:\n%s", want, out)
		}
	}
	got, err := app.Load(s.ConfigFile(), nil)
	if err != nil || got.Archive.S3.SecretKey != "s3-secret" {
		t.Fatalf("read back: %v", err)
	}
}

// TestInProcess runs ingest, enrich, store and archive inside the test
// process on the shared stack: one LiteLLM body becomes its records in
// ClickHouse and leaves in the archive, and the stages stop cleanly.
func TestInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the pipeline on the real servers")
	}
	s := New(t, Shared(t), "")
	s.Config.Log.Level = "warn"
	s.Migrate()
	run := s.RunInProcess("ingest", "enrich", "store", "archive")
	s.WaitReady(s.IngestURL())
	body, err := os.ReadFile(filepath.Join(RepoRoot(), "ingest", "testdata", "examples", "09_generic_api_batch_post_body_json_array.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.IngestURL()+"/v1/litellm", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %s", resp.Status)
	}
	ctx := context.Background()
	arch := s.Archive()
	WaitFor(t, "two records in ClickHouse and the archive", 2*time.Minute, func() error {
		recs, err := s.Records(ctx)
		if err != nil {
			return err
		}
		if err := arch.Update(ctx); err != nil {
			return err
		}
		if len(recs) != 2 || len(arch.Latest()) != 2 {
			return fmt.Errorf("%d records, %d archived", len(recs), len(arch.Latest()))
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatalf("in-process stages: %v", err)
	}
}
