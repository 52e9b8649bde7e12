package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/topic"
)

// dashHost is the name the browser reaches the dashboard by (mapped to
// 127.0.0.1 by Chromium's resolver rules): a real host name, not loopback,
// so that the dashboard treats it as a deployment does.
const dashHost = "dash.test"

// TestCookieScopeBrowser: in Chromium, against the dashboard served over
// HTTPS at a host name, with another service on the same host name on
// another port over plain HTTP (the neighbour; cookies ignore ports):
//
//   - the session, device and login-form cookies are __Host-, Secure,
//     HttpOnly, SameSite=Lax, Path=/ and host-only, and scripts cannot read
//     them;
//   - the neighbour never receives them;
//   - cookies the neighbour sets (a __Host- one without Secure, a Secure one
//     over HTTP, and the plain name) neither replace the session nor log
//     anyone in: the browser refuses the first two, the dashboard ignores
//     the third;
//   - a login form the neighbour serves, with a login token it fetched
//     from the dashboard itself, posted by the victim's browser (login
//     CSRF) is refused and logs nobody in.
//
// Each step is a screenshot.
func TestCookieScopeBrowser(t *testing.T) {
	testenv.Chromium(t)
	addr := testenv.ClickHouse(t)
	db := testenv.Name(t)
	ctx := context.Background()
	conn := seedtest.Schema(t, addr, db)
	if err := seed.Insert(ctx, conn, db, query.DefaultTable, seed.Generate(50, seed.Options{End: time.Now(), Span: 24 * time.Hour, Seed: 11})); err != nil {
		t.Fatal(err)
	}
	qc := query.Config{Addr: []string{addr}, Database: db, Username: "default", Table: query.DefaultTable, Timeout: 2 * time.Minute}
	ch, err := query.Open(qc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })

	certFile, keyFile := hostCert(t, dashHost)
	sink := &capture{}
	cfg := dashboards.NewDefaultConfig() // cookie_secure: auto
	cfg.ClickHouse = qc
	cfg.Ingest.Token = "unused"
	cfg.TLS = dashboards.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	cfg.Auth.Users = []auth.UserConfig{
		{Name: "alice", PasswordHash: bcryptHash(t, "alice-pw"), Role: "reviewer", Tenants: []string{"*"}},
		{Name: "mallory", PasswordHash: bcryptHash(t, "mallory-pw"), Role: "viewer", Tenants: []string{"*"}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := dashboards.New(cfg, topic.Shared{}, dashboards.Settings{Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Sources: dashboards.Sources{NearMiss: ch, Records: ch, Record: ch, Sampling: ch, Events: sink, Pinger: ch, Access: sink, Analyst: ch}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	base := fmt.Sprintf("https://%s:%d", dashHost, ln.Addr().(*net.TCPAddr).Port)

	// The neighbour: plain HTTP on the same host name, another port.
	nb := &neighbour{dash: base, dashAddr: ln.Addr().String()}
	nln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nsrv := &http.Server{Handler: nb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = nsrv.Serve(nln) }()
	t.Cleanup(func() { nsrv.Close() })
	nbase := fmt.Sprintf("http://%s:%d", dashHost, nln.Addr().(*net.TCPAddr).Port)

	b := browser(t,
		chromedp.Flag("host-resolver-rules", "MAP "+dashHost+" 127.0.0.1"),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-features", "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"),
	)
	sh := newShots(t)
	cookies := func() map[string]*network.Cookie {
		t.Helper()
		c, cancel := context.WithTimeout(b, time.Minute)
		defer cancel()
		res, err := chromedp.Call(c, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/", nbase + "/"}})
		if err != nil {
			t.Fatalf("cookies: %v", err)
		}
		m := map[string]*network.Cookie{}
		for _, ck := range res.Cookies {
			m[ck.Name] = ck
		}
		return m
	}

	// 1. Log in over HTTPS at the host name: every cookie is __Host-.
	step(t, b, "login form", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)))
	sh.take(b, "cookie-login-form")
	login(t, b, base, "alice", "alice-pw")
	sh.take(b, "cookie-logged-in")
	jar := cookies()
	for _, name := range []string{"__Host-auditline_session", "__Host-auditline_device"} {
		ck := jar[name]
		if ck == nil {
			t.Fatalf("no %s cookie in the browser: %v", name, keys(jar))
		}
		if !ck.Secure || !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteLax || ck.Path != "/" || ck.Domain != dashHost {
			t.Errorf("%s: secure %v httpOnly %v sameSite %s path %q domain %q (want Secure, HttpOnly, Lax, /, host-only %s)",
				name, ck.Secure, ck.HTTPOnly, ck.SameSite, ck.Path, ck.Domain, dashHost)
		}
	}
	for name := range jar {
		if !strings.HasPrefix(name, "__Host-") {
			t.Errorf("cookie %s without the __Host- prefix", name)
		}
	}
	if got := eval[string](t, b, `document.cookie`); got != "" {
		t.Errorf("a script reads the cookies: %q", got)
	}
	session := jar["__Host-auditline_session"].Value

	// 2. The neighbour on another port of the same host name receives none
	// of them.
	step(t, b, "neighbour", chromedp.Navigate(nbase+"/"), chromedp.WaitVisible(chromedp.CSS(`#neighbour`)))
	sh.take(b, "cookie-neighbour-receives-nothing")
	if got := nb.received(); strings.Contains(got, "auditline") {
		t.Errorf("the neighbour received the dashboard's cookies: %q", got)
	}

	// 3. The neighbour plants cookies; the session is still alice's own.
	step(t, b, "neighbour plants cookies", chromedp.Navigate(nbase+"/plant"), chromedp.WaitVisible(chromedp.CSS(`#neighbour`)))
	jar = cookies()
	if ck := jar["__Host-auditline_session"]; ck == nil || ck.Value != session {
		t.Errorf("the neighbour replaced the session cookie: %+v", ck)
	}
	if ck := jar["auditline_session"]; ck == nil || ck.Value != "planted-plain" {
		t.Errorf("the plain-name cookie was not stored (the browser accepts it; the dashboard must ignore it): %+v", ck)
	}
	step(t, b, "back to the dashboard", chromedp.Navigate(base+"/records"), chromedp.WaitVisible(chromedp.CSS(`header .who`)))
	sh.take(b, "cookie-after-planting")
	if who := eval[string](t, b, `document.querySelector('header .who').innerText`); !strings.Contains(who, "alice") {
		t.Errorf("after the neighbour planted cookies the dashboard shows %q, want alice", who)
	}

	// 4. Login CSRF: logged out, the victim opens the neighbour's page,
	// which posts mallory's credentials with a token the neighbour fetched
	// from the dashboard (from the victim's own address).
	logout(t, b)
	step(t, b, "login CSRF page", chromedp.Navigate(nbase+"/csrf"))
	// The page posts itself: wait for the dashboard's answer.
	deadline := time.Now().Add(pipelineWait)
	for !eval[bool](t, b, `location.href.startsWith('`+base+`/login') && document.readyState === 'complete'`) {
		if time.Now().After(deadline) {
			t.Fatalf("the neighbour's login form did not reach the dashboard: at %s", eval[string](t, b, `location.href`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	sh.take(b, "cookie-login-csrf-refused")
	// Chromium sends Sec-Fetch-Site, so http.CrossOriginProtection refuses
	// the cross-site POST first; without that header (another client) the
	// login token refuses it (TestLoginCSRFToken, TestLoginSecurity).
	if txt := bodyText(t, b); !strings.Contains(txt, "cross-origin") && !strings.Contains(txt, "was not issued to this browser") {
		t.Errorf("the planted login was not refused:\n%.600s", txt)
	} else {
		t.Logf("login CSRF refused: %.200s", strings.TrimSpace(txt))
	}
	step(t, b, "dashboard after the CSRF attempt", chromedp.Navigate(base+"/records"), chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)))
	if n := eval[int](t, b, `document.querySelectorAll('header .who').length`); n != 0 {
		t.Errorf("the login CSRF logged the browser in as %q", eval[string](t, b, `document.querySelector('header .who').innerText`))
	}
	if ck := cookies()["__Host-auditline_session"]; ck != nil {
		t.Errorf("a session cookie after the login CSRF: %+v", ck)
	}
	if !nb.fetchedToken() {
		t.Error("the neighbour did not obtain a login token (the attack was not tried)")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// neighbour is another web service on the dashboard's host name.
type neighbour struct {
	dash, dashAddr string
	mu             sync.Mutex
	cookies        []string
	token          bool
}

func (n *neighbour) received() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.cookies, "; ")
}

func (n *neighbour) fetchedToken() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.token
}

var loginTokenRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (n *neighbour) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	n.cookies = append(n.cookies, r.Header.Get("Cookie"))
	n.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.URL.Path {
	case "/plant":
		for _, c := range []string{
			"__Host-auditline_session=planted-host; Path=/",           // __Host- without Secure: refused by the browser
			"__Host-auditline_session=planted-secure; Path=/; Secure", // Secure from plain HTTP: refused
			"auditline_session=planted-plain; Path=/",                 // stored, sent to the dashboard, ignored there
		} {
			w.Header().Add("Set-Cookie", c)
		}
	case "/csrf":
		// The attacker's server fetches a login form of its own, then serves
		// its token in a form that posts itself to the dashboard.
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, Timeout: time.Minute, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: dashHost},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, n.dashAddr)
			}}}
		resp, err := hc.Get(n.dash + "/login")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := loginTokenRe.FindSubmatch(page)
		if m == nil {
			http.Error(w, "no login token", http.StatusBadGateway)
			return
		}
		n.mu.Lock()
		n.token = true
		n.mu.Unlock()
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/login">`+
			`<input name="user" value="mallory"><input name="password" value="mallory-pw"><input name="csrf" value="%s"></form>`+
			`<script>document.getElementById('f').submit()</script>`, html.EscapeString(n.dash), html.EscapeString(string(m[1])))
		return
	}
	fmt.Fprint(w, `<!doctype html><p id="neighbour">another service on the same host name</p>`)
}

// hostCert writes a self-signed certificate for host and its key.
func hostCert(t *testing.T, host string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
