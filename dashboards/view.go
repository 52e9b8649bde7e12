package dashboards

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
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
}

// ranges are the relative ranges offered, in the order shown.
var ranges = []struct {
	Name string
	D    time.Duration
}{
	{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}, {"90d", 90 * 24 * time.Hour},
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
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			// ClickHouse's DateTime holds 1970-01-01 … 2106-02-07; outside
			// it a filter means nothing (and year 1 is Go's zero time).
			if t.Before(minTime) || !t.Before(maxTime) {
				return time.Time{}, bad("parameter %s: %q is outside 1970-01-01 … 2105-12-31", key, s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, bad("parameter %s: %q is not a time (want RFC 3339, e.g. 2026-11-22T10:00:00Z, or a date 2026-11-22)", key, s)
}

// parseView reads the URL query. Any malformed value is a *badRequest.
func parseView(q url.Values, now time.Time, cfg *Config) (view, error) {
	var v view
	var err error
	for _, p := range []struct {
		key string
		dst *string
	}{{"tenant", &v.Tenant}, {"team", &v.Team}, {"alias", &v.Alias}, {"provider", &v.Provider}, {"reason", &v.Reason}, {"tier", &v.Tier}, {"sample", &v.Sample}} {
		if *p.dst, err = text(q, p.key); err != nil {
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
				if r.Name == rng {
					d = r.D
				}
			}
			if d == 0 {
				return view{}, bad("parameter range: %q, want one of 1h, 6h, 24h, 7d, 30d, 90d", rng)
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
	for k, s := range map[string]string{"tenant": v.Tenant, "team": v.Team, "alias": v.Alias, "provider": v.Provider,
		"reason": v.Reason, "tier": v.Tier, "category": v.Category, "review": v.Review, "sample": v.Sample} {
		if s != "" {
			q.Set(k, s)
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
	}, nil
}
