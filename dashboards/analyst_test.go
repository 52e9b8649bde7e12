package dashboards

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/topic"
)

// analyst is a fake AnalystReader: it remembers the filters it was asked
// with and answers fixed data.
type analyst struct {
	mu      sync.Mutex
	filters []query.Filter
	rows    []query.ExportRow
	failAt  int // Export fails after this many rows (0: never)
}

func (a *analyst) seen(f query.Filter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.filters = append(a.filters, f)
}

func (a *analyst) Options(_ context.Context, f query.Filter) (query.Options, error) {
	a.seen(f)
	return query.Options{Tenant: []string{"acme"}, Outcome: []string{"success", "blocked"}, Tier: []string{"high", "low"},
		Reason: []string{"fallback_after_429"}, Review: []string{"flag"}, Model: []string{"gpt-4o"}, User: []string{"u-1@acme.example"},
		Team: []string{"payments"}, Alias: []string{"chat"}, Provider: []string{"azure"}}, nil
}

func (a *analyst) Total(_ context.Context, f query.Filter) (uint64, error) {
	a.seen(f)
	return 1234, nil
}

func (a *analyst) Export(_ context.Context, f query.Filter, _ int, fn func(query.ExportRow) error) error {
	a.seen(f)
	for i, r := range a.rows {
		if a.failAt > 0 && i == a.failAt {
			return errors.New("clickhouse went away")
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (a *analyst) Usage(_ context.Context, f query.Filter) (query.Usage, error) {
	a.seen(f)
	u := query.Usage{Step: time.Hour, Totals: query.UsagePoint{Requests: 120, CostUSD: 3.5, Tokens: 9000, AvgLatencyMS: 400, P95LatencyMS: 1200},
		Previous: query.UsagePoint{Requests: 100, CostUSD: 2.5, Tokens: 10000, P95LatencyMS: 1000},
		ByTenant: []query.UsageCount{{Key: "acme", UsagePoint: query.UsagePoint{Requests: 120, CostUSD: 3.5}}}}
	for t := f.From.Truncate(time.Hour); t.Before(f.To); t = t.Add(time.Hour) {
		u.Trend = append(u.Trend, query.UsagePoint{Start: t, Requests: 5, CostUSD: 0.1})
	}
	return u, nil
}

func (a *analyst) ReviewStats(_ context.Context, f query.Filter) (query.ReviewStats, error) {
	a.seen(f)
	return query.ReviewStats{Reviewers: []query.Count{{Key: "rita", Total: 7}}, Pending: 3,
		OldestPending: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}, nil
}

func (a *analyst) AccessLog(_ context.Context, f query.Filter, _ int) ([]query.AccessRow, error) {
	a.seen(f)
	return []query.AccessRow{{RecordID: "0123456789abcdef", At: time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC), Action: "record_view", Actor: "rita",
		Target: idA, TargetVer: 2, Sender: "dashboard", Tenant: "acme"}}, nil
}

// analystServer is testServer's users and records with an AnalystReader and
// an access log.
func analystServer(t *testing.T) (*Server, *fake, *analyst, *accessSink) {
	t.Helper()
	_, f := testServer(t)
	a := &analyst{rows: []query.ExportRow{
		{RecordID: idA, Version: 2, Tenant: "acme", StartTime: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), RequestKey: "k1",
			Team: "=HYPERLINK(\"http://evil\")", Reasons: []string{"retries", "fallback_after_429"}, CostUSD: -0.5, Outcome: "success"},
		{RecordID: idB, Version: 1, Tenant: "acme", UserEmail: "+1 555", KeyAlias: "@sum(a1)", Outcome: "blocked"},
	}}
	sink := &accessSink{}
	cfg := NewDefaultConfig()
	cfg.Ingest.Token = "t"
	cfg.Auth.Users = []auth.UserConfig{
		{Name: "viv", PasswordHash: hash(t, "viv-pw"), Role: "viewer", Tenants: []string{"acme"}},
		{Name: "root", PasswordHash: hash(t, "root-pw"), Role: "admin", Tenants: []string{"*"}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	srv, err := New(cfg, topic.Shared{}, Settings{Registry: prometheus.NewRegistry(), Now: func() time.Time { return now },
		Sources: Sources{NearMiss: f, Records: f, Record: f, Sampling: f, Events: f, Prover: f, Access: sink, Analyst: a}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { go srv.accessLog.close() })
	return srv, f, a, sink
}

// TestExport: CSV and JSON exports stream every row the store gives, with
// the user's tenants in the filter, a formula-looking CSV field defused,
// logged as an access event (format and filter); a failure mid-way cuts the
// connection instead of ending a short file normally.
func TestExport(t *testing.T) {
	srv, _, a, sink := analystServer(t)
	b := newBrowser(t, srv.Handler(), "192.0.2.10:5555", "127.0.0.1:8090")
	if w := b.login("viv", "viv-pw"); w.Code != http.StatusSeeOther {
		t.Fatal(w.Code)
	}
	w := b.do("GET", "/export?format=csv&range=7d&tier=high", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" || !strings.Contains(w.Header().Get("Content-Disposition"), `attachment; filename="auditline-records-`) {
		t.Fatalf("csv: %d %v", w.Code, w.Header())
	}
	rows, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	if err != nil || len(rows) != 3 || !slices.Equal(rows[0], query.ExportColumns) {
		t.Fatalf("csv rows %v %v", rows, err)
	}
	col := func(name string) int { return slices.Index(query.ExportColumns, name) }
	if rows[1][col("team")] != `'=HYPERLINK("http://evil")` || rows[2][col("user_email")] != "'+1 555" || rows[2][col("key_alias")] != "'@sum(a1)" ||
		rows[1][col("cost_usd")] != "-0.5" || rows[1][col("near_miss_reasons")] != "retries fallback_after_429" {
		t.Errorf("csv fields: %q / %q", rows[1], rows[2])
	}
	last := a.filters[len(a.filters)-1]
	if !slices.Equal(last.Tenants, []string{"acme"}) || last.Tier != "high" {
		t.Errorf("export filter %+v: the user's tenants must scope it", last)
	}
	w = b.do("GET", "/export?format=json&range=7d", nil)
	var got []query.ExportRow
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || json.Unmarshal(w.Body.Bytes(), &got) != nil || len(got) != 2 || got[0].Team != `=HYPERLINK("http://evil")` {
		t.Fatalf("json: %d %s", w.Code, w.Body)
	}
	for _, bad := range []string{"/export?format=xml&range=7d", "/export?range=7d", "/export?format=csv&teams=x", "/export?format=csv&tenant=globex"} {
		if w := b.do("GET", bad, nil); w.Code != http.StatusBadRequest && w.Code != http.StatusForbidden {
			t.Errorf("%s: %d", bad, w.Code)
		}
	}
	a.failAt = 1
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("a failed export must abort the response, got %v", p)
			}
		}()
		b.do("GET", "/export?format=csv&range=7d", nil)
	}()
	deadline := time.Now().Add(time.Minute) // the access events are posted asynchronously; a loaded box may take more than seconds
	var exports []string
	for time.Now().Before(deadline) {
		exports = nil
		sink.mu.Lock()
		for _, e := range sink.evs {
			if e.Action == "export" {
				exports = append(exports, e.Export.Format+" "+e.Tenant+" "+e.Export.Query)
			}
		}
		sink.mu.Unlock()
		if len(exports) == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(exports) != 3 || exports[0] != "csv acme range=7d&tier=high" || exports[1] != "json acme range=7d" {
		t.Fatalf("export access events: %q", exports)
	}
}

// TestAnalystPages: the approval view, the usage page with the previous
// period, review throughput and the truthful burst note on the sampling
// page, totals, sorts and dropdowns on the record list, and the access log
// (admins only).
func TestAnalystPages(t *testing.T) {
	srv, _, a, _ := analystServer(t)
	viv := newBrowser(t, srv.Handler(), "192.0.2.10:5555", "127.0.0.1:8090")
	viv.login("viv", "viv-pw")
	root := newBrowser(t, srv.Handler(), "192.0.2.11:5555", "127.0.0.1:8090")
	root.login("root", "root-pw")
	for _, tc := range []struct {
		b    *browser
		path string
		code int
		want []string
	}{
		{viv, "/records?range=7d&sort=cost&q=k1", 200, []string{"<b>1234</b> records match", "most expensive first", `id="export"`, `<option value="gpt-4o">`,
			`name="sort"`, `<option value="cost" selected>`, `value="k1"`, "search: k1"}},
		{viv, "/approvals?range=7d", 200, []string{`id="approval-counts"`, "awaiting approval", "violation (ran without approval or after a rejection)", `id="violations"`}},
		{viv, "/usage?range=24h", 200, []string{"$3.50", "&#43;40.0% vs previous period", "&#43;20.0% vs previous", "-10.0% vs previous", `id="by-tenant"`, "<svg"}},
		{viv, "/sampling?range=7d", 200, []string{`id="reviewers"`, "rita", `id="oldest-pending"`, "2 d 3 h", `id="burst-truth"`}},
		{viv, "/access?range=7d", 403, nil},
		{root, "/access?range=7d", 200, []string{`id="access-log"`, "record_view", "rita"}},
		{viv, "/near-miss?range=7d", 200, []string{`<option value="payments">`, `name="outcome"`, `name="approval"`, `id="zoom"`}},
	} {
		w := tc.b.do("GET", tc.path, nil)
		if w.Code != tc.code {
			t.Errorf("%s: %d, want %d", tc.path, w.Code, tc.code)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(w.Body.String(), s) {
				t.Errorf("%s: no %q", tc.path, s)
			}
		}
	}
	// The approval view asked for each status, awaiting ones oldest first.
	var approvals []string
	for _, f := range a.filters {
		if f.Approval != "" {
			approvals = append(approvals, f.Approval)
		}
	}
	for _, want := range []string{record.ApprovalPending, query.ApprovalViolation, record.ApprovalExecutedAfter} {
		if !slices.Contains(approvals, want) {
			t.Errorf("approval view never asked for %s (%v)", want, approvals)
		}
	}
}

// TestViewParameters: unknown parameters are a 400 naming them; the dates
// the inputs show are accepted; the form's range dropdown and typed dates
// combine as the user meant; "all data" is max_range.
func TestViewParameters(t *testing.T) {
	cfg := NewDefaultConfig()
	now := time.Date(2026, 11, 22, 12, 0, 30, 0, time.UTC)
	parse := func(q string) (view, error) {
		vs, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		return parseView(vs, now, &cfg)
	}
	for _, tc := range []struct {
		q, err string
	}{
		{"teams=acme", "parameter teams: unknown"},
		{"range=7d&Tenant=x", "parameter Tenant: unknown"},
		{"sort=random", "parameter sort"},
		{"approval=maybe", "parameter approval"},
		{"range=7d&from=2026-11-21&to=2026-11-22", "one or the other"},
		{"from=2026-11-21T00:00Z&to=2026-11-21T00:00Z", "from must be before to"},
	} {
		if _, err := parse(tc.q); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.q, err, tc.err)
		}
	}
	// What the inputs show is what they accept.
	v, err := parse("from=2026-11-21T00:00Z&to=2026-11-22T06:30Z")
	if err != nil || v.Range != "" || v.From != time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) || v.To != time.Date(2026, 11, 22, 6, 30, 0, 0, time.UTC) {
		t.Fatalf("displayed form: %+v %v", v, err)
	}
	if v, err := parse("from=2026-11-21 00:00&to=2026-11-22"); err != nil || v.From.Day() != 21 {
		t.Fatalf("with a space: %+v %v", v, err)
	}
	// The form: dropdown on "last 30d" (as shown), dates typed → custom.
	v, err = parse("shown=30d&preset=30d&from=2026-11-01T00:00Z&to=2026-11-02T00:00Z")
	if err != nil || v.Range != "" || v.From.Day() != 1 {
		t.Fatalf("typed dates with the dropdown untouched: %+v %v", v, err)
	}
	// Custom range shown, dropdown changed to 7d → 7d (the old dates ignored).
	v, err = parse("shown=&preset=7d&from=2026-11-01T00:00Z&to=2026-11-02T00:00Z")
	if err != nil || v.Range != "7d" || v.To.Sub(v.From) != 7*24*time.Hour {
		t.Fatalf("dropdown changed: %+v %v", v, err)
	}
	v, err = parse("range=all")
	if err != nil || v.Range != "all" || v.To.Sub(v.From) != cfg.MaxRange {
		t.Fatalf("all data: %+v %v", v, err)
	}
	// Zoom links keep the filters and move the range.
	v, _ = parse("from=2026-11-21T00:00Z&to=2026-11-22T00:00Z&tier=high")
	for link, want := range map[string]string{
		v.Earlier("/records"): "from=2026-11-20T00%3A00%3A00Z&tier=high&to=2026-11-21T00%3A00%3A00Z",
		v.ZoomIn("/records"):  "from=2026-11-21T06%3A00%3A00Z&tier=high&to=2026-11-21T18%3A00%3A00Z",
		v.ZoomOut("/records"): "from=2026-11-20T12%3A00%3A00Z&tier=high&to=2026-11-22T12%3A00%3A00Z",
	} {
		if link != "/records?"+want {
			t.Errorf("zoom link %s, want /records?%s", link, want)
		}
	}
	// A record page takes v and posted only.
	ts, _ := testServer(t)
	c := newClient(t, ts)
	c.login("viv", "viv-pw")
	if resp, body := c.do("GET", "/records/"+idA+"?version=2", nil); resp.StatusCode != 400 || !strings.Contains(body, "parameter version: unknown") {
		t.Errorf("record page with an unknown parameter: %d", resp.StatusCode)
	}
}

// TestNeutralize: bidirectional overrides and control characters in data
// show as visible codes, never change what a page appears to say.
func TestNeutralize(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"tag \u202Egnp.exe":        "tag ‹U+202E›gnp.exe",
		"a\u2066b\u2069c\u200fd":   "a‹U+2066›b‹U+2069›c‹U+200F›d",
		"bell\x07 nul\x00 del\x7f": "bell‹U+0007› nul‹U+0000› del‹U+007F›",
		"keep\ttabs\nand lines\r":  "keep\ttabs\nand lines\r",
		"é ü 中文":                   "é ü 中文",
	} {
		if got := string(neutralize([]byte(in))); got != want {
			t.Errorf("neutralize(%q) = %q, want %q", in, got, want)
		}
	}
	// Through a page: a team name with a right-to-left override.
	ts, f := testServer(t)
	d := f.records[idA]
	d.Decision.Identity.TeamAlias = "pay\u202Estnem"
	f.records[idA] = d
	c := newClient(t, ts)
	c.login("viv", "viv-pw")
	_, page := c.do("GET", "/records/"+idA, nil)
	if strings.ContainsRune(page, '\u202E') || !strings.Contains(page, "pay‹U+202E›stnem") {
		t.Errorf("the override reached the page")
	}
}
