package dashboards

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/ingest/topic"
)

// browser drives the handler directly, so that each request can come from a
// chosen address and name a chosen Host (httptest's client always comes from
// 127.0.0.1).
type browser struct {
	t       *testing.T
	h       http.Handler
	addr    string // RemoteAddr, host:port
	host    string // Host header
	cookies map[string]*http.Cookie
}

func newBrowser(t *testing.T, h http.Handler, addr, host string) *browser {
	return &browser{t: t, h: h, addr: addr, host: host, cookies: map[string]*http.Cookie{}}
}

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.RemoteAddr, req.Host = b.addr, b.host
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return w
}

// login fetches the form and posts it; it returns the POST's answer.
func (b *browser) login(user, pw string) *httptest.ResponseRecorder {
	b.t.Helper()
	form := b.do("GET", "/login", nil)
	return b.do("POST", "/login", url.Values{"user": {user}, "password": {pw}, "csrf": {field(b.t, csrfRe, form.Body.String())}})
}

func securityServer(t *testing.T, mutate ...func(*Config)) *Server {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Ingest.Token = "t"
	cfg.Auth.Users = []auth.UserConfig{{Name: "viv", PasswordHash: hash(t, "viv-pw"), Role: "viewer", Tenants: []string{"acme"}}}
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fake{records: map[string]query.Detail{}}
	srv, err := New(cfg, topic.Shared{}, Settings{Registry: prometheus.NewRegistry(), Sources: Sources{NearMiss: f, Records: f, Record: f, Sampling: f, Events: f}})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestCookieScope: outside loopback every cookie is __Host- and Secure (so
// another service on the same host name, whatever its port, never receives
// the session over plain HTTP, and cannot plant one); plain HTTP on loopback
// (development) keeps plain names so that a browser can log in at all.
func TestCookieScope(t *testing.T) {
	srv := securityServer(t)
	for _, tc := range []struct {
		host   string
		secure bool
	}{
		{"127.0.0.1:8090", false}, {"localhost:8090", false}, {"[::1]:8090", false},
		{"dash.example.com", true}, {"10.0.0.7:8090", true}, {"dash.example.com:8443", true},
	} {
		t.Run(tc.host, func(t *testing.T) {
			b := newBrowser(t, srv.Handler(), "192.0.2.10:5555", tc.host)
			// Cookies named for the scope are what the browser would send back.
			w := b.login("viv", "viv-pw")
			if w.Code != http.StatusSeeOther {
				t.Fatalf("login: %d %s", w.Code, w.Body)
			}
			names := map[string]bool{}
			for _, c := range w.Result().Cookies() {
				names[c.Name] = true
				if c.Secure != tc.secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
					t.Errorf("cookie %s: %+v", c.Name, c)
				}
				if tc.secure != strings.HasPrefix(c.Name, "__Host-") {
					t.Errorf("cookie %s: __Host- prefix must go with Secure (%v)", c.Name, tc.secure)
				}
			}
			for _, base := range []string{sessionCookie, deviceCookie} {
				if !names[cookieName(base, tc.secure)] {
					t.Errorf("no %s cookie in %v", cookieName(base, tc.secure), names)
				}
			}
			if w := b.do("GET", "/near-miss", nil); w.Code != http.StatusOK {
				t.Errorf("with the session: %d", w.Code)
			}
		})
	}
}

// TestLoginCSRFToken: the login form's token is signed and bound to the
// address it was issued to; one fetched by an attacker and planted in a
// victim's browser (cookie and form field both) does not log the victim in.
func TestLoginCSRFToken(t *testing.T) {
	srv := securityServer(t)
	attacker := newBrowser(t, srv.Handler(), "203.0.113.66:4444", "dash.example.com")
	page := attacker.do("GET", "/login", nil)
	tok := field(t, csrfRe, page.Body.String())
	victim := newBrowser(t, srv.Handler(), "192.0.2.10:5555", "dash.example.com")
	victim.cookies[cookieName(loginCookie, true)] = &http.Cookie{Name: cookieName(loginCookie, true), Value: tok}
	w := victim.do("POST", "/login", url.Values{"user": {"viv"}, "password": {"viv-pw"}, "csrf": {tok}})
	if w.Code != http.StatusForbidden {
		t.Fatalf("planted login token: %d", w.Code)
	}
	for _, c := range w.Result().Cookies() {
		if strings.Contains(c.Name, sessionCookie) && c.Value != "" {
			t.Fatal("a session was started with a planted token")
		}
	}
	// A forged one fails the same way; the victim's own form works.
	victim.cookies[cookieName(loginCookie, true)].Value = "AAAA.9999999999.AAAA"
	if w := victim.do("POST", "/login", url.Values{"user": {"viv"}, "password": {"viv-pw"}, "csrf": {"AAAA.9999999999.AAAA"}}); w.Code != http.StatusForbidden {
		t.Fatalf("forged login token: %d", w.Code)
	}
	if w := victim.login("viv", "viv-pw"); w.Code != http.StatusSeeOther {
		t.Fatalf("own form: %d", w.Code)
	}
}

// TestNoLockout: a stranger failing a user's password over and over (from
// one address, then from many) never locks the real user out: at the
// browser she logged in from before she gets in at once; from a new
// browser she waits at most max_backoff.
func TestNoLockout(t *testing.T) {
	srv := securityServer(t)
	real := newBrowser(t, srv.Handler(), "192.0.2.10:5555", "dash.example.com")
	if w := real.login("viv", "viv-pw"); w.Code != http.StatusSeeOther {
		t.Fatalf("first login: %d", w.Code)
	}
	real.do("POST", "/logout", url.Values{"csrf": {field(t, csrfRe, real.do("GET", "/near-miss", nil).Body.String())}})
	refused := 0
	for i := range 60 {
		stranger := newBrowser(t, srv.Handler(), "203.0.113."+strconv.Itoa(i%200+1)+":4444", "dash.example.com")
		w := stranger.login("viv", "guess-"+strconv.Itoa(i))
		switch w.Code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("stranger attempt %d: %d", i, w.Code)
		}
	}
	if refused == 0 {
		t.Fatal("60 failed guesses and none was slowed down")
	}
	if w := real.login("viv", "viv-pw"); w.Code != http.StatusSeeOther {
		t.Fatalf("the real user at her own browser was refused after a stranger's failures: %d %s", w.Code, w.Body)
	}
	fresh := newBrowser(t, srv.Handler(), "198.51.100.20:5555", "dash.example.com")
	w := fresh.login("viv", "viv-pw")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("new browser during the stranger's back-off: %d", w.Code)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || time.Duration(ra)*time.Second > auth.DefaultMaxBackoff {
		t.Errorf("Retry-After %q: want 1 … %d s", w.Header().Get("Retry-After"), int(auth.DefaultMaxBackoff/time.Second))
	}
	if !strings.Contains(w.Body.String(), "try again in") {
		t.Errorf("the page does not say how long to wait:\n%s", w.Body)
	}
}

// TestLoginRateLimitsHTTP: one address gets per_ip_per_minute attempts, then
// 429 with Retry-After; another address is not affected.
func TestLoginRateLimitsHTTP(t *testing.T) {
	srv := securityServer(t)
	one := newBrowser(t, srv.Handler(), "203.0.113.5:4444", "dash.example.com")
	for i := range auth.DefaultPerIPPerMinute {
		if w := one.login("user"+strconv.Itoa(i), "x"); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
	w := one.login("someone", "x")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the per-address limit: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := newBrowser(t, srv.Handler(), "198.51.100.1:4444", "dash.example.com").login("viv", "viv-pw"); w.Code != http.StatusSeeOther {
		t.Fatalf("another address: %d", w.Code)
	}
}

// TestLoginMemoryBounded: 50 parallel logins against an argon2id hash of the
// default parameters (64 MiB each) must not take 50 × 64 MiB: at most
// max_concurrent_hashes checks run at once, the rest wait or are answered
// 503. The heap is sampled throughout.
func TestLoginMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("argon2id at 64 MiB")
	}
	h, err := auth.HashPassword("viv-pw")
	if err != nil {
		t.Fatal(err)
	}
	srv := securityServer(t, func(c *Config) {
		c.Auth.Users[0].PasswordHash = h
		c.Auth.Login.HashWait = 2 * time.Second
	})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			b := newBrowser(t, srv.Handler(), "10.9."+strconv.Itoa(i/200)+"."+strconv.Itoa(i%200+1)+":4444", "dash.example.com")
			w := b.login("viv", "wrong-"+strconv.Itoa(i))
			mu.Lock()
			codes[w.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("50 parallel logins: answers %v; heap in use %d MiB before, peak %d MiB (+%d MiB); peak %d checks at once",
		codes, base.HeapInuse>>20, peak.Load()>>20, grew>>20, srv.auth.PeakHashes())
	if p := srv.auth.PeakHashes(); p > auth.DefaultMaxConcurrentHashes {
		t.Errorf("%d checks at once, want at most %d", p, auth.DefaultMaxConcurrentHashes)
	}
	// Unbounded, this is 50 × 64 MiB = 3.2 GiB; bounded, 2 × 64 MiB plus
	// garbage the collector has not reclaimed yet.
	if grew > 640<<20 {
		t.Errorf("heap grew by %d MiB during 50 parallel logins, want well under 50 × 64 MiB", grew>>20)
	}
	if codes[http.StatusUnauthorized] == 0 || codes[http.StatusUnauthorized]+codes[http.StatusServiceUnavailable] != 50 {
		t.Errorf("answers %v: want 401 (checked) and 503 (busy) only", codes)
	}
}

// TestMetricsNotOnUIListener: /metrics is served by the operations listener
// only, never next to the pages a browser reaches.
func TestMetricsNotOnUIListener(t *testing.T) {
	srv := securityServer(t)
	b := newBrowser(t, srv.Handler(), "192.0.2.10:5555", "dash.example.com")
	if w := b.do("GET", "/metrics", nil); w.Code != http.StatusNotFound {
		t.Errorf("/metrics on the UI listener: %d", w.Code)
	}
	if w := b.do("GET", "/healthz", nil); w.Code != http.StatusOK {
		t.Errorf("/healthz: %d", w.Code)
	}
	if w := b.do("GET", "/readyz", nil); w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != "ready" {
		t.Errorf("/readyz: %d %q", w.Code, w.Body)
	}
}

// accessSink collects access events; block makes PostAccess hang until its
// context ends (ingest unreachable).
type accessSink struct {
	mu    sync.Mutex
	evs   []oversight.AccessEvent
	block bool
}

func (a *accessSink) PostAccess(ctx context.Context, evs []oversight.AccessEvent) error {
	if a.block {
		<-ctx.Done()
		return ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, evs...)
	return nil
}

func (a *accessSink) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.evs {
		s := e.Action + ":" + e.Actor.ID + ":" + e.Tenant
		if e.Target != nil {
			s += ":" + e.Target.RecordID[:4] + "@v" + strconv.Itoa(int(e.Target.Version))
		}
		out = append(out, s)
	}
	return out
}

// TestAccessLog: logins (and failed ones), record views, proof downloads and
// logouts each become an access event posted to ingest, naming who, what
// (tenant, record and version) and from where; when the access log cannot
// take more (ingest away for long), reads are refused, never served
// unlogged.
func TestAccessLog(t *testing.T) {
	sink := &accessSink{}
	ts, f := testServer(t)
	_ = ts
	srv := accessServer(t, f, sink)
	b := newBrowser(t, srv.Handler(), "192.0.2.10:5555", "127.0.0.1:8090")
	if w := b.login("viv", "wrong"); w.Code != http.StatusUnauthorized {
		t.Fatalf("bad login: %d", w.Code)
	}
	if w := b.login("viv", "viv-pw"); w.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", w.Code)
	}
	if w := b.do("GET", "/records/"+idA, nil); w.Code != http.StatusOK {
		t.Fatalf("record: %d", w.Code)
	}
	if w := b.do("GET", "/records/"+idA+"/proof", nil); w.Code != http.StatusOK {
		t.Fatalf("proof: %d", w.Code)
	}
	if w := b.do("GET", "/records/"+idB, nil); w.Code != http.StatusNotFound {
		t.Fatalf("other tenant's record: %d", w.Code)
	}
	csrf := field(t, csrfRe, b.do("GET", "/near-miss", nil).Body.String())
	b.do("POST", "/logout", url.Values{"csrf": {csrf}})
	want := []string{"login_failed:viv:*", "login:viv:*", "record_view:viv:acme:aaaa@v2", "proof_download:viv:acme:aaaa@v2", "logout:viv:*"}
	deadline := time.Now().Add(2 * time.Minute)
	for !slices.Equal(sink.actions(), want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := sink.actions(); !slices.Equal(got, want) {
		t.Fatalf("access events:\n got %v\nwant %v", got, want)
	}
	for _, e := range sink.evs {
		if e.Schema != oversight.AccessSchema || !strings.HasPrefix(e.EventID, "acc-") || e.Actor.Client != "192.0.2.10" || e.OccurredAt.IsZero() {
			t.Errorf("event %+v", e)
		}
	}

	// Ingest unreachable for long: the queue fills, reads are refused.
	stuck := &accessSink{block: true}
	srv2 := accessServer(t, f, stuck)
	b2 := newBrowser(t, srv2.Handler(), "192.0.2.11:5555", "127.0.0.1:8090")
	if w := b2.login("viv", "viv-pw"); w.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", w.Code)
	}
	for i := 0; i < accessQueue+accessBatch; i++ {
		_ = srv2.accessLog.add(oversight.AccessEvent{Action: "record_view"})
	}
	if w := b2.do("GET", "/records/"+idA, nil); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "access log") {
		t.Fatalf("record view with a full access log: %d", w.Code)
	}
}

func accessServer(t *testing.T, f *fake, sink AccessPoster) *Server {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Ingest.Token = "t"
	cfg.Auth.Users = []auth.UserConfig{{Name: "viv", PasswordHash: hash(t, "viv-pw"), Role: "viewer", Tenants: []string{"acme"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, topic.Shared{}, Settings{Registry: prometheus.NewRegistry(),
		Sources: Sources{NearMiss: f, Records: f, Record: f, Sampling: f, Events: f, Prover: f, Access: sink}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		go srv.accessLog.close() // a stuck sink ends with the drain timeout
	})
	return srv
}
