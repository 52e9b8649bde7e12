package dashboards

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/chart"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
)

// Dashboards analysts can work in (issue 18): dropdowns of the values in
// scope, totals, sorts, search, exports, the approval view, usage trends
// with the previous period, review throughput and the access log. The
// handlers and models of those pages are here; the reads are
// query/analyst.go.

// AnalystReader answers the analysts' tools; *query.ClickHouse satisfies
// it. Optional: without it the pages work without dropdown values, totals,
// exports, usage, review throughput and the access log.
type AnalystReader interface {
	Options(ctx context.Context, f query.Filter) (query.Options, error)
	Total(ctx context.Context, f query.Filter) (uint64, error)
	Export(ctx context.Context, f query.Filter, max int, fn func(query.ExportRow) error) error
	Usage(ctx context.Context, f query.Filter) (query.Usage, error)
	ReviewStats(ctx context.Context, f query.Filter) (query.ReviewStats, error)
	AccessLog(ctx context.Context, f query.Filter, limit int) ([]query.AccessRow, error)
}

// optionsTTL: the dropdown values of a scope are read at most once a
// minute (the pages' "now" moves by the minute, so that is also how long a
// key lives).
const (
	optionsTTL     = time.Minute
	optionsEntries = 1000
)

type optionsCache struct {
	mu sync.Mutex
	m  map[string]optionsEntry
}

type optionsEntry struct {
	o   query.Options
	exp time.Time
}

// options reads (or remembers) the dropdown values of f's scope. Errors
// leave the dropdowns empty: the page works with free text then.
func (s *Server) options(ctx context.Context, f query.Filter) query.Options {
	if s.src.Analyst == nil {
		return query.Options{}
	}
	key := strings.Join(f.Tenants, ",") + "|" + f.Tenant + "|" + strconv.FormatInt(f.From.Unix(), 10) + "|" + strconv.FormatInt(f.To.Unix(), 10)
	now := s.now()
	s.opts.mu.Lock()
	if e, ok := s.opts.m[key]; ok && now.Before(e.exp) {
		s.opts.mu.Unlock()
		return e.o
	}
	s.opts.mu.Unlock()
	o, err := s.src.Analyst.Options(ctx, f)
	if err != nil {
		s.log.Warn("dropdown values unavailable", "err", err)
		return query.Options{}
	}
	s.opts.mu.Lock()
	if s.opts.m == nil || len(s.opts.m) >= optionsEntries {
		s.opts.m = map[string]optionsEntry{}
	}
	s.opts.m[key] = optionsEntry{o: o, exp: now.Add(optionsTTL)}
	s.opts.mu.Unlock()
	return o
}

// reviewStates are the review filter's fixed values besides the outcomes.
var reviewStates = []string{"pending", "reviewed"}

// sorts are the record list's sorts, by parameter value.
var sorts = []struct{ Value, Label string }{
	{"", "newest first"}, {query.SortOldest, "oldest first"}, {query.SortCost, "most expensive"}, {query.SortDuration, "slowest"},
}

// approvalStatuses are the approval filter's values, in the order offered.
var approvalStatuses = []string{query.ApprovalViolation, record.ApprovalPending, record.ApprovalExecutedWithout, record.ApprovalExecutedRejected,
	record.ApprovalExecutedAfter, record.ApprovalApproved, record.ApprovalRejected, record.ApprovalNotRequired}

// ---- export ----

// export streams the records of the view as CSV or JSON (format=csv|json),
// tenant-scoped like every read, logged as an access event before the
// first byte.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	if s.src.Analyst == nil {
		s.fail(w, r, http.StatusNotFound, "This dashboard cannot export.")
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	q.Del("format")
	if format != "csv" && format != "json" {
		s.fail(w, r, http.StatusBadRequest, "parameter format: want csv or json")
		return
	}
	v, err := parseView(q, s.now(), &s.cfg)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p := session(r).Principal
	f, err := v.filter(p)
	if err != nil {
		s.m.denied.WithLabelValues("tenant").Inc()
		s.fail(w, r, http.StatusForbidden, fmt.Sprintf("You cannot see tenant %q.", v.Tenant))
		return
	}
	tenant := v.Tenant
	switch {
	case tenant != "":
	case len(p.Tenants) == 1:
		tenant = p.Tenants[0]
	default:
		tenant = auth.AllTenants
	}
	canon := v.values().Encode()
	if !s.access(w, r, p, oversight.AccessEvent{Action: "export", Tenant: tenant, Export: &oversight.AccessExport{Format: format, Query: canon}}) {
		return
	}
	name := fmt.Sprintf("auditline-records-%s.%s", s.now().UTC().Format("20060102T150405Z"), format)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	var write func(query.ExportRow) error
	var finish func() error
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		if err := cw.Write(query.ExportColumns); err != nil {
			return
		}
		write = func(e query.ExportRow) error { return cw.Write(csvRow(e)) }
		finish = func() error { cw.Flush(); return cw.Error() }
	case "json":
		w.Header().Set("Content-Type", "application/json")
		first := true
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		if _, err := w.Write([]byte("[\n")); err != nil {
			return
		}
		write = func(e query.ExportRow) error {
			if !first {
				if _, err := w.Write([]byte(",")); err != nil {
					return err
				}
			}
			first = false
			return enc.Encode(e)
		}
		finish = func() error { _, err := w.Write([]byte("]\n")); return err }
	}
	n := 0
	err = s.src.Analyst.Export(r.Context(), f, 0, func(e query.ExportRow) error {
		n++
		return write(e)
	})
	if err == nil {
		err = finish()
	}
	if err != nil {
		// The status is sent already: cut the connection so that the client
		// sees a failed download, never a silently short file.
		s.log.Error("export failed", "user", p.Name, "rows", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("export", "user", p.Name, "format", format, "rows", n, "query", canon)
}

// csvRow is one export row as CSV fields. A field a spreadsheet would run
// as a formula (=, +, -, @, tab, CR first) gets a leading apostrophe (OWASP
// CSV injection); the JSON export keeps values as they are.
func csvRow(e query.ExportRow) []string {
	b := func(v bool) string { return strconv.FormatBool(v) }
	row := []string{e.RecordID, strconv.FormatUint(uint64(e.Version), 10), e.Tenant, e.StartTime.Format(time.RFC3339), e.RequestKey,
		e.UserID, e.UserEmail, e.KeyAlias, e.Team, e.RequestedAlias, e.ServedModel, e.Provider, e.Outcome, e.BlockedBy, b(e.NearMiss),
		strings.Join(e.Reasons, " "), e.Tier, b(e.Sampled), e.SampleReason, e.ReviewStatus, e.ApprovalStatus,
		strconv.FormatFloat(e.CostUSD, 'f', -1, 64), strconv.FormatInt(e.TotalTokens, 10), strconv.FormatInt(e.DurationMS, 10)}
	for i, f := range row {
		if f != "" && strings.ContainsRune("=+-@\t\r", rune(f[0])) {
			if _, err := strconv.ParseFloat(f, 64); err != nil { // a negative number stays a number
				row[i] = "'" + f
			}
		}
	}
	return row
}

// ---- approvals ----

type approvalsPage struct {
	basePage
	Counts    []approvalCount
	Awaiting  []query.Row
	Violation []query.Row
	Approved  []query.Row
	AllHrefs  map[string]string
}

type approvalCount struct {
	Status, Label, Href string
	N                   uint64
}

// approvalLists are the lists the approval view shows, and how many of each.
const approvalList = 20

// approvals is the approval view: what waits for approval (oldest first),
// what ran without the required approval, what ran after it; with counts.
func (s *Server) approvals(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	done := s.timed("approvals")
	var awaiting, violations, approved query.List
	counts := make([]approvalCount, 0, 5)
	for _, st := range []string{record.ApprovalPending, query.ApprovalViolation, record.ApprovalExecutedAfter, record.ApprovalApproved, record.ApprovalRejected} {
		counts = append(counts, approvalCount{Status: st, Label: approvalLabel(st), Href: v.Href("/records", "approval", st)})
	}
	var errs [3]error
	var wg sync.WaitGroup
	list := func(dst *query.List, status, sort string, i int) {
		lf := f
		lf.Approval, lf.Sort = status, sort
		*dst, errs[i] = s.src.Records.Records(r.Context(), lf, query.Cursor{}, approvalList)
	}
	wg.Go(func() { list(&awaiting, record.ApprovalPending, query.SortOldest, 0) })
	wg.Go(func() { list(&violations, query.ApprovalViolation, "", 1) })
	wg.Go(func() { list(&approved, record.ApprovalExecutedAfter, "", 2) })
	if s.src.Analyst != nil {
		for i := range counts {
			wg.Go(func() {
				cf := f
				cf.Approval = counts[i].Status
				if n, err := s.src.Analyst.Total(r.Context(), cf); err == nil {
					counts[i].N = n
				}
			})
		}
	}
	wg.Wait()
	elapsed := done()
	for _, err := range errs {
		if err != nil {
			s.queryFailed(w, r, "approvals", err)
			return
		}
	}
	b := s.base(r, "Approvals", "approvals", v)
	b.Elapsed = elapsed
	b.Options = s.options(r.Context(), f)
	s.render(w, r, http.StatusOK, "approvals", approvalsPage{basePage: b, Counts: counts, Awaiting: awaiting.Rows, Violation: violations.Rows,
		Approved: approved.Rows, AllHrefs: map[string]string{
			"awaiting":  v.Href("/records", "approval", record.ApprovalPending, "sort", query.SortOldest),
			"violation": v.Href("/records", "approval", query.ApprovalViolation),
			"approved":  v.Href("/records", "approval", record.ApprovalExecutedAfter),
		}})
}

// ---- usage ----

type usagePage struct {
	basePage
	U                                       query.Usage
	Cost, Requests, Tokens, Latency         chart.Columns
	CostDelta, RequestsDelta, TokensDelta   string
	LatencyDelta, PrevFrom, PrevTo, PrevURL string
}

// delta is the change from prev to cur, in per cent, signed ("–" without a
// previous value).
func delta(cur, prev float64) string {
	if prev == 0 {
		if cur == 0 {
			return "±0%"
		}
		return "new"
	}
	d := 100 * (cur - prev) / prev
	s := strconv.FormatFloat(d, 'f', 1, 64) + "%"
	if d >= 0 {
		s = "+" + s
	}
	return s
}

func usageModel(b basePage, v view, u query.Usage) usagePage {
	p := usagePage{basePage: b, U: u,
		CostDelta: delta(u.Totals.CostUSD, u.Previous.CostUSD), RequestsDelta: delta(float64(u.Totals.Requests), float64(u.Previous.Requests)),
		TokensDelta: delta(float64(u.Totals.Tokens), float64(u.Previous.Tokens)), LatencyDelta: delta(u.Totals.P95LatencyMS, u.Previous.P95LatencyMS),
		PrevURL: v.Earlier("/usage")}
	if !v.From.IsZero() {
		p.PrevFrom, p.PrevTo = v.From.Add(-v.span()).Format("2006-01-02 15:04"), v.From.Format("2006-01-02 15:04")
	}
	col := func(label string, series chart.Series, val func(query.UsagePoint) float64) chart.Columns {
		cols := make([]chart.Column, 0, len(u.Trend))
		for _, pt := range u.Trend {
			from, to := bucketRange(pt.Start, u.Step)
			cols = append(cols, chart.Column{Label: bucketLabel(pt.Start, u.Step), Title: bucketSpan(pt.Start, u.Step),
				Values: []float64{val(pt)}, Hrefs: []string{v.Href("/records", "from", from, "to", to)}})
		}
		return chart.Columns{Label: label, Series: []chart.Series{series}, Cols: cols, Height: 160}
	}
	step := stepLabel(u.Step)
	p.Cost = col("Cost (USD) per "+step, chart.Series{Name: "cost USD", Color: chart.Palette[0]}, func(x query.UsagePoint) float64 { return x.CostUSD })
	p.Requests = col("Requests per "+step, chart.Series{Name: "requests", Color: chart.Palette[2]}, func(x query.UsagePoint) float64 { return float64(x.Requests) })
	p.Tokens = col("Tokens per "+step, chart.Series{Name: "tokens", Color: chart.Palette[3]}, func(x query.UsagePoint) float64 { return float64(x.Tokens) })
	p.Latency = col("p95 latency (ms) per "+step, chart.Series{Name: "p95 ms", Color: chart.Palette[5]}, func(x query.UsagePoint) float64 { return x.P95LatencyMS })
	return p
}

func (s *Server) usage(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	if s.src.Analyst == nil {
		s.fail(w, r, http.StatusNotFound, "This dashboard has no usage page.")
		return
	}
	done := s.timed("usage")
	var u query.Usage
	var err error
	var o query.Options
	var wg sync.WaitGroup
	wg.Go(func() { u, err = s.src.Analyst.Usage(r.Context(), f) })
	wg.Go(func() { o = s.options(r.Context(), f) })
	wg.Wait()
	elapsed := done()
	if err != nil {
		s.queryFailed(w, r, "usage", err)
		return
	}
	b := s.base(r, "Usage", "usage", v)
	b.Elapsed, b.Options = elapsed, o
	s.render(w, r, http.StatusOK, "usage", usageModel(b, v, u))
}

// ---- access log ----

type accessPage struct {
	basePage
	Rows []query.AccessRow
}

// accessList is how many access records the page shows.
const accessList = 200

func (s *Server) accessLogPage(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	if s.src.Analyst == nil {
		s.fail(w, r, http.StatusNotFound, "This dashboard has no access log page.")
		return
	}
	done := s.timed("access")
	rows, err := s.src.Analyst.AccessLog(r.Context(), f, accessList)
	elapsed := done()
	if err != nil {
		s.queryFailed(w, r, "access", err)
		return
	}
	b := s.base(r, "Access log", "access", v)
	b.Elapsed = elapsed
	s.render(w, r, http.StatusOK, "access", accessPage{basePage: b, Rows: rows})
}

// ---- neutralising what could make text say something else ----

// neutralize replaces, in a rendered page, every bidirectional-text control
// (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) and every control
// character but tab, LF and CR with a visible code (‹U+202E›): a right-to-left
// override in a tag or a team name can no longer make it appear to say
// something else, and nothing invisible hides in a value. The pages' own
// text contains none, so the whole page can be filtered.
func neutralize(b []byte) []byte {
	if !needsNeutralizing(b) {
		return b
	}
	out := make([]byte, 0, len(b)+64)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if hiddenRune(r) && !(r == utf8.RuneError && n == 1) {
			out = fmt.Appendf(out, "‹U+%04X›", r)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

func needsNeutralizing(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if hiddenRune(r) {
			return true
		}
		b = b[n:]
	}
	return false
}

func hiddenRune(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return false
	case r < 0x20 || (r >= 0x7f && r < 0xa0):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}
