package access

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dauth "github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/internal/stacktest"
)

// TestLoginSecurity proves the login and session items of issue 18 on the
// real `auditline dashboard` process served over TLS, as a deployment runs
// it (a browser reaches it by a name, over HTTPS):
//
//   - cookie scope: every cookie it sets is __Host-, Secure, HttpOnly,
//     SameSite=Lax, Path=/ and host-only (no Domain), so that no other
//     service of the host name receives or plants it over plain HTTP;
//   - login token: a login without the form's token, or with a forged
//     one, is 403 and starts no session;
//   - no lockout: a stranger failing the real user's password over and over,
//     from the very address she uses, is throttled (429); she, at the
//     browser she logged in from before, gets in at once;
//   - bounded memory: 50 parallel logins against an argon2id hash of the
//     default parameters (64 MiB per check) raise the process's peak
//     resident memory (VmHWM) by far less than 50 × 64 MiB — before issue
//     18, 16 parallel logins took it from 188 MB to 1.1 GB.
func TestLoginSecurity(t *testing.T) {
	srv := stacktest.Shared(t)
	st := stacktest.New(t, srv, "")
	certFile, keyFile, client := selfSigned(t, st.Dir)
	name := st.Name
	ctx := context.Background()
	conn := seedtest.Schema(t, srv.ClickHouse, name)
	if err := seed.Insert(ctx, conn, name, query.DefaultTable, seed.Generate(10, seed.Options{End: time.Now(), Span: time.Hour, Seed: 5})); err != nil {
		t.Fatal(err)
	}
	hash, err := dauth.HashPassword(pwAlice) // argon2id, default parameters
	if err != nil {
		t.Fatal(err)
	}
	c := &st.Config
	c.Dashboard.Ingest.Token = tokOversight
	c.Dashboard.TLS.CertFile, c.Dashboard.TLS.KeyFile = certFile, keyFile
	c.Dashboard.Auth.Users = []dauth.UserConfig{{Name: "alice", PasswordHash: hash, Role: "reviewer", Tenants: []string{"*"}}}
	// The access events go to an ingest that is not running: they wait in
	// the dashboard's queue, which holds far more than this test makes.
	dash := st.AuditlineProc("dashboard-defaults", "dashboard", "--config", st.WriteConfig("dashboard-defaults.yaml", st.Config))
	dash.Start()
	base := st.DashboardURL()
	st.WaitReadyClient(client, base)
	du, _ := url.Parse(base)

	// --- cookie scope: what the real process sets on the login form and
	// on a login.
	alice := newTLSBrowser(t, client, base)
	form, setCookies := alice.loginForm()
	code, loginCookies := alice.post("/login", url.Values{"user": {"alice"}, "password": {pwAlice}, "csrf": {form}})
	if code != http.StatusSeeOther {
		t.Fatalf("alice's login: %d", code)
	}
	seen := map[string]bool{}
	for _, raw := range append(setCookies, loginCookies...) {
		ck, err := http.ParseSetCookie(raw)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", raw, err)
		}
		seen[ck.Name] = true
		attrs := strings.ToLower(raw)
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" ||
			ck.Domain != "" || strings.Contains(attrs, "domain=") {
			t.Errorf("cookie scope: Set-Cookie %q (want __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain)", raw)
		}
	}
	for _, n := range []string{"__Host-auditline_login", "__Host-auditline_session", "__Host-auditline_device"} {
		if !seen[n] {
			t.Errorf("cookie scope: no %s among %v", n, seen)
		}
	}
	if code, _ := alice.get("/records"); code != http.StatusOK {
		t.Fatalf("alice with her session: %d", code)
	}
	// The same session under the plain name (as another service of the host
	// could plant it, or a browser would send it over plain HTTP) is not
	// honoured: only the __Host- cookie is.
	var session string
	for _, ck := range alice.jar.Cookies(du) {
		if ck.Name == "__Host-auditline_session" {
			session = ck.Value
		}
	}
	plainJar, _ := cookiejar.New(nil)
	plainJar.SetCookies(du, []*http.Cookie{{Name: "auditline_session", Value: session, Path: "/"}})
	planted := &tlsBrowser{t: t, base: base, jar: plainJar, hc: noRedirect(client, plainJar)}
	if code, _ := planted.get("/records"); code != http.StatusSeeOther {
		t.Errorf("the session id under the plain cookie name: %d, want 303 to /login", code)
	}
	if code, _ := alice.postCSRF("/logout"); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}

	// --- login token: none, forged, or another form's cookie.
	for what, vals := range map[string]url.Values{
		"no token":     {"user": {"alice"}, "password": {pwAlice}},
		"forged token": {"user": {"alice"}, "password": {pwAlice}, "csrf": {"AAAA.9999999999.AAAA"}},
	} {
		b := newTLSBrowser(t, client, base)
		b.loginForm()
		if code, cks := b.post("/login", vals); code != http.StatusForbidden || strings.Contains(strings.Join(cks, ";"), "auditline_session=") {
			t.Errorf("login with %s: %d %v, want 403 and no session", what, code, cks)
		}
	}

	// --- no lockout: a stranger at alice's own address fails 40 times.
	throttled := 0
	for i := range 40 {
		s := newTLSBrowser(t, client, base)
		tok, _ := s.loginForm()
		switch code, _ := s.post("/login", url.Values{"user": {"alice"}, "password": {"guess-" + strconv.Itoa(i)}, "csrf": {tok}}); code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			throttled++
		default:
			t.Fatalf("stranger's attempt %d: %d", i, code)
		}
	}
	if throttled == 0 {
		t.Fatal("40 failed guesses from one address and none throttled")
	}
	tok, _ := alice.loginForm()
	if code, _ := alice.post("/login", url.Values{"user": {"alice"}, "password": {pwAlice}, "csrf": {tok}}); code != http.StatusSeeOther {
		t.Fatalf("alice at her own browser after a stranger's %d failures: %d, want 303 (no lockout)", 40, code)
	}
	t.Logf("stranger: 40 failed guesses, %d throttled (429); alice at her browser logged in at once", throttled)
	if err := dash.Stop(); err != nil {
		t.Error(err)
	}

	// --- bounded memory: 50 parallel logins. The rate limits and the
	// back-off are raised so that every attempt reaches the hash slots (what
	// is measured here is max_concurrent_hashes, default 2); each waits
	// hash_wait (default 5 s) for a slot, then is answered 503.
	c.Dashboard.Listen = fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort())
	c.Dashboard.Auth.Login.PerIPPerMinute, c.Dashboard.Auth.Login.GlobalPerMinute, c.Dashboard.Auth.Login.BackoffAfter = 1000, 1000, 1000
	dash = st.AuditlineProc("dashboard-flood", "dashboard", "--config", st.WriteConfig("dashboard-flood.yaml", st.Config))
	dash.Start()
	base = st.DashboardURL()
	st.WaitReadyClient(client, base)
	warm := newTLSBrowser(t, client, base)
	tok, _ = warm.loginForm()
	if code, _ := warm.post("/login", url.Values{"user": {"alice"}, "password": {"wrong"}, "csrf": {tok}}); code != http.StatusUnauthorized {
		t.Fatalf("warm-up login: %d", code)
	}
	before := procStatus(t, dash.Pid())
	var peakRSS atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if s, err := readStatus(dash.Pid()); err == nil {
				peakRSS.Store(max(peakRSS.Load(), s["VmRSS"]))
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	forms := make([]*tlsBrowser, 50)
	toks := make([]string, 50)
	for i := range forms {
		forms[i] = newTLSBrowser(t, client, base)
		toks[i], _ = forms[i].loginForm()
	}
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, b := range forms {
		wg.Go(func() {
			code, _ := b.post("/login", url.Values{"user": {"alice"}, "password": {"wrong-" + strconv.Itoa(i)}, "csrf": {toks[i]}})
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(t0)
	close(stop)
	sampler.Wait()
	after := procStatus(t, dash.Pid())
	grew := after["VmHWM"] - before["VmHWM"]
	t.Logf("50 parallel logins in %s: answers %v; VmHWM %d MiB before, %d MiB after (+%d MiB), VmRSS peak sampled %d MiB",
		took.Round(time.Millisecond), codes, before["VmHWM"]>>10, after["VmHWM"]>>10, grew>>10, peakRSS.Load()>>10)
	if codes[http.StatusUnauthorized] < 2 || codes[http.StatusUnauthorized]+codes[http.StatusServiceUnavailable] != 50 {
		t.Errorf("answers %v: want 401 (checked, at least 2) and 503 (busy) only", codes)
	}
	// Unbounded: 50 × 64 MiB = 3.2 GiB at once. Bounded to 2 checks: two
	// 64 MiB blocks plus what the collector has not returned yet.
	if grew > 512<<10 {
		t.Errorf("peak resident memory grew by %d MiB during 50 parallel logins, want < 512 MiB (max_concurrent_hashes 2 × 64 MiB)", grew>>10)
	}
	if err := dash.Stop(); err != nil {
		t.Error(err)
	}
}

// readStatus returns the kB fields of /proc/pid/status (VmRSS, VmHWM …).
func readStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasSuffix(v, " kB") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, " kB")), 10, 64)
		if err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

func procStatus(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	s, err := readStatus(pid)
	if err != nil || s["VmHWM"] == 0 {
		t.Fatalf("/proc/%d/status: %v %v", pid, s, err)
	}
	return s
}

// tlsBrowser is one browser (its own cookie jar) on the TLS dashboard; it
// does not follow redirects.
type tlsBrowser struct {
	t    *testing.T
	base string
	jar  *cookiejar.Jar
	hc   *http.Client
}

func noRedirect(client *http.Client, jar http.CookieJar) *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: client.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func newTLSBrowser(t *testing.T, client *http.Client, base string) *tlsBrowser {
	jar, _ := cookiejar.New(nil)
	return &tlsBrowser{t: t, base: base, jar: jar, hc: noRedirect(client, jar)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *tlsBrowser) do(req *http.Request) (int, string, []string) {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Values("Set-Cookie")
}

func (b *tlsBrowser) get(path string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	code, body, _ := b.do(req)
	return code, body
}

// loginForm fetches the login form: its token and the cookies set with it.
func (b *tlsBrowser) loginForm() (string, []string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+"/login", nil)
	code, body, cks := b.do(req)
	m := csrfField.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		b.t.Fatalf("login form: %d\n%.500s", code, body)
	}
	return m[1], cks
}

func (b *tlsBrowser) post(path string, form url.Values) (int, []string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, _, cks := b.do(req)
	return code, cks
}

// postCSRF posts an empty form with the session's CSRF token (from a page).
func (b *tlsBrowser) postCSRF(path string) (int, []string) {
	b.t.Helper()
	_, page := b.get("/records")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no csrf token on /records")
	}
	return b.post(path, url.Values{"csrf": {m[1]}})
}
