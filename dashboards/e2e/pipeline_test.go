package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
)

// Tokens the test's ingest accepts (given to the processes by environment).
const (
	litellmToken   = "e2e-litellm-token"
	oversightToken = "e2e-oversight-token"
)

// binary builds cmd/auditline once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AUDITLINE_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "auditline")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/auditline")
	cmd.Dir = repoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/auditline: %v\n%s", err, b)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stack is a set of auditline processes sharing one config.
type stack struct {
	t      *testing.T
	bin    string
	config string
	env    []string
	dir    string
	ingest string // base URL
}

func newStack(t *testing.T, name, db string) *stack {
	t.Helper()
	kafka := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	dir := t.TempDir()
	port := freePort(t)
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
topic_prefix: %s.
log:
  level: warn
ops:
  listen: ""
ingest:
  listen: 127.0.0.1:%d
  auth:
    tokens:
      - {name: e2e-litellm, env: E2E_LITELLM_TOKEN, scopes: [litellm, alerts, audit, gateway]}
      - {name: e2e-dashboard, env: E2E_OVERSIGHT_TOKEN, scopes: [oversight]}
store:
  clickhouse:
    addr: [%s]
    database: %s
  group: %s-store
  linger: 200ms
`, strings.Join(kafka, ", "), name, port, ch, db, name)
	path := filepath.Join(dir, "auditline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "E2E_LITELLM_TOKEN="+litellmToken, "E2E_OVERSIGHT_TOKEN="+oversightToken)
	// The shared-stack short forms would override this config's addresses.
	env = append(env, "AUDITLINE_KAFKA=", "AUDITLINE_CLICKHOUSE=", "AUDITLINE_S3=", "AUDITLINE_CONFIG=")
	return &stack{t: t, bin: binary(t), config: path, env: env, dir: dir, ingest: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

// run runs a subcommand with the stack's config to completion.
func (s *stack) run(args ...string) {
	s.t.Helper()
	s.exec(append(args, "--config", s.config)...)
}

// exec runs the binary with args to completion.
func (s *stack) exec(args ...string) {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	if b, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("auditline %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// start starts a long-running stage and stops it (SIGTERM, then SIGKILL) when
// the test ends. built is false when the binary says the stage is not
// implemented yet (it exits at once).
func (s *stack) start(stage string) (built bool) {
	s.t.Helper()
	logf, err := os.Create(filepath.Join(s.dir, stage+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, stage, "--config", s.config)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		logf.Close()
		b, _ := os.ReadFile(logf.Name())
		if strings.Contains(string(b), "not implemented yet") {
			return false
		}
		s.t.Fatalf("auditline %s exited: %v\n%s", stage, err, b)
	case <-time.After(1500 * time.Millisecond):
	}
	s.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if s.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			s.t.Logf("auditline %s log:\n%s", stage, tail(b, 4000))
		}
	})
	return true
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitReady polls the ingest's /readyz.
func (s *stack) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.ingest + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ingest not ready at %s: %v", s.ingest, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// post sends a body to an ingest endpoint with the LiteLLM token.
func (s *stack) post(path string, body []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.ingest+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+litellmToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		s.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b.String())
	}
}

// pipelineBackend runs ingest and store from the auditline binary on the
// real Kafka and ClickHouse, and enrich too when it is built. Without enrich
// (or when required is false and enrich is missing) it seeds the records
// directly and stands in for enrich alone: it reads the review events the
// real store wrote to raw_events — so the event went through the real ingest,
// Kafka and store — and writes the next record version as enrich would.
// It returns a zero backend when even ingest or store is not built.
func pipelineBackend(t *testing.T, requireEnrich bool) backend {
	t.Helper()
	name := testenv.Name(t)
	db := name
	s := newStack(t, name, db)
	s.run("migrate")
	ctx := context.Background()
	conn, err := seed.Open(ctx, testenv.ClickHouse(t), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seed.Drop(context.Background(), conn, db); conn.Close() })
	if !s.start("store") || !s.start("ingest") {
		return backend{}
	}
	s.waitReady()
	chCfg := query.Config{Addr: []string{testenv.ClickHouse(t)}, Database: db, Username: "default", Table: query.DefaultTable, Timeout: 20 * time.Second}
	b := backend{ch: chCfg, ingestURL: s.ingest + "/v1/oversight", ingestToken: oversightToken}
	if s.start("enrich") {
		exampleTraffic(t, s)
		s.exec("loadgen", "--url", s.ingest, "--token", litellmToken, "--payloads", "3000", "--seed", "7", "--gateway", "0.2")
		b.mode = "real (ingest, enrich and store from the auditline binary; LiteLLM example payloads and auditline loadgen traffic)"
		b.tenantA, b.tenantB = exampleTenants(t, conn, db)
		b.from, b.to = exampleRange(t, conn, db)
		return b
	}
	if requireEnrich {
		t.Fatal("AUDITLINE_E2E_PIPELINE=real: auditline enrich is not implemented yet")
	}
	recs := seed.Generate(20000, seed.Options{End: time.Now(), Span: 7 * 24 * time.Hour, Seed: 7})
	if err := seed.Insert(ctx, conn, db, seed.Table, recs); err != nil {
		t.Fatal(err)
	}
	standInEnrich(t, conn, db, chCfg)
	b.mode = "hybrid (real ingest, Kafka and store from the auditline binary; enrich not built yet, stood in for)"
	b.tenantA, b.tenantB = "acme", "globex"
	b.from, b.to = time.Now().Add(-7*24*time.Hour), time.Now().Add(time.Hour)
	return b
}

// exampleTraffic posts the LiteLLM example payloads (ingest/testdata/examples)
// and the gateway events to the real ingest, and waits for the records.
func exampleTraffic(t *testing.T, s *stack) {
	t.Helper()
	dir := filepath.Join(repoRoot(), "ingest", "testdata", "examples")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		path := "/v1/litellm"
		switch {
		case strings.Contains(e.Name(), "alert_webhook"):
			path = "/v1/litellm/alerts"
		case strings.Contains(e.Name(), "audit_log"):
			path = "/v1/litellm/audit"
		}
		s.post(path, b)
	}
	for _, f := range []string{"gateway_block.json", "gateway_allow.json"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), "ingest", "testdata", "events", f))
		if err != nil {
			t.Fatal(err)
		}
		s.post("/v1/gateway", b)
	}
}

func exampleTenants(t *testing.T, conn driver.Conn, db string) (a, b string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		rows, err := conn.Query(context.Background(), "SELECT tenant, countIf(sampled = 1) AS s FROM `"+db+"`.decision_records GROUP BY tenant ORDER BY s DESC, tenant")
		if err == nil {
			var ts []string
			for rows.Next() {
				var tn string
				var n uint64
				_ = rows.Scan(&tn, &n)
				ts = append(ts, tn)
			}
			rows.Close()
			if len(ts) >= 2 {
				return ts[0], ts[1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example traffic did not produce records of two tenants within 90 s (%v)", err)
		}
		time.Sleep(time.Second)
	}
}

// exampleRange is the day up to the newest record: the loadgen traffic
// (the example payloads carry their own, older, timestamps).
func exampleRange(t *testing.T, conn driver.Conn, db string) (from, to time.Time) {
	t.Helper()
	var hi time.Time
	if err := conn.QueryRow(context.Background(), "SELECT max(start_time) FROM `"+db+"`.decision_records").Scan(&hi); err != nil {
		t.Fatal(err)
	}
	to = hi.Add(2 * time.Hour).Truncate(time.Hour)
	return to.Add(-24 * time.Hour), to
}

// standInEnrich applies review events found in raw_events to their records.
func standInEnrich(t *testing.T, conn driver.Conn, db string, chCfg query.Config) {
	t.Helper()
	reader, err := query.Open(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); reader.Close() })
	applied := map[string]bool{}
	offset := int64(1 << 40)
	wg.Go(func() {
		for ctx.Err() == nil {
			time.Sleep(500 * time.Millisecond)
			rows, err := conn.Query(ctx, "SELECT body FROM `"+db+"`.raw_events PREWHERE source = 'oversight' WHERE position(body, '\"review\"') > 0")
			if err != nil {
				continue
			}
			var bodies []string
			for rows.Next() {
				var b string
				_ = rows.Scan(&b)
				bodies = append(bodies, b)
			}
			rows.Close()
			for _, body := range bodies {
				var ev struct {
					EventID    string    `json:"event_id"`
					Kind       string    `json:"kind"`
					RequestKey string    `json:"request_key"`
					Outcome    string    `json:"outcome"`
					Rationale  string    `json:"rationale"`
					OccurredAt time.Time `json:"occurred_at"`
					Reviewer   struct{ ID, Role string }
				}
				if json.Unmarshal([]byte(body), &ev) != nil || ev.Kind != "review" || applied[ev.EventID] {
					continue
				}
				d, err := reader.Record(ctx, query.Filter{Tenants: []string{query.AllTenants}}, record.ID(ev.RequestKey), 0)
				if err != nil {
					continue
				}
				dec := d.Decision
				dec.Version++
				dec.Completeness = record.Amended
				dec.Oversight = append(dec.Oversight, record.Oversight{EventID: ev.EventID, Kind: ev.Kind, Outcome: ev.Outcome,
					Reviewer: ev.Reviewer.ID, Role: ev.Reviewer.Role, Rationale: ev.Rationale, At: record.TimeOf(ev.OccurredAt)})
				dec.Risk.ReviewStatus = ev.Outcome
				offset++
				if err := seed.Insert(ctx, conn, db, seed.Table, []seed.Positioned{{D: dec, Partition: d.Partition, Offset: offset}}); err == nil {
					applied[ev.EventID] = true
				}
			}
		}
	})
}
