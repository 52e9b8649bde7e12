package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/topic"
)

// capture stands in for ingest: it keeps the oversight and access events
// the dashboard posts.
type capture struct {
	mu     sync.Mutex
	events []oversight.Event
	access []oversight.AccessEvent
}

func (c *capture) Post(_ context.Context, ev oversight.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	return nil
}

func (c *capture) PostAccess(_ context.Context, evs []oversight.AccessEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.access = append(c.access, evs...)
	return nil
}

func (c *capture) actions() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for _, e := range c.access {
		m[e.Action]++
	}
	return m
}

func TestAnalystBrowser(t *testing.T) { testenv.ForEachClickHouse(t, testAnalystBrowser) }

// testAnalystBrowser drives the analysts' tools in Chromium on a seeded
// ClickHouse (each engine), taking a screenshot of each: the filter
// dropdowns and typed dates (with the range dropdown left on "last 7d"),
// search, the total and the CSV/JSON export (fetched by the browser with
// its session), the approval view and a record's approval box, an approval
// posted from it, usage trends, review throughput, the access log, a
// right-to-left override neutralised, and an unknown parameter refused.
func testAnalystBrowser(t *testing.T) {
	testenv.Chromium(t)
	addr := testenv.ClickHouse(t)
	db := testenv.Name(t)
	ctx := context.Background()
	conn := seedtest.Schema(t, addr, db)
	end := time.Now().UTC().Add(-time.Hour)
	recs := seed.Generate(800, seed.Options{End: end, Span: 6 * 24 * time.Hour, Seed: 18, Amended: 0.05})
	// Records an analyst looks for: held for approval (awaiting, run
	// without it, run after it), a team name with a right-to-left
	// override, and an access record.
	extra := func(key string, mod func(*record.Decision)) string {
		d := recs[0].D
		d.Request.RequestKey, d.RecordID, d.Version = key, record.ID(key), 1
		d.Request.StartTime = record.TimeOf(end.Add(-2 * time.Hour))
		d.Identity.Tenant = "acme"
		d.Oversight, d.Risk.ReviewStatus = nil, ""
		mod(&d)
		recs = append(recs, seed.Positioned{D: d, Partition: 1, Offset: int64(900_000 + len(recs))})
		return d.RecordID
	}
	awaiting := extra("appr-awaiting", func(d *record.Decision) {
		d.Approval = record.Approval{Required: true, RequiredBy: "gateway", Needed: 1, Status: record.ApprovalPending, RequestedAt: d.Request.StartTime}
		d.Outcome.Status = record.OutcomePending
	})
	violation := extra("appr-violation", func(d *record.Decision) {
		d.Approval = record.Approval{Required: true, RequiredBy: "tier:high", Needed: 2, Status: record.ApprovalExecutedWithout,
			Approvers: []string{"lee"}, RequestedAt: d.Request.StartTime, ExecutedAt: d.Request.StartTime + 5000,
			Decisions: []record.ApprovalDecision{{EventID: "approval:late-1", Source: "approval", Kind: "approved", Approver: "lee", Sender: "gateway",
				ReceivedAt: d.Request.StartTime + 9000, Note: "after_execution"}}}
		d.NearMiss = record.NearMiss{Flagged: true, Reasons: []string{"executed_without_approval"}}
		d.Risk.Tier = "high"
	})
	extra("appr-ok", func(d *record.Decision) {
		d.Approval = record.Approval{Required: true, RequiredBy: "gateway", Needed: 1, Status: record.ApprovalExecutedAfter, Approvers: []string{"rita"}}
	})
	bidi := extra("bidi-team", func(d *record.Decision) { d.Identity.TeamAlias = "pay\u202Estnemyap" })
	contested := extra("stale-review", func(d *record.Decision) { d.Identity.UserID, d.Identity.UserEmail, d.Identity.Subject = "u-77", "", "" })
	extra("access:acc-e2e", func(d *record.Decision) {
		d.Identity.Tenant = "*"
		d.Access = record.Access{Action: "record_view", Actor: "lee", Role: "reviewer", Via: "password", Client: "192.0.2.7", Sender: "dashboard", Target: bidi, TargetVersion: 1}
	})
	if err := seed.Insert(ctx, conn, db, query.DefaultTable, recs); err != nil {
		t.Fatal(err)
	}
	qc := query.Config{Addr: []string{addr}, Database: db, Username: "default", Table: query.DefaultTable, Timeout: 2 * time.Minute}
	ch, err := query.Open(qc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	sink := &capture{}
	cfg := dashboards.NewDefaultConfig()
	cfg.CookieSecure = "never"
	cfg.ClickHouse = qc
	cfg.Ingest.Token = "unused"
	cfg.Auth.Users = []auth.UserConfig{{Name: "root", PasswordHash: bcryptHash(t, "root-pw"), Role: "admin", Tenants: []string{"*"}}}
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
	base := "http://" + ln.Addr().String()

	b := browser(t)
	sh := newShots(t)
	login(t, b, base, "root", "root-pw")

	// 1. The record list with its dropdowns, total and export links.
	step(t, b, "records", chromedp.Navigate(base+"/records?range=7d"), chromedp.WaitVisible(chromedp.CSS(`#totals`)))
	sh.take(b, "analyst-records")
	totalAll := total(t, b)
	if n := eval[int](t, b, `document.querySelectorAll('select[name=tier] option').length`); n < 3 {
		t.Fatalf("the tier dropdown offers %d options", n)
	}

	// 2. Filters: a tier from its dropdown and dates typed while the range
	// dropdown still says "last 7d": Apply gives the custom range, no 400.
	from, to := end.Add(-3*24*time.Hour).Format("2006-01-02T15:04Z"), end.Add(time.Hour).Format("2006-01-02T15:04Z")
	step(t, b, "filter by tier and dates",
		chromedp.SetValue(chromedp.CSS(`select[name=tier]`), "high"),
		chromedp.SendKeys(chromedp.CSS(`input[name=from]`), from),
		chromedp.SendKeys(chromedp.CSS(`input[name=to]`), to),
	)
	apply(t, b, "#totals")
	sh.take(b, "analyst-filters")
	if txt := bodyText(t, b); !strings.Contains(txt, "tier: high") || strings.Contains(txt, "Bad Request") {
		t.Fatalf("after Apply: %.500s", txt)
	}
	if got := eval[string](t, b, `document.querySelector('input[name=from]').value`); got != from {
		t.Errorf("the From input shows %q after Apply, want %q (the custom range)", got, from)
	}
	if n := total(t, b); n <= 0 || n >= totalAll {
		t.Errorf("%d high-tier records of %d in the last three days", n, totalAll)
	}

	// 3. Search by a record id prefix.
	step(t, b, "search",
		chromedp.Navigate(base+"/records?range=7d"), chromedp.WaitVisible(chromedp.CSS(`input[name=q]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), violation[:12]),
	)
	apply(t, b, "#totals")
	sh.take(b, "analyst-search")
	if n := total(t, b); n != 1 || eval[int](t, b, `document.querySelectorAll('table.records tbody tr a[href^="/records/`+violation+`"]').length`) != 1 {
		t.Fatalf("search %s…: %d records", violation[:12], n)
	}

	// 4. Export what the list shows, as the browser downloads it.
	step(t, b, "records to export", chromedp.Navigate(base+"/records?range=7d&category=flagged&sort=cost"), chromedp.WaitVisible(chromedp.CSS(`#export`)))
	sh.take(b, "analyst-export")
	flagged := total(t, b)
	csvText := download(t, b, `#export a:first-of-type`, ".csv")
	lines := strings.Split(strings.TrimSpace(csvText), "\n")
	if !strings.HasPrefix(lines[0], "record_id,version,tenant,start_time") || len(lines) != flagged+1 {
		t.Fatalf("CSV export: %d lines for %d records; header %.80s", len(lines), flagged, lines[0])
	}
	var exported []map[string]any
	if err := json.Unmarshal([]byte(download(t, b, `#export a:last-of-type`, ".json")), &exported); err != nil {
		t.Fatalf("JSON export: %v", err)
	}
	if n := len(exported); n != flagged {
		t.Fatalf("JSON export: %d records, want %d", len(exported), flagged)
	}

	// 5. The approval view, a violation and an approval.
	step(t, b, "approvals", chromedp.Navigate(base+"/approvals?range=7d"), chromedp.WaitVisible(chromedp.CSS(`#approval-counts`)))
	sh.take(b, "analyst-approvals")
	if txt := bodyText(t, b); !strings.Contains(txt, violation[:12]) || !strings.Contains(txt, awaiting[:12]) {
		t.Fatalf("approval view: %.800s", txt)
	}
	step(t, b, "a violation", chromedp.Navigate(base+eval[string](t, b, `document.querySelector('#violations a[href^="/records/`+violation+`"]').getAttribute('href')`)),
		chromedp.WaitVisible(chromedp.CSS(`#approval`)))
	sh.take(b, "analyst-approval-violation")
	if got := eval[string](t, b, `document.querySelector('#approval-status').innerText`); got != record.ApprovalExecutedWithout {
		t.Errorf("approval status %q", got)
	}
	if txt := eval[string](t, b, `document.querySelector('#approval').innerText`); !strings.Contains(txt, "after_execution") || !strings.Contains(txt, "four eyes") {
		t.Errorf("approval box: %s", txt)
	}
	step(t, b, "approve the awaiting request",
		chromedp.Navigate(base+"/records/"+awaiting), chromedp.WaitVisible(chromedp.CSS(`#approval-form`)),
		chromedp.Click(chromedp.CSS(`#approval-form input[value=approve]`)),
		chromedp.SendKeys(chromedp.CSS(`#approval-form textarea`), "clinician request, ticket 4711"),
	)
	sh.take(b, "analyst-approval-form")
	submit(t, b, "#approval-form button", "#posted")
	sh.take(b, "analyst-approval-posted")
	sink.mu.Lock()
	last := sink.events[len(sink.events)-1]
	sink.mu.Unlock()
	if last.Kind != "approval" || last.Outcome != "approve" || last.RecordID != awaiting || last.Reviewer.ID != "root" {
		t.Fatalf("posted %+v", last)
	}

	// 6. Usage, review throughput, the access log.
	step(t, b, "usage", chromedp.Navigate(base+"/usage?range=7d"), chromedp.WaitVisible(chromedp.CSS(`#cost-trend svg`)))
	sh.take(b, "analyst-usage")
	if txt := eval[string](t, b, `document.querySelector('#usage-totals').innerText`); !strings.Contains(txt, "vs previous") {
		t.Errorf("usage totals: %s", txt)
	}
	step(t, b, "sampling", chromedp.Navigate(base+"/sampling?range=7d"), chromedp.WaitVisible(chromedp.CSS(`#reviewers`)))
	sh.take(b, "analyst-sampling")
	if txt := bodyText(t, b); !strings.Contains(txt, "oldest pending") || !strings.Contains(txt, "Reviews per reviewer") {
		t.Errorf("sampling page: %.600s", txt)
	}
	step(t, b, "access log", chromedp.Navigate(base+"/access?range=7d"), chromedp.WaitVisible(chromedp.CSS(`#access-log`)))
	sh.take(b, "analyst-access-log")
	if txt := eval[string](t, b, `document.querySelector('#access-log').innerText`); !strings.Contains(txt, "record_view") || !strings.Contains(txt, "lee") {
		t.Errorf("access log: %s", txt)
	}

	// 7. A right-to-left override in a team name is shown, not obeyed; an
	// unknown parameter is refused by name.
	step(t, b, "bidi", chromedp.Navigate(base+"/records/"+bidi), chromedp.WaitVisible(chromedp.CSS(`#attempts`)))
	sh.take(b, "analyst-bidi-neutralised")
	if txt := bodyText(t, b); strings.ContainsRune(txt, '\u202E') || !strings.Contains(txt, "pay‹U+202E›stnemyap") {
		t.Errorf("the override reached the page")
	}
	step(t, b, "unknown parameter", chromedp.Navigate(base+"/records?teams=payments"), chromedp.WaitVisible(chromedp.CSS(`main`)))
	sh.take(b, "analyst-unknown-parameter")
	if txt := bodyText(t, b); !strings.Contains(txt, "parameter teams: unknown") {
		t.Errorf("unknown parameter page: %.300s", txt)
	}

	// 8. Every other dropdown filter, one at a time, from a fresh list: the
	// first value it offers gives a chip and a total no larger than the
	// unfiltered one.
	for _, name := range []string{"tenant", "outcome", "category", "reason", "review", "approval", "model", "user"} {
		step(t, b, "records for "+name, chromedp.Navigate(base+"/records?range=7d"), chromedp.WaitVisible(chromedp.CSS(`#totals`)))
		value := eval[string](t, b, `(() => { const o = document.querySelector('select[name=`+name+`] option:nth-child(2)'); return o ? o.value : '' })()`)
		if value == "" {
			t.Errorf("the %s dropdown offers no value", name)
			continue
		}
		step(t, b, "choose "+name, chromedp.SetValue(chromedp.CSS(`select[name=`+name+`]`), value))
		apply(t, b, "#totals")
		sh.take(b, "analyst-filter-"+name)
		if got := eval[string](t, b, `new URL(location.href).searchParams.get('`+name+`')`); got != value {
			t.Errorf("filter %s: the URL says %q, want %q", name, got, value)
		}
		if n := eval[int](t, b, `document.querySelectorAll('.chips .chip').length`); n != 1 {
			t.Errorf("filter %s=%s: %d chips", name, value, n)
		}
		if n := total(t, b); n < 0 || n > totalAll || (n == 0 && name != "review" && name != "approval") {
			t.Errorf("filter %s=%s: %d of %d records", name, value, n, totalAll)
		}
	}
	// The text filters offer the known values as suggestions.
	for _, name := range []string{"team", "alias", "provider"} {
		if n := eval[int](t, b, `document.querySelectorAll('#dl-`+name+` option').length`); n == 0 {
			t.Errorf("no suggestions for %s", name)
		}
	}

	// 9. Sorts: the most expensive first.
	step(t, b, "sort by cost", chromedp.Navigate(base+"/records?range=7d"), chromedp.WaitVisible(chromedp.CSS(`select[name=sort]`)),
		chromedp.SetValue(chromedp.CSS(`select[name=sort]`), query.SortCost))
	apply(t, b, "#totals")
	sh.take(b, "analyst-sort-cost")
	costs := eval[[]float64](t, b, `[...document.querySelectorAll('table.records tbody tr td.num')].map(td => parseFloat(td.innerText))`)
	if len(costs) < 2 {
		t.Fatalf("sorted by cost: %d rows", len(costs))
	}
	for i := 1; i < len(costs); i++ {
		if costs[i] > costs[i-1] {
			t.Fatalf("sorted by cost, row %d costs %v after %v", i, costs[i], costs[i-1])
		}
	}

	// 10. "All data" and zoom.
	step(t, b, "all data", chromedp.Navigate(base+"/records?range=7d"), chromedp.WaitVisible(chromedp.CSS(`select[name=preset]`)),
		chromedp.SetValue(chromedp.CSS(`select[name=preset]`), "all"))
	apply(t, b, "#totals")
	sh.take(b, "analyst-all-data")
	if n := total(t, b); n < totalAll || eval[string](t, b, `document.querySelector('select[name=preset]').value`) != "all" {
		t.Errorf("all data: %d records (last 7 days: %d), at %s", n, totalAll, eval[string](t, b, `location.href`))
	}
	step(t, b, "zoom in", chromedp.Navigate(base+"/records?range=7d"), chromedp.WaitVisible(chromedp.CSS(`#zoom`)))
	eval[bool](t, b, `(document.body.dataset.before = '1') === '1'`)
	step(t, b, "click zoom in", chromedp.Click(chromedp.CSS(`#zoom a[title="the middle half"]`)))
	waitNewPage(t, b, "#totals")
	sh.take(b, "analyst-zoom-in")
	u := eval[string](t, b, `location.search`)
	if n := total(t, b); n > totalAll || !strings.Contains(u, "from=") || !strings.Contains(u, "to=") || strings.Contains(u, "range=") {
		t.Errorf("zoomed in: %d records at %s", n, u)
	}

	// 11. A review of an outdated version, in the browser: the record gets
	// a new version (another reviewer's) while the form is open; the
	// submission is refused with the new version shown, the text kept and
	// the other reviewer named; submitted again, it is posted.
	step(t, b, "open the record to review", chromedp.Navigate(base+"/records/"+contested), chromedp.WaitVisible(chromedp.CSS(`#review-form`)))
	cur, err := ch.Record(ctx, query.Filter{Tenants: []string{query.AllTenants}}, contested, 0)
	if err != nil {
		t.Fatal(err)
	}
	next := cur.Decision
	next.Version++
	next.Completeness = record.Amended
	next.Oversight = append(next.Oversight, record.Oversight{EventID: "oversight:rita-1", Kind: "review", Outcome: "flag", Reviewer: "rita", Role: "reviewer",
		Rationale: "IBAN in the prompt", RecordVersion: int64(cur.Decision.Version), Sender: "dashboard", ReceivedAt: record.TimeOf(time.Now()), Effect: record.OversightApplied})
	next.Risk.ReviewStatus = "flag"
	if err := seed.Insert(ctx, conn, db, query.DefaultTable, []seed.Positioned{{D: next, Partition: cur.Partition, Offset: cur.Offset + 1_000_000}}); err != nil {
		t.Fatal(err)
	}
	rationale := "looks fine to me, ticket 5150"
	step(t, b, "review the outdated version",
		chromedp.Click(chromedp.CSS(`#review-form input[value=approve]`)),
		chromedp.SendKeys(chromedp.CSS(`#review-form textarea`), rationale))
	sh.take(b, "analyst-review-outdated-form")
	sink.mu.Lock()
	posted := len(sink.events)
	sink.mu.Unlock()
	submit(t, b, "#review-form button", "#review-form")
	sh.take(b, "analyst-review-conflict")
	txt := bodyText(t, b)
	want := fmt.Sprintf("you reviewed version %d, the latest is version %d", cur.Decision.Version, next.Version)
	if !strings.Contains(txt, want) || !strings.Contains(txt, "Reviewed since by rita (flag") {
		t.Errorf("the conflict page does not say %q and name rita:\n%.1500s", want, txt)
	}
	if got := eval[string](t, b, `document.querySelector('#review-form textarea').value`); got != rationale {
		t.Errorf("the rationale was not kept: %q", got)
	}
	if !eval[bool](t, b, `document.querySelector('#review-form input[value=approve]').checked`) {
		t.Error("the chosen outcome was not kept")
	}
	if got := eval[string](t, b, `document.querySelector('#review-form input[name=version]').value`); got != strconv.Itoa(int(next.Version)) {
		t.Errorf("the form now names version %s, want %d", got, next.Version)
	}
	sink.mu.Lock()
	n := len(sink.events)
	sink.mu.Unlock()
	if n != posted {
		t.Fatalf("the refused review was posted")
	}
	submit(t, b, "#review-form button", "#posted")
	sh.take(b, "analyst-review-resubmitted")
	sink.mu.Lock()
	last = sink.events[len(sink.events)-1]
	sink.mu.Unlock()
	if last.Kind != "review" || last.Outcome != "approve" || last.RecordVersion != next.Version || last.Rationale != rationale {
		t.Fatalf("resubmitted review posted as %+v", last)
	}

	// Everything read was logged: views, the proof-less record pages, exports.
	deadline := time.Now().Add(pipelineWait)
	for {
		a := sink.actions()
		if a["login"] >= 1 && a["export"] >= 2 && a["record_view"] >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access events: %v", a)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// total reads the record count the list shows (#totals), -1 if none.
func total(t *testing.T, ctx context.Context) int {
	t.Helper()
	s := eval[string](t, ctx, `(document.querySelector('#totals b') || {innerText: '-1'}).innerText`)
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("total %q", s)
	}
	return n
}

// download clicks the link sel as a user would and returns the file the
// browser saved (its name ending in ext).
func download(t *testing.T, ctx context.Context, sel, ext string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatalf("download folder: %v", err)
	}
	step(t, ctx, "click "+sel, chromedp.Click(chromedp.CSS(sel)))
	deadline := time.Now().Add(pipelineWait)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ext) {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s file downloaded by clicking %s", ext, sel)
	return ""
}

// testWriter writes log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// waitNewPage waits until the page marked with body.dataset.before has been
// replaced and ready is visible on the new one.
func waitNewPage(t *testing.T, ctx context.Context, ready string) {
	t.Helper()
	deadline := time.Now().Add(pipelineWait)
	for eval[bool](t, ctx, `document.body === null || document.body.dataset.before === '1' || document.readyState !== 'complete'`) {
		if time.Now().After(deadline) {
			t.Fatalf("the page did not change (waiting for %s)", ready)
		}
		time.Sleep(50 * time.Millisecond)
	}
	step(t, ctx, "wait for "+ready, chromedp.WaitVisible(chromedp.CSS(ready)))
}

// apply submits the filter form and waits for the page it leads to.
func apply(t *testing.T, ctx context.Context, ready string) {
	t.Helper()
	submit(t, ctx, "#filters button[type=submit]", ready)
}

// submit clicks a form's button and waits until the browser shows another
// page with the element ready on it.
func submit(t *testing.T, ctx context.Context, button, ready string) {
	t.Helper()
	eval[bool](t, ctx, `(document.body.dataset.before = '1') === '1'`)
	step(t, ctx, "submit "+button, chromedp.Click(chromedp.CSS(button)))
	waitNewPage(t, ctx, ready)
}
