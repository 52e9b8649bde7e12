package dashboards

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/chart"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
)

func (s *Server) routes(mux *http.ServeMux) {
	mux.Handle("GET /static/", s.static)
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.requireLogin(s.logout))
	mux.HandleFunc("GET /{$}", s.requireLogin(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/near-miss", http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /near-miss", s.requireLogin(s.nearMiss))
	mux.HandleFunc("GET /records", s.requireLogin(s.records))
	mux.HandleFunc("GET /records/{id}", s.requireLogin(s.record))
	mux.HandleFunc("GET /records/{id}/proof", s.requireLogin(s.proof))
	mux.HandleFunc("POST /records/{id}/review", s.requireRole(auth.Reviewer, s.review))
	mux.HandleFunc("GET /sampling", s.requireLogin(s.sampling))
	mux.HandleFunc("POST /sampling/burst", s.requireRole(auth.Admin, s.burst))
}

func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// basePage is what the layout needs.
type basePage struct {
	Title   string
	Nav     string // active nav entry
	User    string
	Role    string
	Tenants []string
	CSRF    string
	View    view
	Path    string
	Ranges  []string
	Flash   string
	Elapsed time.Duration // ClickHouse time for this page
}

func (s *Server) base(r *http.Request, title, nav string, v view) basePage {
	b := basePage{Title: title, Nav: nav, View: v, Path: r.URL.Path}
	for _, rg := range ranges {
		b.Ranges = append(b.Ranges, rg.Name)
	}
	if sess := session(r); sess != nil {
		b.User, b.Role, b.Tenants, b.CSRF = sess.Principal.Name, sess.Principal.Role.String(), sess.Principal.Tenants, sess.CSRF
	}
	return b
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

type errorPage struct {
	basePage
	Code    int
	Message string
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", errorPage{basePage: s.base(r, http.StatusText(code), "", view{}), Code: code, Message: msg})
}

// view parses the URL; on error it writes the 400 and returns false.
func (s *Server) view(w http.ResponseWriter, r *http.Request) (view, query.Filter, bool) {
	v, err := parseView(r.URL.Query(), s.now(), &s.cfg)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return view{}, query.Filter{}, false
	}
	f, err := v.filter(session(r).Principal)
	if err != nil {
		s.m.denied.WithLabelValues("tenant").Inc()
		s.fail(w, r, http.StatusForbidden, fmt.Sprintf("You cannot see tenant %q.", v.Tenant))
		return view{}, query.Filter{}, false
	}
	return v, f, true
}

// queryFailed writes the error page for a failed read.
func (s *Server) queryFailed(w http.ResponseWriter, r *http.Request, page string, err error) {
	if errors.Is(err, query.ErrNoTenant) {
		s.m.denied.WithLabelValues("tenant").Inc()
		s.fail(w, r, http.StatusForbidden, "You have no tenant to see.")
		return
	}
	s.log.Error("query failed", "page", page, "err", err)
	code := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
	}
	s.fail(w, r, code, "The records store did not answer: "+err.Error())
}

func (s *Server) timed(page string) func() time.Duration {
	start := time.Now()
	return func() time.Duration {
		d := time.Since(start)
		s.m.queries.WithLabelValues(page).Observe(d.Seconds())
		return d
	}
}

// ---- near-miss dashboard ----

// latestFlagged is how many of the newest flagged records the near-miss page
// lists under its charts.
const latestFlagged = 10

type nearMissPage struct {
	basePage
	Data       query.NearMissPage
	Latest     []query.Row // the newest flagged records
	LatestAll  string      // link to all of them
	Trend      template.HTML
	ByReasonTS template.HTML
	Breakdowns []breakdown
	Rate       string
}

type breakdown struct {
	Title, Key string
	Chart      template.HTML
	Rows       []query.Count
	Hrefs      []string
}

func bucketLabel(t time.Time, step time.Duration) string {
	switch {
	case step >= 24*time.Hour:
		return t.Format("Jan 02")
	case step >= time.Hour:
		return t.Format("Jan 02 15:04")
	}
	return t.Format("15:04")
}

func pct(a, b uint64) string {
	if b == 0 {
		return "–"
	}
	return strconv.FormatFloat(100*float64(a)/float64(b), 'f', 1, 64) + "%"
}

func (s *Server) nearMiss(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	done := s.timed("near_miss")
	var data query.NearMissPage
	var latest query.List
	var err, lerr error
	var wg sync.WaitGroup
	wg.Go(func() { data, err = s.src.NearMiss.NearMiss(r.Context(), f) })
	wg.Go(func() {
		lf := f
		lf.Category = query.Flagged
		latest, lerr = s.src.Records.Records(r.Context(), lf, query.Cursor{}, latestFlagged)
	})
	wg.Wait()
	elapsed := done()
	if err == nil {
		err = lerr
	}
	if err != nil {
		s.queryFailed(w, r, "near_miss", err)
		return
	}
	p := nearMissPage{basePage: s.base(r, "Near misses", "near-miss", v), Data: data, Rate: pct(data.Totals.Flagged, data.Totals.Total),
		Latest: latest.Rows, LatestAll: v.Href("/records", "category", string(query.Flagged))}
	p.Elapsed = elapsed
	step := data.Step
	span := func(t time.Time) string {
		return t.Format("2006-01-02 15:04") + " – " + t.Add(step).Format("15:04") + " UTC"
	}
	cols := make([]chart.Column, 0, len(data.Trend))
	for _, pt := range data.Trend {
		from, to := pt.Start.Format(time.RFC3339), pt.Start.Add(step).Format(time.RFC3339)
		cols = append(cols, chart.Column{
			Label: bucketLabel(pt.Start, step), Title: span(pt.Start),
			Values: []float64{float64(pt.Blocked), float64(pt.NearMiss)},
			Hrefs: []string{
				v.Href("/records", "from", from, "to", to, "category", string(query.Blocked)),
				v.Href("/records", "from", from, "to", to, "category", string(query.NearMiss)),
			},
		})
	}
	p.Trend = chart.Columns{Label: "Blocked and nearly blocked requests per " + step.String(),
		Series: []chart.Series{{Name: "blocked", Color: chart.Palette[0]}, {Name: "nearly blocked", Color: chart.Palette[1]}}, Cols: cols}.SVG()

	// Reasons over time: one series per reason, most frequent first.
	var reasons []string
	for _, c := range data.ByReason {
		reasons = append(reasons, c.Key)
	}
	idx := map[int64]int{}
	rcols := make([]chart.Column, len(data.Trend))
	for i, pt := range data.Trend {
		idx[pt.Start.Unix()] = i
		from, to := pt.Start.Format(time.RFC3339), pt.Start.Add(step).Format(time.RFC3339)
		rcols[i] = chart.Column{Label: bucketLabel(pt.Start, step), Title: span(pt.Start), Values: make([]float64, len(reasons)), Hrefs: make([]string, len(reasons))}
		for j, reason := range reasons {
			rcols[i].Hrefs[j] = v.Href("/records", "from", from, "to", to, "reason", reason, "category", string(query.Flagged))
		}
	}
	for _, rp := range data.Reasons {
		i, ok := idx[rp.Start.Unix()]
		j := slices.Index(reasons, rp.Reason)
		if ok && j >= 0 {
			rcols[i].Values[j] = float64(rp.Count)
		}
	}
	rs := make([]chart.Series, len(reasons))
	for j, reason := range reasons {
		rs[j] = chart.Series{Name: reasonLabel(reason)}
	}
	p.ByReasonTS = chart.Columns{Label: "Near-miss reasons per " + step.String(), Series: rs, Cols: rcols, Height: 200}.SVG()

	for _, b := range []struct {
		title, key string
		rows       []query.Count
	}{
		{"By team", "team", data.ByTeam}, {"By model alias", "alias", data.ByAlias},
		{"By provider", "provider", data.ByProvider}, {"By reason", "reason", data.ByReason},
	} {
		bd := breakdown{Title: b.title, Key: b.key, Rows: b.rows}
		bars := make([]chart.Bar, 0, len(b.rows))
		for _, c := range b.rows {
			href := v.Href("/records", b.key, c.Key, "category", string(query.Flagged))
			bd.Hrefs = append(bd.Hrefs, href)
			label := c.Key
			if b.key == "reason" {
				label = reasonLabel(c.Key)
			}
			bars = append(bars, chart.Bar{Label: label, Values: []float64{float64(c.Blocked), float64(c.NearMiss)}, Href: href,
				Note: fmt.Sprintf("%s of %s (%s)", chart.Short(float64(c.Flagged)), chart.Short(float64(c.Total)), pct(c.Flagged, c.Total))})
		}
		if b.key == "reason" {
			for i := range bars {
				bars[i].Note = chart.Short(float64(b.rows[i].Total)) + " records"
			}
		}
		bd.Chart = chart.Bars{Label: "Near misses " + strings.ToLower(b.title), Series: []chart.Series{{Name: "blocked", Color: chart.Palette[0]}, {Name: "nearly blocked", Color: chart.Palette[1]}}, Bars: bars}.SVG()
		p.Breakdowns = append(p.Breakdowns, bd)
	}
	s.render(w, r, http.StatusOK, "nearmiss", p)
}

// reasonLabels names the near-miss reasons enrich emits; unknown reasons show
// as they are.
var reasonLabels = map[string]string{
	"guardrail_intervened":      "guardrail intervened",
	"guardrail_failed":          "guardrail failed",
	"policy_block":              "policy block",
	"policy_review":             "policy review",
	"budget_over_threshold":     "budget near limit",
	"budget_denied":             "budget denied",
	"budget_exceeded":           "budget exceeded",
	"rate_limited":              "rate limited",
	"fallback_after_429":        "fallback after 429",
	"fallback_after_5xx":        "fallback after 5xx",
	"fallback":                  "fallback",
	"retries":                   "retries",
	"retried":                   "retried",
	"risk_score_near_threshold": "risk score near threshold",
	"blocked":                   "blocked",
}

func reasonLabel(r string) string {
	if l, ok := reasonLabels[r]; ok {
		return l
	}
	return strings.ReplaceAll(r, "_", " ")
}

// ---- record list ----

var categoryLabels = map[string]string{"blocked": "blocked", "near": "nearly blocked", "flagged": "blocked or nearly blocked"}

type recordsPage struct {
	basePage
	List   query.List
	Next   string
	Limit  int
	Chips  []chip
	Clear  string
	Header string
}

type chip struct{ Label, Remove string }

const pageSize = 100

func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	done := s.timed("records")
	l, err := s.src.Records.Records(r.Context(), f, v.Cursor, pageSize)
	elapsed := done()
	if err != nil {
		s.queryFailed(w, r, "records", err)
		return
	}
	p := recordsPage{basePage: s.base(r, "Records", "records", v), List: l, Limit: pageSize}
	p.Elapsed = elapsed
	if !l.Next.IsZero() {
		p.Next = v.Href("/records", "cursor", strconv.FormatInt(l.Next.Start.Unix(), 10)+"."+l.Next.RecordID)
	}
	for _, c := range []struct{ key, label, val string }{
		{"tenant", "tenant", v.Tenant}, {"team", "team", v.Team}, {"alias", "alias", v.Alias}, {"provider", "provider", v.Provider},
		{"reason", "reason", reasonLabel(v.Reason)}, {"tier", "tier", v.Tier}, {"category", "category", categoryLabels[v.Category]},
		{"review", "review", v.Review}, {"sample", "sample", v.Sample},
	} {
		if (c.key == "reason" && v.Reason != "") || (c.key != "reason" && c.val != "") {
			p.Chips = append(p.Chips, chip{Label: c.label + ": " + c.val, Remove: v.Href("/records", c.key, "")})
		}
	}
	if v.Sampled {
		p.Chips = append(p.Chips, chip{Label: "sampled", Remove: v.Href("/records", "sampled", "")})
	}
	s.render(w, r, http.StatusOK, "records", p)
}

// ---- one record ----

var recordIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

type recordPage struct {
	basePage
	D          query.Detail
	Dec        *record.Decision
	JSON       string
	Version    uint32
	Latest     bool
	CanReview  bool
	EventID    string
	Outcomes   []string
	Posted     string
	Bucket     string
	ProveCmd   string
	ProofURL   string
	BackToList string
}

// parseRecordRef validates the {id} path value and the v parameter.
func parseRecordRef(r *http.Request) (id string, version uint32, err error) {
	id = r.PathValue("id")
	if !recordIDPattern.MatchString(id) {
		return "", 0, bad("record id: malformed")
	}
	if vs := r.URL.Query().Get("v"); vs != "" {
		n, err := strconv.ParseUint(vs, 10, 32)
		if err != nil || n == 0 {
			return "", 0, bad("parameter v: %q is not a version number (1, 2, …)", vs)
		}
		version = uint32(n)
	}
	return id, version, nil
}

func (s *Server) record(w http.ResponseWriter, r *http.Request) {
	id, version, err := parseRecordRef(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p := session(r).Principal
	done := s.timed("record")
	d, err := s.src.Record.Record(r.Context(), query.Filter{Tenants: p.Tenants}, id, version)
	elapsed := done()
	if errors.Is(err, query.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "No record "+id+" that you can see.")
		return
	}
	if err != nil {
		s.queryFailed(w, r, "record", err)
		return
	}
	js, err := json.MarshalIndent(&d.Decision, "", "  ")
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not encode the record")
		return
	}
	eid, err := oversight.NewEventID()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not prepare the review form")
		return
	}
	page := recordPage{
		basePage: s.base(r, "Record "+id, "records", view{}),
		D:        d, Dec: &d.Decision, JSON: string(js), Version: d.Decision.Version,
		Latest:    len(d.Versions) > 0 && d.Versions[0].Version == d.Decision.Version,
		CanReview: p.Can(auth.Reviewer), EventID: eid,
		Outcomes: []string{"approve", "flag", "escalate"},
		Bucket:   s.cfg.ArchiveBucket,
		ProveCmd: "auditline prove " + id,
	}
	page.Elapsed = elapsed
	page.ProveCmd = fmt.Sprintf("auditline prove --version %d %s", d.Decision.Version, id)
	if s.src.Prover != nil {
		page.ProofURL = fmt.Sprintf("/records/%s/proof?v=%d", id, d.Decision.Version)
	}
	if ev := r.URL.Query().Get("posted"); ev != "" && eventIDPattern.MatchString(ev) {
		page.Posted = ev
		for _, o := range d.Decision.Oversight {
			if o.EventID == ev {
				page.Posted = ""
				page.Flash = "Your review is now part of the record (version " + strconv.FormatUint(uint64(d.Decision.Version), 10) + ")."
			}
		}
	}
	s.render(w, r, http.StatusOK, "record", page)
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	id, version, err := parseRecordRef(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p := session(r).Principal
	// Tenant check first: a proof carries the record's canonical bytes.
	d, err := s.src.Record.Record(r.Context(), query.Filter{Tenants: p.Tenants}, id, version)
	if err != nil {
		if errors.Is(err, query.ErrNotFound) {
			s.fail(w, r, http.StatusNotFound, "No record "+id+" that you can see.")
			return
		}
		s.queryFailed(w, r, "proof", err)
		return
	}
	if s.src.Prover == nil {
		s.fail(w, r, http.StatusNotFound, "This dashboard has no archive access. Run: auditline prove "+id)
		return
	}
	b, err := s.src.Prover.Prove(r.Context(), id, d.Decision.Version, d.Decision.Request.StartTime.Std())
	if err != nil {
		s.log.Warn("prove failed", "record", id, "err", err)
		s.fail(w, r, http.StatusNotFound, "No inclusion proof yet (the record may not be sealed yet): "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="proof-%s-v%d.json"`, id, d.Decision.Version))
	_, _ = w.Write(b)
}

var eventIDPattern = regexp.MustCompile(`^dash-[0-9a-f]{32}$`)

// Rationale limits.
const maxRationale = 10000

func (s *Server) review(w http.ResponseWriter, r *http.Request) {
	id, _, err := parseRecordRef(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	outcome := r.PostFormValue("outcome")
	rationale := strings.TrimSpace(r.PostFormValue("rationale"))
	eventID := r.PostFormValue("event_id")
	vn, verr := strconv.ParseUint(r.PostFormValue("version"), 10, 32)
	switch {
	case !slices.Contains([]string{"approve", "flag", "escalate"}, outcome):
		s.fail(w, r, http.StatusBadRequest, "outcome: want approve, flag or escalate")
		return
	case rationale == "":
		s.fail(w, r, http.StatusBadRequest, "rationale: required — say why, in a sentence an auditor will understand")
		return
	case len(rationale) > maxRationale:
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("rationale: at most %d bytes", maxRationale))
		return
	case !eventIDPattern.MatchString(eventID):
		s.fail(w, r, http.StatusBadRequest, "event_id: malformed; reload the record and submit again")
		return
	case verr != nil || vn == 0:
		s.fail(w, r, http.StatusBadRequest, "version: malformed")
		return
	}
	p := session(r).Principal
	// Everything the event says about the record comes from the store, read
	// with the reviewer's tenants, never from the form.
	d, err := s.src.Record.Record(r.Context(), query.Filter{Tenants: p.Tenants}, id, uint32(vn))
	if errors.Is(err, query.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "No record "+id+" that you can see.")
		return
	}
	if err != nil {
		s.queryFailed(w, r, "review", err)
		return
	}
	ev := oversight.Event{
		Schema: oversight.Schema, EventID: eventID, Kind: oversight.KindReview,
		RequestKey: d.Decision.Request.RequestKey, RecordID: d.Decision.RecordID, RecordVersion: d.Decision.Version,
		Outcome:   outcome,
		Reviewer:  oversight.Reviewer{ID: p.Name, Role: p.Role.String(), Tenant: d.Decision.Identity.Tenant},
		Rationale: rationale, OccurredAt: s.now().UTC(),
	}
	if d.Partition >= 0 && d.Offset >= 0 {
		ev.DecisionRef = &oversight.DecisionRef{Partition: d.Partition, Offset: d.Offset}
	}
	if err := s.src.Events.Post(r.Context(), ev); err != nil {
		s.m.posts.WithLabelValues(oversight.KindReview, "error").Inc()
		s.log.Error("posting review failed", "record", id, "event", eventID, "err", err)
		s.fail(w, r, http.StatusBadGateway, "Ingest did not accept the review, so nothing was recorded; submit again. ("+err.Error()+")")
		return
	}
	s.m.posts.WithLabelValues(oversight.KindReview, "ok").Inc()
	s.log.Info("review posted", "record", id, "version", d.Decision.Version, "event", eventID, "outcome", outcome, "reviewer", p.Name)
	http.Redirect(w, r, "/records/"+id+"?posted="+eventID, http.StatusSeeOther)
}

// ---- sampling dashboard ----

type samplingPage struct {
	basePage
	Return    string // this page's URL, to come back to after a switch
	Data      query.SamplingPage
	Progress  template.HTML
	TierChart template.HTML
	Reviewed  uint64
	Sampled   uint64
	Done      string
	CanBurst  bool
	BurstNote string
	EventID   string
	TierNames []string
}

func (s *Server) sampling(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	done := s.timed("sampling")
	data, err := s.src.Sampling.Sampling(r.Context(), f)
	elapsed := done()
	if err != nil {
		s.queryFailed(w, r, "sampling", err)
		return
	}
	p := samplingPage{basePage: s.base(r, "Sampling", "sampling", v), Data: data, Return: r.URL.RequestURI()}
	p.Elapsed = elapsed
	for _, t := range data.Tiers {
		p.Reviewed += t.Reviewed
		p.Sampled += t.Sampled
		p.TierNames = append(p.TierNames, t.Tier)
	}
	p.Done = pct(p.Reviewed, p.Sampled)
	tbars := make([]chart.Bar, 0, len(data.Tiers))
	for _, t := range data.Tiers {
		label := t.Tier
		if label == "" {
			label = "(none)"
		}
		tbars = append(tbars, chart.Bar{Label: label, Values: []float64{float64(t.Reviewed), float64(t.Sampled - min(t.Reviewed, t.Sampled))},
			Href: v.Href("/records", "tier", t.Tier, "sampled", "1", "review", string(query.Pending)),
			Note: fmt.Sprintf("%d of %d reviewed", t.Reviewed, t.Sampled)})
	}
	p.TierChart = chart.Bars{Label: "Review progress per risk tier", Series: []chart.Series{{Name: "reviewed", Color: chart.Palette[3]}, {Name: "pending", Color: chart.Palette[5]}},
		Bars: tbars, Width: 520}.SVG()
	cols := make([]chart.Column, 0, len(data.Progress))
	for _, pt := range data.Progress {
		from, to := pt.Start.Format(time.RFC3339), pt.Start.Add(data.Step).Format(time.RFC3339)
		cols = append(cols, chart.Column{Label: bucketLabel(pt.Start, data.Step), Title: pt.Start.Format("2006-01-02 15:04 UTC"),
			Values: []float64{float64(pt.Reviewed), float64(pt.Sampled - min(pt.Reviewed, pt.Sampled))},
			Hrefs: []string{v.Href("/records", "from", from, "to", to, "sampled", "1", "review", string(query.Reviewed)),
				v.Href("/records", "from", from, "to", to, "sampled", "1", "review", string(query.Pending))}})
	}
	p.Progress = chart.Columns{Label: "Sampled records per " + data.Step.String() + ": reviewed and pending",
		Series: []chart.Series{{Name: "reviewed", Color: chart.Palette[3]}, {Name: "pending", Color: chart.Palette[5]}}, Cols: cols, Height: 200}.SVG()
	pr := session(r).Principal
	p.CanBurst = pr.Can(auth.Admin) && pr.EveryTenant()
	if pr.Can(auth.Admin) && !pr.EveryTenant() {
		p.BurstNote = "Burst mode applies to every tenant, so switching it needs an admin whose tenants are \"*\"."
	}
	if p.EventID, err = oversight.NewEventID(); err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not prepare the form")
		return
	}
	s.render(w, r, http.StatusOK, "sampling", p)
}

func (s *Server) burst(w http.ResponseWriter, r *http.Request) {
	p := session(r).Principal
	if !p.EveryTenant() {
		s.m.denied.WithLabelValues("tenant").Inc()
		s.fail(w, r, http.StatusForbidden, "Burst mode applies to every tenant, so switching it needs an admin whose tenants are \"*\".")
		return
	}
	var on bool
	switch r.PostFormValue("burst") {
	case "on":
		on = true
	case "off":
	default:
		s.fail(w, r, http.StatusBadRequest, "burst: want on or off")
		return
	}
	rationale := strings.TrimSpace(r.PostFormValue("rationale"))
	eventID := r.PostFormValue("event_id")
	switch {
	case rationale == "":
		s.fail(w, r, http.StatusBadRequest, "rationale: required — say why burst mode changes")
		return
	case len(rationale) > maxRationale:
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("rationale: at most %d bytes", maxRationale))
		return
	case !eventIDPattern.MatchString(eventID):
		s.fail(w, r, http.StatusBadRequest, "event_id: malformed; reload the page and submit again")
		return
	}
	var tiers []string
	for _, t := range r.PostForm["tier"] {
		if !words.MatchString(t) {
			s.fail(w, r, http.StatusBadRequest, "tier: malformed")
			return
		}
		tiers = append(tiers, t)
	}
	ev := oversight.Event{
		Schema: oversight.Schema, EventID: eventID, Kind: oversight.KindSamplingControl,
		Reviewer:  oversight.Reviewer{ID: p.Name, Role: p.Role.String()},
		Rationale: rationale, OccurredAt: s.now().UTC(),
		Sampling: &oversight.Sampling{Burst: on, Tiers: tiers},
	}
	if err := s.src.Events.Post(r.Context(), ev); err != nil {
		s.m.posts.WithLabelValues(oversight.KindSamplingControl, "error").Inc()
		s.log.Error("posting burst switch failed", "event", eventID, "err", err)
		s.fail(w, r, http.StatusBadGateway, "Ingest did not accept the switch, so nothing changed; submit again. ("+err.Error()+")")
		return
	}
	s.m.posts.WithLabelValues(oversight.KindSamplingControl, "ok").Inc()
	s.log.Info("burst switched", "on", on, "tiers", tiers, "event", eventID, "by", p.Name)
	back := safeNext(r.PostFormValue("return"))
	if !strings.HasPrefix(back, "/sampling") {
		back = "/sampling"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
