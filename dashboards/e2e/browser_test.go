package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/stacktest"
)

// backend is what stands behind the dashboard: a ClickHouse database with
// records, and an ingest endpoint for oversight events.
type backend struct {
	ch               query.Config
	ingestURL        string
	ingestToken      string
	mode             string
	tenantA, tenantB string    // tenants of the two reviewers
	from, to         time.Time // a time range holding the records
	// dashboard starts the dashboard for these users and returns its base
	// URL; nil runs it in-process.
	dashboard func(t *testing.T, users []auth.UserConfig) string
	// checkProof, when set, fetches the inclusion proof of a record version
	// as user would and verifies it offline.
	checkProof func(t *testing.T, base, user, pw, proofPath string)
}

// shots saves numbered full-page screenshots under artifacts/screenshots.
type shots struct {
	t   *testing.T
	dir string
	n   int
}

func newShots(t *testing.T) *shots {
	dir := os.Getenv("AUDITLINE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(stacktest.RepoRoot(), "artifacts")
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &shots{t: t, dir: dir}
}

func (s *shots) take(ctx context.Context, name string) {
	s.t.Helper()
	s.n++
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 writes PNG
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("screenshot %s", path)
}

// browser starts a headless Chromium; opts add to its flags.
func browser(t *testing.T, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	exe := testenv.Chromium(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}, opts...)...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // start the browser with no deadline
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// pipelineWait bounds every wait for the pipeline (ingest → enrich → store
// → archive) or the browser: generous, because the machines that run the
// suite are shared and loaded; a wait ends as soon as its condition holds.
const pipelineWait = 5 * time.Minute

// step runs actions with a deadline.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func bodyText(t *testing.T, ctx context.Context) string {
	return eval[string](t, ctx, "document.body.innerText")
}

func login(t *testing.T, ctx context.Context, base, user, pw string) {
	t.Helper()
	step(t, ctx, "login "+user,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw),
		chromedp.Click(chromedp.CSS(`.login button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`header .who`)),
	)
}

func logout(t *testing.T, ctx context.Context) {
	step(t, ctx, "logout", chromedp.Click(chromedp.CSS(`header .who button`)), chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)))
}

func bcryptHash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// users are the test's dashboard users: a reviewer per tenant and an admin
// of every tenant; each password is the name + "-pw".
func users(t *testing.T, b backend) []auth.UserConfig {
	return []auth.UserConfig{
		{Name: "anna", PasswordHash: bcryptHash(t, "anna-pw"), Role: "reviewer", Tenants: []string{b.tenantA}},
		{Name: "ben", PasswordHash: bcryptHash(t, "ben-pw"), Role: "reviewer", Tenants: []string{b.tenantB}},
		{Name: "root", PasswordHash: bcryptHash(t, "root-pw"), Role: "admin", Tenants: []string{"*"}},
	}
}

// startDashboard runs the dashboard server in-process on a free port.
func startDashboard(t *testing.T, b backend, us []auth.UserConfig) string {
	t.Helper()
	cfg := dashboards.NewDefaultConfig()
	cfg.CookieSecure = "never"
	cfg.ClickHouse = b.ch
	cfg.Ingest.URL, cfg.Ingest.Token = b.ingestURL, b.ingestToken
	cfg.ArchiveBucket = "auditline-archive"
	cfg.Auth.Users = us
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ch, err := query.Open(b.ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	poster, err := dashboards.NewPoster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dashboards.New(cfg, topic.Shared{}, dashboards.Settings{Registry: prometheus.NewRegistry(),
		Sources: dashboards.Sources{NearMiss: ch, Records: ch, Record: ch, Sampling: ch, Events: poster, Pinger: ch}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func TestBrowser(t *testing.T) { testenv.ForEachClickHouse(t, testBrowser) }

func testBrowser(t *testing.T) {
	testenv.Chromium(t)
	mode := os.Getenv("AUDITLINE_E2E_PIPELINE")
	if mode == "" {
		mode = "auto"
	}
	var b backend
	switch mode {
	case "real", "auto":
		b = pipelineBackend(t)
	case "simulated":
		b = simulatedPipeline(t)
	default:
		t.Fatalf("AUDITLINE_E2E_PIPELINE=%q, want real, simulated or auto", mode)
	}
	rng := "from=" + b.from.UTC().Format(time.RFC3339) + "&to=" + b.to.UTC().Format(time.RFC3339)
	t.Logf("pipeline behind the review POST: %s", b.mode)
	var base string
	if b.dashboard != nil {
		base = b.dashboard(t, users(t, b))
	} else {
		base = startDashboard(t, b, users(t, b))
	}
	ctx := browser(t)
	sh := newShots(t)

	// 1. Log in: an unauthenticated visit lands on the login page.
	step(t, ctx, "open", chromedp.Navigate(base+"/near-miss?"+rng), chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)))
	sh.take(ctx, "login")
	step(t, ctx, "log in as anna",
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), "anna"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "anna-pw"),
		chromedp.Click(chromedp.CSS(`.login button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#trend svg`)),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/near-miss?from=") {
		t.Fatalf("after login at %s, want the page first asked for", loc)
	}

	// 2. The near-miss chart is populated.
	bars := eval[int](t, ctx, `document.querySelectorAll('#trend svg a rect').length`)
	if bars == 0 {
		t.Fatalf("near-miss trend has no bars:\n%s", bodyText(t, ctx))
	}
	t.Logf("near-miss trend: %d bar segments", bars)
	sh.take(ctx, "near-miss")

	// 3. Drill down: a bar → its records → one record.
	step(t, ctx, "click a bar",
		chromedp.Click(chromedp.CSS(`#trend svg a:last-of-type rect`)),
		chromedp.WaitVisible(chromedp.CSS(`table.records tbody tr td a`)),
	)
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "/records?") || !strings.Contains(loc, "category=") || !strings.Contains(loc, "from=") {
		t.Fatalf("bar led to %s", loc)
	}
	sh.take(ctx, "records-from-bar")
	step(t, ctx, "open a record",
		chromedp.Click(chromedp.CSS(`table.records tbody tr td a`)),
		chromedp.WaitVisible(chromedp.CSS(`#attempts`)),
	)
	detail := bodyText(t, ctx)
	for _, want := range []string{"Identity", "Budget at the call", "Guardrails", "Policy", "Human oversight", "Evidence", "Archive and proof", "auditline prove"} {
		if !strings.Contains(detail, want) {
			t.Errorf("record page lacks %q", want)
		}
	}
	sh.take(ctx, "record")

	// 4. Sampling: open a pending sampled record from the queue and review it.
	step(t, ctx, "sampling page",
		chromedp.Navigate(base+"/sampling?"+rng),
		chromedp.WaitVisible(chromedp.CSS(`#queue`)),
	)
	sh.take(ctx, "sampling")
	if eval[int](t, ctx, `document.querySelectorAll('#queue tr.queue-row').length`) > 0 {
		step(t, ctx, "open from queue",
			chromedp.Click(chromedp.CSS(`#queue tr.queue-row td a`)),
			chromedp.WaitVisible(chromedp.CSS(`.review-form`)),
		)
	} else {
		// Enrich's sampling configuration decides what is sampled; with
		// nothing in the queue, review a flagged record instead (a reviewer
		// may review any record).
		t.Logf("the sample queue of %s is empty; reviewing a flagged record", b.tenantA)
		step(t, ctx, "open a flagged record",
			chromedp.Navigate(base+"/records?category=flagged&"+rng),
			chromedp.WaitVisible(chromedp.CSS(`table.records tbody tr td a`)),
			chromedp.Click(chromedp.CSS(`table.records tbody tr td a`)),
			chromedp.WaitVisible(chromedp.CSS(`.review-form`)),
		)
	}
	recordURL, _ := chromedp.Run(ctx, chromedp.Location())
	recordURL, _, _ = strings.Cut(recordURL, "#")
	rationale := fmt.Sprintf("browser test %d: prompt contains customer PII", time.Now().UnixNano())
	step(t, ctx, "submit review",
		chromedp.Click(chromedp.CSS(`.review-form input[value=flag]`)),
		chromedp.SendKeys(chromedp.CSS(`.review-form textarea`), rationale),
		chromedp.Click(chromedp.CSS(`.review-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`#posted`)),
	)
	sh.take(ctx, "review-submitted")

	// 5. The oversight entry appears once the pipeline has processed it.
	deadline := time.Now().Add(pipelineWait)
	for {
		step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#oversight`)))
		if strings.Contains(eval[string](t, ctx, `document.querySelector('#oversight').innerText`), rationale) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the review did not appear on the record within %s (%s pipeline)", pipelineWait, b.mode)
		}
		time.Sleep(time.Second)
	}
	if got := eval[string](t, ctx, `document.querySelector('#review-status').innerText`); !strings.Contains(got, "flag") {
		t.Errorf("review status %q, want flag", got)
	}
	sh.take(ctx, "review-on-record")
	if b.checkProof != nil {
		if n := eval[int](t, ctx, `document.querySelectorAll('#archive a[href*="/proof"]').length`); n != 1 {
			t.Fatalf("the record page has %d proof links", n)
		}
		b.checkProof(t, base, "anna", "anna-pw", eval[string](t, ctx, `document.querySelector('#archive a[href*="/proof"]').getAttribute('href')`))
	}

	// 6. Tenant isolation: globex's reviewer cannot reach acme's record, even
	// by editing the URL.
	logout(t, ctx)
	login(t, ctx, base, "ben", "ben-pw")
	for _, tc := range []struct{ url, want string }{
		{recordURL, "No record"},
		{recordURL + "?v=1", "No record"},
		{recordURL + "/proof", "No record"},
		{base + "/records?tenant=" + url.QueryEscape(b.tenantA), "cannot see tenant"},
		{base + "/near-miss?tenant=" + url.QueryEscape(b.tenantA), "cannot see tenant"},
	} {
		step(t, ctx, "visit "+tc.url, chromedp.Navigate(tc.url), chromedp.WaitVisible(chromedp.CSS(`main`)))
		if txt := bodyText(t, ctx); !strings.Contains(txt, tc.want) || strings.Contains(txt, rationale) {
			t.Errorf("%s as ben: want %q, got:\n%s", tc.url, tc.want, txt)
		}
	}
	step(t, ctx, "ben's own record", chromedp.Navigate(recordURL), chromedp.WaitVisible(chromedp.CSS(`main`)))
	sh.take(ctx, "tenant-b-denied")
	step(t, ctx, "ben's list", chromedp.Navigate(base+"/records?"+rng), chromedp.WaitVisible(chromedp.CSS(`table.records`)))
	if strings.Contains(bodyText(t, ctx), "\t"+b.tenantA+"\t") {
		t.Errorf("ben's record list shows a record of %s", b.tenantA)
	}

	// 7. An admin switches burst mode; the switch (who, why) shows once the
	// event is stored.
	logout(t, ctx)
	login(t, ctx, base, "root", "root-pw")
	why := fmt.Sprintf("browser test %d: incident drill", time.Now().UnixNano())
	step(t, ctx, "switch burst on",
		chromedp.Navigate(base+"/sampling?"+rng),
		chromedp.WaitVisible(chromedp.CSS(`.burst-form`)),
		chromedp.Click(chromedp.CSS(`.burst-form input[value=on]`)),
		chromedp.SendKeys(chromedp.CSS(`.burst-form textarea`), why),
		chromedp.Click(chromedp.CSS(`.burst-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`#burst-state`)),
	)
	// The click starts a navigation: #burst-state may still be the old page's,
	// or momentarily absent, so the read is null-safe and retried.
	const burstState = `(document.querySelector('#burst-state') || {innerText: ''}).innerText`
	deadline = time.Now().Add(pipelineWait)
	for !strings.Contains(eval[string](t, ctx, burstState), why) {
		if time.Now().After(deadline) {
			t.Fatalf("the burst switch did not show within %s (%s):\n%s", pipelineWait, b.mode, bodyText(t, ctx))
		}
		time.Sleep(time.Second)
		step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#burst-state`)))
	}
	if got := eval[string](t, ctx, burstState); !strings.Contains(got, "ON") || !strings.Contains(got, "root") {
		t.Errorf("burst state %q, want ON by root", got)
	}
	sh.take(ctx, "burst-switched")
}

// simulatedPipeline seeds ClickHouse and stands in for ingest → enrich →
// store: it accepts the oversight POST as ingest would, then writes the next
// version of the record with the oversight entry, as enrich and store would.
func simulatedPipeline(t *testing.T) backend {
	t.Helper()
	addr := testenv.ClickHouse(t)
	db := testenv.Name(t)
	ctx := context.Background()
	conn := seedtest.Schema(t, addr, db)
	recs := seed.Generate(20000, seed.Options{End: time.Now(), Span: 7 * 24 * time.Hour, Seed: 7})
	if err := seed.Insert(ctx, conn, db, query.DefaultTable, recs); err != nil {
		t.Fatal(err)
	}
	chCfg := query.Config{Addr: []string{addr}, Database: db, Username: "default", Table: query.DefaultTable, Timeout: 2 * time.Minute}
	reader, err := query.Open(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close() })

	const token = "oversight-token"
	var mu sync.Mutex
	offset := int64(1 << 40)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/oversight", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		var ev oversight.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Schema != oversight.Schema || ev.EventID == "" || ev.Reviewer.ID == "" ||
			(ev.Kind != oversight.KindSamplingControl && (ev.RequestKey == "" || ev.Outcome == "" || ev.DecisionRef == nil)) {
			http.Error(w, "invalid oversight event", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		if ev.Kind == oversight.KindSamplingControl {
			// As ingest and store would: stored in raw_events, once per partition.
			body, _ := json.Marshal(ev)
			if err := seed.InsertOversight(context.Background(), conn, db, body, ev.EventID, time.Now(), 0, 1, 2); err != nil {
				t.Errorf("simulated store: %v", err)
			}
			return
		}
		go func() {
			time.Sleep(1500 * time.Millisecond) // the pipeline takes a moment
			d, err := reader.Record(context.Background(), query.Filter{Tenants: []string{query.AllTenants}}, record.ID(ev.RequestKey), 0)
			if err != nil {
				t.Errorf("simulated enrich: %v", err)
				return
			}
			dec := d.Decision
			dec.Version++
			dec.Completeness = record.Amended
			dec.Oversight = append(dec.Oversight, record.Oversight{EventID: ev.EventID, Kind: ev.Kind, Outcome: ev.Outcome, Reviewer: ev.Reviewer.ID,
				Role: ev.Reviewer.Role, Rationale: ev.Rationale, At: record.TimeOf(ev.OccurredAt)})
			dec.Risk.ReviewStatus = ev.Outcome
			mu.Lock()
			offset++
			p := seed.Positioned{D: dec, Partition: d.Partition, Offset: offset}
			mu.Unlock()
			if err := seed.Insert(context.Background(), conn, db, query.DefaultTable, []seed.Positioned{p}); err != nil {
				t.Errorf("simulated store: %v", err)
			}
		}()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return backend{ch: chCfg, ingestURL: "http://" + ln.Addr().String() + "/v1/oversight", ingestToken: token, mode: "simulated (ingest/enrich/store stand-in)",
		tenantA: "acme", tenantB: "globex", from: time.Now().Add(-7 * 24 * time.Hour), to: time.Now().Add(time.Hour)}
}
