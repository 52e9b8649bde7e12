package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/dashboards/auth"

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

// stack is a set of auditline processes sharing one config.
type stack struct {
	t      *testing.T
	bin    string
	config string
	base   string // the config file's text
	env    []string
	dir    string
	ingest string // base URL
	topics string // topic prefix
	pubKey string // the archive's public key (PEM file)
}

func newStack(t *testing.T, name, db string) *stack {
	t.Helper()
	kafka := testenv.Kafka(t)
	ch := testenv.ClickHouse(t)
	s3 := testenv.S3(t)
	dir := t.TempDir()
	port := testenv.FreePort(t)
	key := filepath.Join(dir, "archive-key.pem")
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
archive:
  s3: {endpoint: %q, secure: %v, access_key: %q, secret_key: %q, bucket: %q}
  group: %s-archive
  prefix: e2e/%s/
  signing_key_file: %s
  retention: {mode: GOVERNANCE, period: 1m}
  batch: {max_age: 2s}
  checkpoint: {interval: 5s}
`, strings.Join(kafka, ", "), name, port, ch, db, name, s3.Endpoint, s3.Secure, s3.AccessKey, s3.SecretKey, s3.Bucket, name, name, key)
	path := filepath.Join(dir, "auditline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "E2E_LITELLM_TOKEN="+litellmToken, "E2E_OVERSIGHT_TOKEN="+oversightToken)
	// The shared-stack short forms would override this config's addresses.
	env = append(env, "AUDITLINE_KAFKA=", "AUDITLINE_CLICKHOUSE=", "AUDITLINE_S3=", "AUDITLINE_CONFIG=")
	st := &stack{t: t, bin: binary(t), config: path, base: cfg, env: env, dir: dir, ingest: fmt.Sprintf("http://127.0.0.1:%d", port),
		topics: name + ".", pubKey: key + ".pub"}
	st.exec("keys", "generate", "--out", key)
	return st
}

// run runs a subcommand with the stack's config to completion.
func (s *stack) run(args ...string) string {
	s.t.Helper()
	return s.exec(append(args, "--config", s.config)...)
}

// exec runs the binary with args to completion and returns its output.
func (s *stack) exec(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	b, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("auditline %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

// start starts a long-running stage and stops it (SIGTERM, then SIGKILL) when
// the test ends. built is false when the binary says the stage is not
// implemented yet (it exits at once).
func (s *stack) start(stage string) (built bool) {
	s.t.Helper()
	return s.startWith(stage, s.config)
}

func (s *stack) startWith(stage, config string) (built bool) {
	s.t.Helper()
	logf, err := os.Create(filepath.Join(s.dir, stage+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, stage, "--config", config)
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

// pipelineBackend runs ingest, store, archive and the dashboard from the
// auditline binary on the real Kafka, ClickHouse and MinIO, and enrich too
// when it is built. Without enrich (unless requireEnrich) it stands in for
// enrich alone: it produces the seeded decision records to the decisions
// topic (the real store and archive take them from there), and for each
// review event the real store wrote to raw_events — so the review went
// through the real ingest, Kafka and store — it produces the next record
// version, as enrich would. It returns a zero backend when ingest or store
// is not built.
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
	archived := s.start("archive")
	s.waitReady()
	chCfg := query.Config{Addr: []string{testenv.ClickHouse(t)}, Database: db, Username: "default", Table: query.DefaultTable, Timeout: 20 * time.Second}
	b := backend{ch: chCfg, ingestURL: s.ingest + "/v1/oversight", ingestToken: oversightToken, dashboard: s.dashboard}
	if archived {
		b.checkProof = s.checkProof
	}
	if s.start("enrich") {
		exampleTraffic(t, s)
		s.exec("loadgen", "--url", s.ingest, "--token", litellmToken, "--payloads", "3000", "--seed", "7", "--gateway", "0.2")
		b.mode = "real (ingest, enrich, store, archive and dashboard from the auditline binary; LiteLLM example payloads and auditline loadgen traffic)"
		b.tenantA, b.tenantB = exampleTenants(t, conn, db)
		b.from, b.to = exampleRange(t, conn, db)
		return b
	}
	if requireEnrich {
		t.Fatal("AUDITLINE_E2E_PIPELINE=real: auditline enrich is not implemented yet")
	}
	const n = 10000
	recs := seed.Generate(n, seed.Options{End: time.Now(), Span: 7 * 24 * time.Hour, Seed: 7})
	prod := newProducer(t, s.topics+"decisions")
	ds := make([]record.Decision, len(recs))
	for i := range recs {
		ds[i] = recs[i].D
	}
	prod.produce(ds...)
	waitRows(t, conn, db, n)
	standInEnrich(t, conn, db, chCfg, prod)
	b.mode = "hybrid (ingest, store, archive and dashboard from the auditline binary on real Kafka, ClickHouse and MinIO; enrich not built yet, stood in for)"
	b.tenantA, b.tenantB = "acme", "globex"
	b.from, b.to = time.Now().Add(-7*24*time.Hour), time.Now().Add(time.Hour)
	return b
}

// producer writes decision records to the decisions topic, keyed by request
// key, acknowledged by every in-sync replica — what enrich does.
type producer struct {
	t  *testing.T
	cl *kgo.Client
}

func newProducer(t *testing.T, topic string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.Kafka(t)...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{t: t, cl: cl}
}

func (p *producer) produce(ds ...record.Decision) error {
	recs := make([]*kgo.Record, len(ds))
	for i := range ds {
		v, err := json.Marshal(&ds[i])
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Key: []byte(ds[i].Request.RequestKey), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		p.t.Errorf("produce decisions: %v", err)
		return err
	}
	return nil
}

// waitRows waits until the store has written at least n record versions.
func waitRows(t *testing.T, conn driver.Conn, db string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var got uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM `"+db+"`.decision_records").Scan(&got)
		if err == nil && got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store wrote %d of %d records within 2 min (%v)", got, n, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// dashboard starts `auditline dashboard` with the stack's config plus a
// dashboard section for these users, and returns its base URL.
func (s *stack) dashboard(t *testing.T, us []auth.UserConfig) string {
	t.Helper()
	port := testenv.FreePort(t)
	var users strings.Builder
	for _, u := range us {
		ts, _ := json.Marshal(u.Tenants)
		fmt.Fprintf(&users, "      - {name: %q, password_hash: %q, role: %q, tenants: %s}\n", u.Name, u.PasswordHash, u.Role, ts)
	}
	cfg := s.base + fmt.Sprintf(`dashboard:
  listen: 127.0.0.1:%d
  cookie_secure: never
  ingest:
    url: %s/v1/oversight
  auth:
    users:
%s`, port, s.ingest, users.String())
	path := filepath.Join(s.dir, "dashboard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.env = append(s.env, "AUDITLINE_DASHBOARD_INGEST_TOKEN="+oversightToken)
	if !s.startWith("dashboard", path) {
		t.Fatal("auditline dashboard is not built")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("auditline dashboard not ready at %s: %v", base, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkProof logs in as user, downloads the proof the record page links to
// (waiting for the archive to seal the version), and verifies it offline
// with 'auditline verify-proof' against the archive's public key.
func (s *stack) checkProof(t *testing.T, base, user, pw, proofPath string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute}
	resp, err := hc.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatal("no login form")
	}
	resp, err = hc.PostForm(base+"/login", url.Values{"user": {user}, "password": {pw}, "csrf": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(90 * time.Second)
	var proof []byte
	for {
		resp, err := hc.Get(base + proofPath)
		if err != nil {
			t.Fatal(err)
		}
		proof, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && resp.Header.Get("Content-Type") == "application/json" {
			break
		}
		if time.Now().After(deadline) {
			id := strings.TrimSuffix(strings.TrimPrefix(proofPath, "/records/"), "/proof")
			id, _, _ = strings.Cut(id, "/")
			cmd := exec.Command(s.bin, "prove", "--config", s.config, id)
			cmd.Env = s.env
			out, err := cmd.CombinedOutput()
			t.Logf("auditline prove %s: %v\n%s", id, err, tail(out, 3000))
			cmd = exec.Command(s.bin, "verify", "--config", s.config, "--key", s.pubKey, "--retention-mode", "GOVERNANCE")
			cmd.Env = s.env
			out, err = cmd.CombinedOutput()
			t.Logf("auditline verify: %v\n%s", err, tail(out, 3000))
			t.Fatalf("no proof at %s within 90 s: %d\n%s", proofPath, resp.StatusCode, tail(proof, 2000))
		}
		time.Sleep(2 * time.Second)
	}
	file := filepath.Join(s.dir, "proof.json")
	if err := os.WriteFile(file, proof, 0o644); err != nil {
		t.Fatal(err)
	}
	out := s.exec("verify-proof", "--key", s.pubKey, file)
	t.Logf("inclusion proof from the dashboard verified offline: %s", strings.TrimSpace(out))
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

// standInEnrich applies review events found in raw_events to their records:
// it produces the next version to the decisions topic, for the real store
// and archive.
func standInEnrich(t *testing.T, conn driver.Conn, db string, chCfg query.Config, prod *producer) {
	t.Helper()
	reader, err := query.Open(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); reader.Close() })
	applied := map[string]bool{}
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
				if prod.produce(dec) == nil {
					applied[ev.EventID] = true
				}
			}
		}
	})
}
