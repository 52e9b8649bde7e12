package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	dauth "github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/store"
)

// Tokens the test's ingest accepts (their SHA-256 is in its configuration).
const (
	litellmToken   = "e2e-litellm-token"
	oversightToken = "e2e-oversight-token"
)

// stack is a set of auditline processes sharing one configuration.
type stack struct {
	*stacktest.Stack
	t      *testing.T
	ingest string // base URL
}

func newStack(t *testing.T) *stack {
	t.Helper()
	st := stacktest.New(t, stacktest.Shared(t), "")
	c := &st.Config
	c.Log.Level = "warn"
	c.Ingest.Auth.Tokens = []auth.Token{
		{Name: "e2e-litellm", SHA256: auth.Hash(litellmToken), Scopes: []auth.Scope{auth.ScopeLiteLLM, auth.ScopeAlerts, auth.ScopeAudit, auth.ScopeGateway}},
		{Name: "e2e-dashboard", SHA256: auth.Hash(oversightToken), Scopes: []auth.Scope{auth.ScopeOversight, auth.ScopeAccess}, Reviewer: auth.AnyReviewer},
	}
	c.Archive.Prefix = "e2e/" + st.Name + "/"
	return &stack{Stack: st, t: t, ingest: st.IngestURL()}
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

// pipelineBackend runs ingest, enrich, store, archive and the dashboard from
// the auditline binary on the real Kafka, ClickHouse and MinIO, fed with the
// LiteLLM example payloads and loadgen traffic.
func pipelineBackend(t *testing.T) backend {
	t.Helper()
	s := newStack(t)
	s.Migrate()
	db := s.Name
	conn := s.ClickHouse()
	s.StartStages(false, "ingest", "enrich", "store", "archive")
	s.WaitReady(s.ingest)
	chCfg := query.Config{Addr: []string{s.Servers.ClickHouse}, Database: db, Username: "default", Table: query.DefaultTable, Timeout: 2 * time.Minute}
	b := backend{ch: chCfg, ingestURL: s.ingest + "/v1/oversight", ingestToken: oversightToken, dashboard: s.dashboard, checkProof: s.checkProof}
	exampleTraffic(t, s)
	s.Must("loadgen", "--url", s.ingest, "--token", litellmToken, "--payloads", "3000", "--seed", "7", "--gateway", "0.2")
	b.mode = "real (ingest, enrich, store, archive and dashboard from the auditline binary; LiteLLM example payloads and auditline loadgen traffic)"
	b.tenantA, b.tenantB = exampleTenants(t, conn, db)
	b.from, b.to = exampleRange(t, conn, db)
	return b
}

// dashboard starts `auditline dashboard` with the stack's config plus a
// dashboard section for these users, and returns its base URL.
func (s *stack) dashboard(t *testing.T, us []dauth.UserConfig) string {
	t.Helper()
	cfg := s.Config
	cfg.Dashboard.CookieSecure = "never"
	cfg.Dashboard.Ingest.URL = s.ingest + "/v1/oversight"
	cfg.Dashboard.Ingest.Token = oversightToken
	cfg.Dashboard.Auth.Users = us
	s.AuditlineProc("dashboard", "dashboard", "--config", s.WriteConfig("dashboard.yaml", cfg)).Start()
	base := s.DashboardURL()
	s.WaitReady(base)
	return base
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
	deadline := time.Now().Add(pipelineWait)
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
			out, err := s.Auditline("prove", "--config", s.ConfigFile(), id)
			t.Logf("auditline prove %s: %v\n%s", id, err, stacktest.Tail([]byte(out), 3000))
			out, err = s.Auditline("verify", "--config", s.ConfigFile(), "--key", s.PublicKey(), "--retention-mode", "GOVERNANCE")
			t.Logf("auditline verify: %v\n%s", err, stacktest.Tail([]byte(out), 3000))
			t.Fatalf("no proof at %s within %s: %d\n%s", proofPath, pipelineWait, resp.StatusCode, stacktest.Tail(proof, 2000))
		}
		time.Sleep(2 * time.Second)
	}
	file := filepath.Join(s.Dir, "proof.json")
	if err := os.WriteFile(file, proof, 0o644); err != nil {
		t.Fatal(err)
	}
	out := s.Must("verify-proof", "--key", s.PublicKey(), file)
	t.Logf("inclusion proof from the dashboard verified offline: %s", strings.TrimSpace(out))
}

// exampleTraffic posts the LiteLLM example payloads (ingest/testdata/examples)
// and the gateway events to the real ingest, and waits for the records.
func exampleTraffic(t *testing.T, s *stack) {
	t.Helper()
	dir := filepath.Join(stacktest.RepoRoot(), "ingest", "testdata", "examples")
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
		b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "ingest", "testdata", "events", f))
		if err != nil {
			t.Fatal(err)
		}
		s.post("/v1/gateway", b)
	}
}

func exampleTenants(t *testing.T, conn driver.Conn, db string) (a, b string) {
	t.Helper()
	deadline := time.Now().Add(pipelineWait)
	for {
		rows, err := conn.Query(context.Background(), "SELECT tenant, countIf(sampled = 1) AS s FROM `"+db+"`."+store.TableDecisions+" GROUP BY tenant ORDER BY s DESC, tenant")
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
			t.Fatalf("the example traffic did not produce records of two tenants within %s (%v)", pipelineWait, err)
		}
		time.Sleep(time.Second)
	}
}

// exampleRange is the day up to the newest record: the loadgen traffic
// (the example payloads carry their own, older, timestamps).
func exampleRange(t *testing.T, conn driver.Conn, db string) (from, to time.Time) {
	t.Helper()
	var hi time.Time
	if err := conn.QueryRow(context.Background(), "SELECT max(start_time) FROM `"+db+"`."+store.TableDecisions).Scan(&hi); err != nil {
		t.Fatal(err)
	}
	to = hi.Add(2 * time.Hour).Truncate(time.Hour)
	return to.Add(-24 * time.Hour), to
}
