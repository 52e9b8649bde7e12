package dashboards

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
)

// view is the state a page's URL carries: time range and filters. Every page
// link is built from it, so reloading, bookmarking or sharing a URL shows the
// same thing.
type view struct {
	Range    string // relative range ("24h", "7d", …), "" when From/To are explicit
	From, To time.Time
	Tenant   string
	Team     string
	Alias    string
	Provider string
	Reason   string
	Tier     string
	Category string
	Review   string
	Sample   string
	Sampled  bool
	Cursor   query.Cursor
	// Issue 18.
	Outcome  string
	Model    string
	User     string
	Approval string
	Search   string // q: record id (or an 8+ character prefix), request key, user, key alias
	Sort     string // "", oldest, cost, duration (the record list)
}

// urlFilter is one filter a page URL can carry as ?key=value. Adding a
// filter: an entry here, a field in view (and in query.Filter, set in
// filter below); parsing, links and the chips that remove it follow.
type urlFilter struct {
	key   string              // URL parameter
	label string              // chip label
	field func(*view) *string // where the value lives
	// checked: the value is validated by parseView itself (a fixed set of
	// words) after the free-text filters, instead of being free text.
	checked bool
	show    func(string) string // chip text of a value; nil shows it as is
}

// urlFilters are the filters, in the order their chips show.
var urlFilters = []urlFilter{
	{key: "tenant", label: "tenant", field: func(v *view) *string { return &v.Tenant }},
	{key: "team", label: "team", field: func(v *view) *string { return &v.Team }},
	{key: "alias", label: "alias", field: func(v *view) *string { return &v.Alias }},
	{key: "provider", label: "provider", field: func(v *view) *string { return &v.Provider }},
	{key: "reason", label: "reason", field: func(v *view) *string { return &v.Reason }, show: reasonLabel},
	{key: "tier", label: "tier", field: func(v *view) *string { return &v.Tier }},
	{key: "category", label: "category", field: func(v *view) *string { return &v.Category }, checked: true,
		show: func(c string) string { return categoryLabels[c] }},
	{key: "review", label: "review", field: func(v *view) *string { return &v.Review }, checked: true},
	{key: "sample", label: "sample", field: func(v *view) *string { return &v.Sample }},
	{key: "outcome", label: "outcome", field: func(v *view) *string { return &v.Outcome }},
	{key: "model", label: "model", field: func(v *view) *string { return &v.Model }},
	{key: "user", label: "user", field: func(v *view) *string { return &v.User }},
	{key: "approval", label: "approval", field: func(v *view) *string { return &v.Approval }, show: approvalLabel},
	{key: "q", label: "search", field: func(v *view) *string { return &v.Search }},
	{key: "sort", label: "sort", field: func(v *view) *string { return &v.Sort }, checked: true},
}

// formOnly are parameters the filter form sends besides the filters:
// preset is the range dropdown (from/to, when given, win over it, so that
// typing dates and pressing Apply switches the range to custom).
var formOnly = []string{"preset", "shown"}

// rangeAll is the "all data" range: everything dashboard.max_range allows.
const rangeAll = "all"

// approvalLabels name the approval statuses (record.Approval*).
var approvalLabels = map[string]string{
	"not_required": "not required", "awaiting_approval": "awaiting approval", "approved": "approved, not run yet",
	"rejected": "rejected", "executed_after_approval": "executed after approval",
	"executed_without_approval": "executed without the required approval", "executed_after_rejection": "executed after a rejection",
	query.ApprovalViolation: "violation (ran without approval or after a rejection)",
}

func approvalLabel(s string) string {
	if l, ok := approvalLabels[s]; ok {
		return l
	}
	return s
}

// knownParams are every parameter a list page accepts; anything else is a
// 400 naming it (a typo like teams=acme must not silently show everything).
func knownParams() map[string]bool {
	m := map[string]bool{"range": true, "from": true, "to": true, "cursor": true, "sampled": true}
	for _, uf := range urlFilters {
		m[uf.key] = true
	}
	for _, k := range formOnly {
		m[k] = true
	}
	return m
}

var listParams = knownParams()

var categoryLabels = map[string]string{"blocked": "blocked", "near": "nearly blocked", "flagged": "blocked or nearly blocked"}

// ranges are the relative ranges offered, in the order shown.
var ranges = []struct {
	Name string
	D    time.Duration
}{
	{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}, {"90d", 90 * 24 * time.Hour},
	{rangeAll, 0}, // every record dashboard.max_range reaches
}

// badRequest is an error whose text is safe and useful to show the user with
// a 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func bad(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

const maxParam = 200

var (
	cursorID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	words    = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
)

// text validates a free-text filter value (team, alias, …).
func text(q url.Values, key string) (string, error) {
	vs := q[key]
	if len(vs) == 0 {
		return "", nil
	}
	if len(vs) > 1 {
		return "", bad("parameter %s: given %d times, want at most once", key, len(vs))
	}
	v := vs[0]
	if len(v) > maxParam || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", bad("parameter %s: want at most %d printable characters", key, maxParam)
	}
	return v, nil
}

var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC)
)

func parseTime(key, s string) (time.Time, error) {
	// The inputs show times as 2006-01-02T15:04Z: that form is accepted too,
	// as is a space instead of the T.
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04",
		"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			// ClickHouse's DateTime holds 1970-01-01 … 2106-02-07; outside
			// it a filter means nothing (and year 1 is Go's zero time).
			if t.Before(minTime) || !t.Before(maxTime) {
				return time.Time{}, bad("parameter %s: %q is outside 1970-01-01 … 2105-12-31", key, s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, bad("parameter %s: %q is not a time (want e.g. 2026-11-22T10:00Z, 2026-11-22T10:00:00Z or a date 2026-11-22)", key, s)
}

// parseView reads the URL query. Any malformed value is a *badRequest.
func parseView(q url.Values, now time.Time, cfg *Config) (view, error) {
	var v view
	var err error
	var unknown []string
	for k := range q {
		if !listParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		var known []string
		for k := range listParams {
			known = append(known, k)
		}
		slices.Sort(known)
		return view{}, bad("parameter %s: unknown (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	for _, uf := range urlFilters {
		if uf.checked {
			continue
		}
		if *uf.field(&v), err = text(q, uf.key); err != nil {
			return view{}, err
		}
	}
	rng, err := text(q, "range")
	if err != nil {
		return view{}, err
	}
	fromS, err := text(q, "from")
	if err != nil {
		return view{}, err
	}
	toS, err := text(q, "to")
	if err != nil {
		return view{}, err
	}
	preset, err := text(q, "preset")
	if err != nil {
		return view{}, err
	}
	shown, err := text(q, "shown")
	if err != nil {
		return view{}, err
	}
	// The form's range dropdown (preset) and its From/To inputs arrive
	// together: whichever the user changed wins. The dropdown changed from
	// what the page showed (shown) → it; else typed From/To → custom.
	switch {
	case rng != "":
	case preset != "" && preset != shown:
		rng, fromS, toS = preset, "", ""
	case fromS == "" && toS == "":
		rng = preset
	}
	switch {
	case rng != "" && (fromS != "" || toS != ""):
		return view{}, bad("parameters range and from/to: give one or the other")
	case fromS != "" || toS != "":
		if fromS == "" || toS == "" {
			return view{}, bad("parameters from and to: give both")
		}
		if v.From, err = parseTime("from", fromS); err != nil {
			return view{}, err
		}
		if v.To, err = parseTime("to", toS); err != nil {
			return view{}, err
		}
		if !v.From.Before(v.To) {
			return view{}, bad("parameters from and to: from must be before to")
		}
		if v.To.Sub(v.From) > cfg.MaxRange {
			return view{}, bad("parameters from and to: the range exceeds %s (dashboard.max_range)", cfg.MaxRange)
		}
	default:
		d := cfg.DefaultRange
		if rng == "" {
			for _, r := range ranges {
				if r.D == d {
					rng = r.Name // show the default as the named range it is
				}
			}
		}
		if rng != "" {
			d = 0
			for _, r := range ranges {
				if r.Name == rng && r.D > 0 {
					d = r.D
				}
			}
			if rng == rangeAll {
				d = cfg.MaxRange
			}
			if d == 0 {
				return view{}, bad("parameter range: %q, want one of 1h, 6h, 24h, 7d, 30d, 90d, all", rng)
			}
			v.Range = rng
		}
		// Round "now" up to the minute so that links and cache keys are stable
		// for a minute, and so that the current bucket is included.
		v.To = now.UTC().Truncate(time.Minute).Add(time.Minute)
		v.From = v.To.Add(-d)
	}
	cat, err := text(q, "category")
	if err != nil {
		return view{}, err
	}
	switch query.Category(cat) {
	case query.AnyCategory, query.Blocked, query.NearMiss, query.Flagged:
		v.Category = cat
	default:
		return view{}, bad("parameter category: %q, want blocked, near or flagged", cat)
	}
	if v.Review, err = text(q, "review"); err != nil {
		return view{}, err
	}
	if v.Review != "" && !words.MatchString(v.Review) {
		return view{}, bad("parameter review: %q, want pending, reviewed or an outcome such as approve", v.Review)
	}
	if v.Sort, err = text(q, "sort"); err != nil {
		return view{}, err
	}
	switch v.Sort {
	case query.SortNewest, query.SortOldest, query.SortCost, query.SortDuration:
	default:
		return view{}, bad("parameter sort: %q, want oldest, cost or duration (newest first without it)", v.Sort)
	}
	if v.Approval != "" && approvalLabels[v.Approval] == "" {
		return view{}, bad("parameter approval: %q, want one of %s", v.Approval, strings.Join(slices.Sorted(maps.Keys(approvalLabels)), ", "))
	}
	sampled, err := text(q, "sampled")
	if err != nil {
		return view{}, err
	}
	switch sampled {
	case "", "0", "false":
	case "1", "true":
		v.Sampled = true
	default:
		return view{}, bad("parameter sampled: %q, want 1 or 0", sampled)
	}
	cur, err := text(q, "cursor")
	if err != nil {
		return view{}, err
	}
	if cur != "" {
		ts, id, ok := strings.Cut(cur, ".")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil || sec < 0 || !cursorID.MatchString(id) {
			return view{}, bad("parameter cursor: malformed (follow the Next link rather than editing it)")
		}
		v.Cursor = query.Cursor{Start: time.Unix(sec, 0).UTC(), RecordID: id}
	}
	return v, nil
}

// values is the canonical URL query of v (cursor excluded: it is per page).
func (v view) values() url.Values {
	q := url.Values{}
	if v.Range != "" {
		q.Set("range", v.Range)
	} else if !v.From.IsZero() {
		q.Set("from", v.From.Format(time.RFC3339))
		q.Set("to", v.To.Format(time.RFC3339))
	}
	for _, uf := range urlFilters {
		if s := *uf.field(&v); s != "" {
			q.Set(uf.key, s)
		}
	}
	if v.Sampled {
		q.Set("sampled", "1")
	}
	return q
}

// href returns path?query of v with the given keys replaced ("" deletes).
func (v view) Href(path string, kv ...string) string {
	q := v.values()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "range" {
			q.Del("from")
			q.Del("to")
		}
		if kv[i] == "from" {
			q.Del("range")
		}
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// errForbiddenTenant is a tenant parameter outside the user's tenants.
var errForbiddenTenant = errors.New("tenant not permitted")

// filter is the query filter of v for p. A tenant parameter outside p's
// tenants is refused: editing the URL never widens what a user sees.
func (v view) filter(p auth.Principal) (query.Filter, error) {
	if v.Tenant != "" && !p.Sees(v.Tenant) {
		return query.Filter{}, errForbiddenTenant
	}
	return query.Filter{
		Tenants: p.Tenants, Tenant: v.Tenant, From: v.From, To: v.To,
		Team: v.Team, Alias: v.Alias, Provider: v.Provider, Reason: v.Reason, Tier: v.Tier,
		Category: query.Category(v.Category), Sampled: v.Sampled, Review: query.Review(v.Review), Sample: v.Sample,
		Outcome: v.Outcome, Model: v.Model, User: v.User, Approval: v.Approval, Search: v.Search, Sort: v.Sort,
	}, nil
}

// span is v's time range.
func (v view) span() time.Duration { return v.To.Sub(v.From) }

// Zoom links: the same view over another time range (explicit from/to).
func (v view) shifted(path string, from, to time.Time) string {
	return v.Href(path, "from", from.UTC().Format(time.RFC3339), "to", to.UTC().Format(time.RFC3339))
}

// Earlier is the range of the same length just before v's.
func (v view) Earlier(path string) string { return v.shifted(path, v.From.Add(-v.span()), v.From) }

// Later is the range of the same length just after v's.
func (v view) Later(path string) string { return v.shifted(path, v.To, v.To.Add(v.span())) }

// ZoomIn is the middle half of v's range.
func (v view) ZoomIn(path string) string {
	q := v.span() / 4
	return v.shifted(path, v.From.Add(q), v.To.Add(-q))
}

// ZoomOut is twice v's range around its middle.
func (v view) ZoomOut(path string) string {
	h := v.span() / 2
	return v.shifted(path, v.From.Add(-h), v.To.Add(h))
}
