// Package access proves who gets in, against the real `auditline ingest` and
// `auditline dashboard` processes with TLS on (a self-signed certificate
// generated here): every write endpoint of ingest and every read and write
// endpoint of the dashboard refuses missing, wrong, expired and
// other-tenant (other-scope) credentials; ingest tokens rotate with an
// overlap in which the old and the new token are both valid; and no token,
// password or session id ever appears in the processes' logs or /metrics.
package access

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards"
	dauth "github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/stacktest"
)

// Secrets: each must never be printed by any process.
const (
	tokOld       = "access-old-token-5f1c9a7e"
	tokNew       = "access-new-token-b83d02aa"
	tokOversight = "access-oversight-token-77e1"
	pwAlice      = "alice-pw-Qx81-secret"
	pwBob        = "bob-pw-Zr42-secret"
	pwVera       = "vera-pw-Mk55-secret"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a
// client that trusts only that certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, client *http.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return certFile, keyFile, client
}

func post(t *testing.T, client *http.Client, base, path, authz string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postAccepted is post for a request that must be accepted: a 503 (Kafka
// did not acknowledge in time: "retry later") is retried as a sender would,
// for up to five minutes — the machines that run the suite are loaded.
func postAccepted(t *testing.T, client *http.Client, base, path, authz string, body []byte) (int, string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		code, b := post(t, client, base, path, authz, body)
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return code, b
		}
		t.Logf("POST %s: 503 %s; retrying", path, strings.TrimSpace(b))
		time.Sleep(time.Second)
	}
}

func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "ingest", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sessionIdle is the dashboard's session_idle in TestAccess.
const sessionIdle = 30 * time.Second

func TestAccess(t *testing.T) {
	srv := stacktest.Shared(t)
	st := stacktest.New(t, srv, "")
	dir := st.Dir
	certFile, keyFile, client := selfSigned(t, dir)
	chAddr := srv.ClickHouse

	// ClickHouse: records of two tenants for the dashboard to serve.
	name := st.Name
	ctx := context.Background()
	conn := seedtest.Schema(t, chAddr, name)
	recs := seed.Generate(60, seed.Options{Tenants: []string{"acme", "globex"}, End: time.Now(), Span: 24 * time.Hour, Seed: 3})
	if err := seed.Insert(ctx, conn, name, query.DefaultTable, recs); err != nil {
		t.Fatal(err)
	}
	var acmeID, globexID string
	for _, r := range recs {
		switch r.D.Identity.Tenant {
		case "acme":
			acmeID = r.D.RecordID
		case "globex":
			globexID = r.D.RecordID
		}
	}
	if acmeID == "" || globexID == "" {
		t.Fatal("seed produced no record of one of the tenants")
	}

	hash := func(pw string) string {
		h, err := dauth.HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	st.Env = append(st.Env, "ACCESS_OLD_TOKEN="+tokOld, "ACCESS_NEW_TOKEN="+tokNew, "ACCESS_OVERSIGHT_TOKEN="+tokOversight,
		"AUDITLINE_DASHBOARD_INGEST_TOKEN="+tokOversight)
	c := &st.Config
	c.Log.Level = "debug"
	c.Ingest.TLS = ingest.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	c.Dashboard.TLS = dashboards.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	ingestURL, dashURL := st.IngestURL(), st.DashboardURL()
	senders := []auth.Scope{auth.ScopeLiteLLM, auth.ScopeAlerts, auth.ScopeAudit, auth.ScopeGateway}
	var (
		oldTok  = auth.Token{Name: "sender-old", Env: "ACCESS_OLD_TOKEN", Scopes: senders}
		newTok  = auth.Token{Name: "sender-new", Env: "ACCESS_NEW_TOKEN", Scopes: senders}
		dashTok = auth.Token{Name: "dashboard", Env: "ACCESS_OVERSIGHT_TOKEN", Scopes: []auth.Scope{auth.ScopeOversight, auth.ScopeAccess}, Reviewer: auth.AnyReviewer}
	)
	ingestCfg := func(file string, tokens ...auth.Token) string {
		cfg := st.Config
		cfg.Ingest.Auth.Tokens = tokens
		return st.WriteConfig(file, cfg)
	}
	ingestOld := ingestCfg("ingest-old.yaml", oldTok, dashTok)
	ingestBoth := ingestCfg("ingest-both.yaml", oldTok, newTok, dashTok)
	ingestNew := ingestCfg("ingest-new.yaml", newTok, dashTok)
	c.Dashboard.Ingest.URL = ingestURL + "/v1/oversight"
	// session_idle is short for the expiry check below, and long enough
	// that a loaded machine's pauses between one user's requests never
	// expire a session early.
	c.Dashboard.Auth.SessionIdle, c.Dashboard.Auth.SessionMax = sessionIdle, time.Hour
	c.Dashboard.Auth.Users = []dauth.UserConfig{
		{Name: "alice", PasswordHash: hash(pwAlice), Role: "reviewer", Tenants: []string{"acme"}},
		{Name: "bob", PasswordHash: hash(pwBob), Role: "reviewer", Tenants: []string{"globex"}},
		{Name: "vera", PasswordHash: hash(pwVera), Role: "viewer", Tenants: []string{"acme"}},
	}
	// The dashboard's /metrics is on its operations listener only (plain
	// HTTP on loopback), never on the TLS listener browsers reach.
	dashCfgV := st.Config
	dashCfgV.Ops.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	dashOps := "http://" + dashCfgV.Ops.Listen
	dashCfg := st.WriteConfig("dashboard.yaml", dashCfgV)
	// start runs `auditline <stage> --config cfg` until the test ends or it
	// is stopped (with a clean-exit check), logging to a file of its own.
	var procs []*stacktest.Proc
	start := func(stage, cfg string) *stacktest.Proc {
		t.Helper()
		p := st.AuditlineProc(fmt.Sprintf("%s-%d", stage, len(procs)), stage, "--config", cfg)
		procs = append(procs, p)
		p.Start()
		return p
	}
	stop := func(p *stacktest.Proc) {
		t.Helper()
		if err := p.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	}

	// --- ingest: TLS, every write endpoint, every kind of bad credential.
	ingestProc := start("ingest", ingestOld)
	st.WaitReadyClient(client, ingestURL)
	plain := &http.Client{Timeout: time.Minute}
	if resp, err := plain.Post(strings.Replace(ingestURL, "https://", "http://", 1)+"/v1/litellm", "application/json", strings.NewReader("[]")); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
			t.Errorf("plain HTTP to the TLS ingest: %d %s", resp.StatusCode, b)
		}
	}
	endpoints := []struct {
		path  string
		body  []byte
		scope string // a valid token of the right scope
		other string // a valid token of another scope
	}{
		{"/v1/litellm", example(t, "examples/01_success_plain_openai.json"), tokOld, tokOversight},
		{"/v1/litellm/alerts", example(t, "examples/10_alert_webhook_budget_crossed_key.json"), tokOld, tokOversight},
		{"/v1/litellm/audit", example(t, "examples/14_audit_log_key_budget_update.json"), tokOld, tokOversight},
		{"/v1/gateway", example(t, "events/gateway_allow.json"), tokOld, tokOversight},
		{"/v1/oversight", example(t, "events/oversight_review.json"), tokOversight, tokOld},
	}
	for _, ep := range endpoints {
		for _, c := range []struct {
			name, authz, reason string
			code                int
		}{
			{"missing", "", "missing_token", 401},
			{"not bearer", "Basic " + tokOld, "missing_token", 401},
			{"wrong", "Bearer " + ep.scope + "x", "invalid_token", 401},
			{"rotated out (not yet valid)", "Bearer " + tokNew, "invalid_token", 401},
			{"other scope", "Bearer " + ep.other, "insufficient_scope", 403},
		} {
			code, body := post(t, client, ingestURL, ep.path, c.authz, ep.body)
			if code != c.code || !strings.Contains(body, `"reason":"`+c.reason+`"`) {
				t.Errorf("ingest %s, %s credentials: %d %s, want %d %s", ep.path, c.name, code, body, c.code, c.reason)
			}
		}
		if code, body := postAccepted(t, client, ingestURL, ep.path, "Bearer "+ep.scope, ep.body); code != 200 {
			t.Errorf("ingest %s with the right token: %d %s", ep.path, code, body)
		}
	}

	// --- rotation: old only → old and new (overlap) → new only. Tokens are
	// read at start, so each step is a restart with the next config; in the
	// overlap both tokens post successfully, and the old one stops working
	// only when the config that drops it is loaded.
	lit := example(t, "examples/01_success_plain_openai.json")
	rotate := func(cfg string) {
		t.Helper()
		stop(ingestProc)
		t0 := time.Now()
		ingestProc = start("ingest", cfg)
		st.WaitReadyClient(client, ingestURL)
		t.Logf("ingest restarted with %s: ready after %s", filepath.Base(cfg), time.Since(t0).Round(time.Millisecond))
	}
	rotate(ingestBoth)
	for _, tok := range []string{tokOld, tokNew} {
		if code, body := postAccepted(t, client, ingestURL, "/v1/litellm", "Bearer "+tok, lit); code != 200 {
			t.Errorf("overlap: token %s…: %d %s", tok[:10], code, body)
		}
	}
	rotate(ingestNew)
	if code, body := post(t, client, ingestURL, "/v1/litellm", "Bearer "+tokOld, lit); code != 401 || !strings.Contains(body, "invalid_token") {
		t.Errorf("retired token: %d %s, want 401 invalid_token", code, body)
	}
	if code, body := postAccepted(t, client, ingestURL, "/v1/litellm", "Bearer "+tokNew, lit); code != 200 {
		t.Errorf("new token after rotation: %d %s", code, body)
	}

	// --- dashboard: TLS, login, every page without, with a forged, with an
	// expired session, and another tenant's records.
	start("dashboard", dashCfg)
	st.WaitReadyClient(client, dashURL)
	reads := []string{"/", "/near-miss", "/records", "/records/" + acmeID, "/records/" + acmeID + "/proof", "/sampling"}
	writes := []struct{ path string }{{"/records/" + acmeID + "/review"}, {"/sampling/burst"}, {"/logout"}}
	anon := func(jar http.CookieJar) *http.Client {
		return &http.Client{Timeout: time.Minute, Transport: client.Transport, Jar: jar,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	refusedRead := func(c *http.Client, what string) {
		t.Helper()
		for _, p := range reads {
			resp, err := c.Get(dashURL + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("GET %s %s: %d (Location %q), want 303 to /login", p, what, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		for _, w := range writes {
			resp, err := c.PostForm(dashURL+w.path, url.Values{"csrf": {"x"}, "action": {"approve"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST %s %s: %d, want a refusal", w.path, what, resp.StatusCode)
			}
		}
	}
	refusedRead(anon(nil), "without a session")
	forged, _ := cookiejar.New(nil)
	du, _ := url.Parse(dashURL)
	forged.SetCookies(du, []*http.Cookie{{Name: "__Host-auditline_session", Value: "forged-session-id", Path: "/", Secure: true},
		{Name: "auditline_session", Value: "forged-session-id", Path: "/"}})
	refusedRead(anon(forged), "with a forged session cookie")
	if resp, err := plain.Get(strings.Replace(dashURL, "https://", "http://", 1) + "/login"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS dashboard: %d", resp.StatusCode)
		}
	}

	login := func(user, pw string) (*http.Client, string) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := anon(jar)
		resp, err := c.Get(dashURL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("no login form:\n%s", page)
		}
		resp, err = c.PostForm(dashURL+"/login", url.Values{"user": {user}, "password": {pw}, "csrf": {string(m[1])}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login %s: %d", user, resp.StatusCode)
		}
		var session string
		for _, ck := range jar.Cookies(du) {
			if strings.HasSuffix(ck.Name, "auditline_session") {
				session = ck.Value
			}
		}
		if session == "" {
			t.Fatalf("login %s: no session cookie", user)
		}
		return c, session
	}
	get := func(c *http.Client, p string) (int, string) {
		t.Helper()
		resp, err := c.Get(dashURL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A wrong password gets no session.
	{
		jar, _ := cookiejar.New(nil)
		c := anon(jar)
		resp, _ := c.Get(dashURL + "/login")
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
		resp, err := c.PostForm(dashURL+"/login", url.Values{"user": {"alice"}, "password": {pwBob}, "csrf": {string(m[1])}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("wrong password: %d, want 401", resp.StatusCode)
		}
	}
	alice, aliceSession := login("alice", pwAlice)
	if code, _ := get(alice, "/records/"+acmeID); code != 200 {
		t.Errorf("alice, own tenant's record: %d", code)
	}
	for _, p := range []string{"/records/" + globexID, "/records/" + globexID + "/proof"} {
		if code, body := get(alice, p); code != http.StatusNotFound {
			t.Errorf("alice (acme) GET %s of globex: %d, want 404\n%.300s", p, code, body)
		}
	}
	if code, body := get(alice, "/records"); code != 200 || strings.Contains(body, globexID) || strings.Contains(body, "globex") {
		t.Errorf("alice's record list: %d, shows globex: %v", code, strings.Contains(body, globexID))
	}
	if code, body := get(alice, "/near-miss?tenant=globex"); code == 200 && strings.Contains(body, globexID) {
		t.Errorf("alice asked for tenant=globex and saw its records")
	}
	// A viewer may not review; csrf is checked before anything else is
	// done, so take the real token from the record page.
	vera, _ := login("vera", pwVera)
	_, page := get(vera, "/records/"+acmeID)
	csrf := ""
	if m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page); m != nil {
		csrf = m[1]
	}
	resp, err := vera.PostForm(dashURL+"/records/"+acmeID+"/review", url.Values{"csrf": {csrf}, "action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer POST review: %d, want 403", resp.StatusCode)
	}
	resp, err = vera.PostForm(dashURL+"/sampling/burst", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer POST burst: %d, want 403", resp.StatusCode)
	}
	// Bob (globex) may not review alice's tenant's record.
	bob, _ := login("bob", pwBob)
	_, page = get(bob, "/records")
	csrf = ""
	if m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page); m != nil {
		csrf = m[1]
	}
	resp, err = bob.PostForm(dashURL+"/records/"+acmeID+"/review", url.Values{"csrf": {csrf}, "action": {"approve"}, "note": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bob (globex) POST review of an acme record: %d, want a refusal\n%.300s", resp.StatusCode, b)
	}
	// Expiry: after session_idle without a request, every page sends alice
	// to login.
	time.Sleep(sessionIdle)
	deadline := time.Now().Add(time.Minute)
	for {
		code, _ := get(alice, "/records")
		if code == http.StatusSeeOther {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's session still valid a minute after session_idle (%s)", sessionIdle)
		}
		time.Sleep(time.Second)
	}
	refusedRead(alice, "with an expired session")

	// --- secrets never in logs or /metrics.
	var hay bytes.Buffer
	if resp, err := client.Get(dashURL + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the dashboard's UI listener: %v %v (want 404: it is on the operations listener)", err, resp)
	} else {
		resp.Body.Close()
	}
	for _, base := range []string{ingestURL, dashOps} {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte("# HELP")) {
			t.Errorf("%s/metrics: %d", base, resp.StatusCode)
		}
		hay.Write(b)
	}
	for _, p := range procs {
		hay.Write(p.Log())
	}
	if hay.Len() == 0 {
		t.Fatal("no logs or metrics read")
	}
	for what, secret := range map[string]string{"old token": tokOld, "new token": tokNew, "oversight token": tokOversight,
		"alice's password": pwAlice, "bob's password": pwBob, "vera's password": pwVera, "alice's session id": aliceSession} {
		if bytes.Contains(hay.Bytes(), []byte(secret)) {
			t.Errorf("the %s appears in the logs or /metrics", what)
		}
	}
	t.Logf("searched %d bytes of logs (%d files, log level debug) and /metrics for 7 secrets", hay.Len(), len(procs))
}
