package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/topic"
)

// fake is an in-memory source that honours tenant scoping like the real one.
type fake struct {
	mu      sync.Mutex
	records map[string]query.Detail
	posted  []oversight.Event
	postErr error
	filters []query.Filter
}

func (f *fake) visible(fl query.Filter, tenant string) bool {
	if fl.Tenant != "" && fl.Tenant != tenant {
		return false
	}
	return slices.Contains(fl.Tenants, query.AllTenants) || slices.Contains(fl.Tenants, tenant)
}

func (f *fake) NearMiss(_ context.Context, fl query.Filter) (query.NearMissPage, error) {
	f.mu.Lock()
	f.filters = append(f.filters, fl)
	f.mu.Unlock()
	if len(fl.Tenants) == 0 {
		return query.NearMissPage{}, query.ErrNoTenant
	}
	step := query.Step(fl.From, fl.To)
	p := query.NearMissPage{Step: step, Totals: query.Count{Total: 100, Flagged: 7, Blocked: 2, NearMiss: 5}}
	for t := fl.From.Truncate(step); t.Before(fl.To); t = t.Add(step) {
		p.Trend = append(p.Trend, query.Point{Start: t, Blocked: 1, NearMiss: 2, Total: 10})
	}
	p.Reasons = []query.ReasonPoint{{Start: p.Trend[0].Start, Reason: "fallback_after_429", Count: 3}}
	p.ByTeam = []query.Count{{Key: "payments <script>", Total: 50, Flagged: 5, Blocked: 1, NearMiss: 4}}
	p.ByAlias = []query.Count{{Key: "gpt-4o", Total: 50, Flagged: 5, Blocked: 1, NearMiss: 4}}
	p.ByProvider = []query.Count{{Key: "azure", Total: 50, Flagged: 5, Blocked: 1, NearMiss: 4}}
	p.ByReason = []query.Count{{Key: "fallback_after_429", Total: 3, Flagged: 3, NearMiss: 3}}
	return p, nil
}

func (f *fake) Records(_ context.Context, fl query.Filter, _ query.Cursor, _ int) (query.List, error) {
	var l query.List
	for _, d := range f.records {
		if f.visible(fl, d.Decision.Identity.Tenant) {
			l.Rows = append(l.Rows, query.Row{RecordID: d.Decision.RecordID, Version: d.Decision.Version, Tenant: d.Decision.Identity.Tenant, StartTime: d.Decision.Request.StartTime.Std()})
		}
	}
	return l, nil
}

func (f *fake) Record(_ context.Context, fl query.Filter, id string, version uint32) (query.Detail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.records[id]
	if !ok || !f.visible(fl, d.Decision.Identity.Tenant) {
		return query.Detail{}, query.ErrNotFound
	}
	if version != 0 && version != d.Decision.Version {
		return query.Detail{}, query.ErrNotFound
	}
	return d, nil
}

func (f *fake) Sampling(_ context.Context, fl query.Filter) (query.SamplingPage, error) {
	return query.SamplingPage{Step: time.Hour, Tiers: []query.Tier{{Tier: "high", Total: 10, Sampled: 4, Baseline: 3, Burst: 1, Reviewed: 1, Rate: 0.5}},
		Burst: query.Burst{Known: true, On: true, By: "carol", Role: "admin", Rationale: "incident 42", At: time.Unix(1763700000, 0)}}, nil
}

func (f *fake) Prove(_ context.Context, id string, version uint32, around time.Time) ([]byte, error) {
	return fmt.Appendf(nil, `{"record_id":%q,"version":%d,"around":%q}`, id, version, around.Format(time.RFC3339)), nil
}

func (f *fake) Post(_ context.Context, ev oversight.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.postErr != nil {
		return f.postErr
	}
	f.posted = append(f.posted, ev)
	return nil
}

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

const (
	idA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func testServer(t *testing.T, mutate ...func(*Config)) (*httptest.Server, *fake) {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Ingest.Token = "t"
	cfg.Auth.Users = []auth.UserConfig{
		{Name: "viv", PasswordHash: hash(t, "viv-pw"), Role: "viewer", Tenants: []string{"acme"}},
		{Name: "rita", PasswordHash: hash(t, "rita-pw"), Role: "reviewer", Tenants: []string{"acme"}},
		{Name: "bob", PasswordHash: hash(t, "bob-pw"), Role: "reviewer", Tenants: []string{"globex"}},
		{Name: "ada", PasswordHash: hash(t, "ada-pw"), Role: "admin", Tenants: []string{"acme"}},
		{Name: "root", PasswordHash: hash(t, "root-pw"), Role: "admin", Tenants: []string{"*"}},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fake{records: map[string]query.Detail{}}
	for id, tenant := range map[string]string{idA: "acme", idB: "globex"} {
		d := record.Decision{SchemaVersion: 1, RecordID: id, Version: 2, Completeness: record.Complete}
		d.Identity.Tenant = tenant
		d.Request.RequestKey = "key-" + tenant
		d.Request.StartTime = record.Time(1763700000000)
		d.Risk = record.Risk{Tier: "high", Sampled: true, SampleReason: "baseline", SampleRate: 0.5}
		f.records[id] = query.Detail{Decision: d, Partition: 3, Offset: 1234, Versions: []query.Version{{Version: 2}, {Version: 1}}}
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	srv, err := New(cfg, topic.Shared{}, Settings{Registry: prometheus.NewRegistry(), Now: func() time.Time { return now },
		Sources: Sources{NearMiss: f, Records: f, Record: f, Sampling: f, Events: f, Prover: f}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, f
}

// client is a browser-like client: cookies, no automatic redirects.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newClient(t *testing.T, ts *httptest.Server) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: ts.URL, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var eventRe = regexp.MustCompile(`name="event_id" value="([^"]+)"`)

func field(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, page)
	}
	return m[1]
}

func (c *client) login(user, pw string) string {
	c.t.Helper()
	_, page := c.do("GET", "/login", nil)
	resp, body := c.do("POST", "/login", url.Values{"user": {user}, "password": {pw}, "csrf": {field(c.t, csrfRe, page)}, "next": {"/near-miss"}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login %s: %d\n%s", user, resp.StatusCode, body)
	}
	_, page = c.do("GET", "/near-miss", nil)
	return field(c.t, csrfRe, page)
}

func TestLoginFlow(t *testing.T) {
	ts, _ := testServer(t)
	c := newClient(t, ts)
	resp, _ := c.do("GET", "/near-miss?range=7d", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("unauthenticated: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := c.do("GET", "/login", nil)
	tok := field(t, csrfRe, page)
	for _, tc := range []struct {
		name, user, pw, csrf string
		code                 int
	}{
		{"wrong password", "viv", "nope", tok, http.StatusUnauthorized},
		{"unknown user", "mallory", "x", tok, http.StatusUnauthorized},
		{"missing csrf", "viv", "viv-pw", "", http.StatusForbidden},
		{"wrong csrf", "viv", "viv-pw", "forged", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, page := c.do("GET", "/login", nil)
			csrf := tc.csrf
			if csrf == tok {
				csrf = field(t, csrfRe, page)
			}
			resp, body := c.do("POST", "/login", url.Values{"user": {tc.user}, "password": {tc.pw}, "csrf": {csrf}})
			if resp.StatusCode != tc.code {
				t.Fatalf("got %d want %d\n%s", resp.StatusCode, tc.code, body)
			}
		})
	}
	csrf := c.login("viv", "viv-pw")
	resp, page = c.do("GET", "/near-miss", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "<svg") {
		t.Fatalf("near-miss: %d", resp.StatusCode)
	}
	if strings.Contains(page, "payments <script>") || !strings.Contains(page, "payments &lt;script&gt;") {
		t.Error("a team name was not escaped")
	}
	for h, want := range map[string]string{"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("header %s = %q, want %q", h, resp.Header.Get(h), want)
		}
	}
	// Logout needs the CSRF token, then the session is gone server-side.
	if resp, _ := c.do("POST", "/logout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without csrf: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/near-miss", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

func TestSessionCookieFlags(t *testing.T) {
	for _, tc := range []struct {
		secure string
		name   string
		flag   bool
	}{{"never", "auditline_session", false}, {"always", "__Host-auditline_session", true}} {
		t.Run(tc.secure, func(t *testing.T) {
			ts, _ := testServer(t, func(c *Config) { c.CookieSecure = tc.secure })
			c := newClient(t, ts)
			_, page := c.do("GET", "/login", nil)
			// The jar would drop Secure cookies over http; read Set-Cookie directly.
			resp, _ := c.do("POST", "/login", url.Values{"user": {"viv"}, "password": {"viv-pw"}, "csrf": {field(t, csrfRe, page)}},
				"Cookie", cookieName(loginCookie, tc.flag)+"="+field(t, csrfRe, page))
			var got *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == tc.name && ck.Value != "" {
					got = ck
				}
			}
			if got == nil {
				t.Fatalf("no %s cookie in %v (status %d)", tc.name, resp.Header["Set-Cookie"], resp.StatusCode)
			}
			if !got.HttpOnly || got.SameSite != http.SameSiteLaxMode || got.Secure != tc.flag || got.Path != "/" {
				t.Errorf("cookie flags: %+v", got)
			}
		})
	}
}

func TestBadParameters(t *testing.T) {
	ts, _ := testServer(t)
	c := newClient(t, ts)
	c.login("viv", "viv-pw")
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/near-miss?range=2y", "parameter range", 400},
		{"/near-miss?from=yesterday&to=2026-11-22", "parameter from", 400},
		{"/near-miss?from=2026-11-22", "give both", 400},
		{"/near-miss?from=2026-11-22&to=2026-11-21", "from must be before to", 400},
		{"/near-miss?range=24h&from=2026-11-21&to=2026-11-22", "one or the other", 400},
		{"/near-miss?from=2000-01-01&to=2026-11-22", "exceeds", 400},
		{"/records?category=bogus", "parameter category", 400},
		{"/records?cursor=abc", "parameter cursor", 400},
		{"/records?sampled=maybe", "parameter sampled", 400},
		{"/records?review=DROP%20TABLE", "parameter review", 400},
		{"/records?team=a&team=b", "given 2 times", 400},
		{"/records?team=" + strings.Repeat("x", 201), "at most 200", 400},
		{"/records/not%20an%20id", "record id", 400},
		{"/records/" + idA + "?v=zero", "parameter v", 400},
		{"/records?tenant=globex", "cannot see tenant", 403},
		{"/near-miss?tenant=globex", "cannot see tenant", 403},
		{"/sampling?tenant=globex", "cannot see tenant", 403},
		{"/records/" + idB, "No record", 404},
		{"/records/" + idB + "/proof", "No record", 404},
		{"/records/" + idA + "/proof", `{"record_id":"` + idA + `","version":2,"around":"2025-11-21T04:40:00Z"}`, 200},
		{"/records/" + idA + "/proof?v=3", "No record", 404},
		{"/near-miss?from=2026-11-21&to=2026-11-22&team=x%27%20OR%201%3D1", "Near misses", 200},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := c.do("GET", tc.path, nil)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d, want %d with %q\n%s", resp.StatusCode, tc.code, tc.want, body)
			}
		})
	}
}

func TestTenantScopingReachesQueries(t *testing.T) {
	ts, f := testServer(t)
	c := newClient(t, ts)
	c.login("viv", "viv-pw")
	c.do("GET", "/near-miss?tenant=acme&team=payments", nil)
	last := f.filters[len(f.filters)-1]
	if !slices.Equal(last.Tenants, []string{"acme"}) || last.Tenant != "acme" || last.Team != "payments" {
		t.Fatalf("filter: %+v", last)
	}
	_, body := c.do("GET", "/records", nil)
	if strings.Contains(body, idB) || !strings.Contains(body, idA[:12]) {
		t.Fatalf("records list leaks or misses:\n%s", body)
	}
}

func TestReview(t *testing.T) {
	ts, f := testServer(t)
	viewer := newClient(t, ts)
	vcsrf := viewer.login("viv", "viv-pw")
	rita := newClient(t, ts)
	rita.login("rita", "rita-pw")
	_, page := rita.do("GET", "/records/"+idA, nil)
	csrf, eid := field(t, csrfRe, page), field(t, eventRe, page)
	good := url.Values{"csrf": {csrf}, "event_id": {eid}, "version": {"2"}, "outcome": {"flag"}, "rationale": {"PII in the prompt"},
		"request_key": {"forged"}} // ignored: the event's fields come from the store

	for _, tc := range []struct {
		name string
		c    *client
		path string
		edit func(url.Values)
		code int
	}{
		{"viewer may not review", viewer, "/records/" + idA + "/review", func(v url.Values) { v.Set("csrf", vcsrf) }, 403},
		{"no csrf", rita, "/records/" + idA + "/review", func(v url.Values) { v.Del("csrf") }, 403},
		{"bad outcome", rita, "/records/" + idA + "/review", func(v url.Values) { v.Set("outcome", "delete") }, 400},
		{"no rationale", rita, "/records/" + idA + "/review", func(v url.Values) { v.Set("rationale", "  ") }, 400},
		{"bad event id", rita, "/records/" + idA + "/review", func(v url.Values) { v.Set("event_id", "x") }, 400},
		{"other tenant", rita, "/records/" + idB + "/review", func(url.Values) {}, 404},
		{"unknown version", rita, "/records/" + idA + "/review", func(v url.Values) { v.Set("version", "7") }, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range good {
				form[k] = slices.Clone(v)
			}
			tc.edit(form)
			resp, body := tc.c.do("POST", tc.path, form)
			if resp.StatusCode != tc.code {
				t.Fatalf("got %d want %d\n%s", resp.StatusCode, tc.code, body)
			}
		})
	}
	if len(f.posted) != 0 {
		t.Fatalf("refused reviews were posted: %+v", f.posted)
	}
	resp, body := rita.do("POST", "/records/"+idA+"/review", good)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("review: %d\n%s", resp.StatusCode, body)
	}
	if len(f.posted) != 1 {
		t.Fatalf("posted %d events", len(f.posted))
	}
	ev := f.posted[0]
	want := oversight.Event{Schema: oversight.Schema, EventID: eid, Kind: "review", RequestKey: "key-acme", RecordID: idA, RecordVersion: 2,
		DecisionRef: &oversight.DecisionRef{Partition: 3, Offset: 1234}, Outcome: "flag",
		Reviewer: oversight.Reviewer{ID: "rita", Role: "reviewer", Tenant: "acme"}, Rationale: "PII in the prompt", OccurredAt: ev.OccurredAt}
	gb, _ := json.Marshal(ev)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("event:\n got %s\nwant %s", gb, wb)
	}
	// Ingest refusing is reported, and nothing claims success.
	f.postErr = &oversight.RejectedError{Status: 401, Body: "bad token"}
	resp, body = rita.do("POST", "/records/"+idA+"/review", good)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "nothing was recorded") {
		t.Fatalf("post failure: %d\n%s", resp.StatusCode, body)
	}
}

func TestBurst(t *testing.T) {
	ts, f := testServer(t)
	for _, tc := range []struct {
		user string
		code int
	}{{"rita", 403}, {"ada", 403}, {"root", 303}} {
		t.Run(tc.user, func(t *testing.T) {
			c := newClient(t, ts)
			c.login(tc.user, tc.user+"-pw")
			_, page := c.do("GET", "/sampling", nil)
			if !strings.Contains(page, "switched by carol") {
				t.Fatalf("burst state not shown:\n%s", page)
			}
			eid := "dash-0123456789abcdef0123456789abcdef"
			resp, body := c.do("POST", "/sampling/burst", url.Values{"csrf": {field(t, csrfRe, page)}, "event_id": {eid}, "burst": {"on"}, "rationale": {"incident 7"}, "tier": {"high"}})
			if resp.StatusCode != tc.code {
				t.Fatalf("got %d want %d\n%s", resp.StatusCode, tc.code, body)
			}
		})
	}
	if len(f.posted) != 1 || f.posted[0].Kind != "sampling_control" || !f.posted[0].Sampling.Burst || f.posted[0].Reviewer.ID != "root" || f.posted[0].Sampling.Tiers[0] != "high" {
		t.Fatalf("posted: %+v", f.posted)
	}
}

func TestSSO(t *testing.T) {
	ts, _ := testServer(t, func(c *Config) {
		c.Auth.SSO = auth.SSOConfig{UserHeader: "X-Forwarded-User", TrustedProxies: []string{"10.0.0.0/8"}}
	})
	c := newClient(t, ts)
	// httptest serves from 127.0.0.1, which is not a trusted proxy here: the header is ignored.
	resp, _ := c.do("GET", "/near-miss", nil, "X-Forwarded-User", "rita")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("untrusted proxy header honoured: %d", resp.StatusCode)
	}
	ts2, _ := testServer(t, func(c *Config) {
		c.Auth.SSO = auth.SSOConfig{UserHeader: "X-Forwarded-User", TrustedProxies: []string{"127.0.0.1"}}
	})
	c2 := newClient(t, ts2)
	resp, body := c2.do("GET", "/near-miss", nil, "X-Forwarded-User", "rita")
	if resp.StatusCode != 200 || !strings.Contains(body, "rita · reviewer") {
		t.Fatalf("trusted proxy: %d", resp.StatusCode)
	}
	resp, _ = c2.do("GET", "/near-miss", nil, "X-Forwarded-User", "mallory")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unknown sso user: %d", resp.StatusCode)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := NewDefaultConfig()
	cfg.Ingest.Token = "t"
	cfg.Auth.Users = []auth.UserConfig{{Name: "viv", PasswordHash: hash(t, "pw"), Role: "viewer", Tenants: []string{"acme"}}}
	f := &fake{records: map[string]query.Detail{}}
	mounted := false
	srv, err := New(cfg, topic.Shared{}, Settings{Registry: reg, Handle: func(mux *http.ServeMux) {
		mounted = true
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	}, Sources: Sources{NearMiss: f, Records: f, Record: f, Sampling: f, Events: f}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 || !mounted {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	mfs, _ := reg.Gather()
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"auditline_dashboard_requests_total", "auditline_dashboard_sessions"} {
		if !slices.Contains(names, want) {
			t.Errorf("metric %s missing from %v", want, names)
		}
	}
}
