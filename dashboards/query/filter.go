package query

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// where accumulates SQL conditions with positional parameters. Conditions are
// constant strings from this package; only args carry user input.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return "1"
	}
	return strings.Join(w.conds, " AND ")
}

// teamExpr is how the dashboards name a team: its alias, else its id.
const teamExpr = "if(team_alias != '', team_alias, team_id)"

// sees reports whether tenant is within f's tenant scoping.
func (f Filter) sees(tenant string) bool {
	if f.Tenant != "" && f.Tenant != tenant {
		return false
	}
	return slices.Contains(f.Tenants, AllTenants) || slices.Contains(f.Tenants, tenant)
}

// scope is the tenant and time conditions of f: the part of a filter that
// every version of a record satisfies alike (tenant and start time are in
// the table's sort key, so versions of a record agree on them). It refuses a
// filter without tenants.
func (f Filter) scope() (*where, error) {
	w := &where{}
	all := slices.Contains(f.Tenants, AllTenants)
	switch {
	case f.Tenant != "":
		if !all && !slices.Contains(f.Tenants, f.Tenant) {
			return nil, fmt.Errorf("%w: tenant %q is not among the filter's tenants", ErrNoTenant, f.Tenant)
		}
		w.add("tenant = ?", f.Tenant)
	case all:
	case len(f.Tenants) == 0:
		return nil, ErrNoTenant
	default:
		// One placeholder per tenant: IN keeps the primary-key index on
		// tenant (has() would not), and the driver binds a slice as an array.
		args := make([]any, len(f.Tenants))
		for i, t := range f.Tenants {
			args[i] = t
		}
		w.add("tenant IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")+")", args...)
	}
	if !f.From.IsZero() {
		w.add("start_time >= toDateTime(?)", unix(f.From))
	}
	if !f.To.IsZero() {
		w.add("start_time < toDateTime(?)", unix(f.To))
	}
	// A record of an access event (who looked at what) is not a request:
	// it is never counted with them, and listed only when asked for.
	if f.Access {
		w.add("access_action != ''")
	} else {
		w.add("access_action = ''")
	}
	return w, nil
}

// searchPrefix is the shortest record id prefix a search matches.
const searchPrefix = 8

// versionMargin widens the time range in which latestJoin looks for later
// versions: a later version may carry a slightly different start time (an
// earlier attempt reported late), so it is searched a day either side.
const versionMargin = 24 * time.Hour

// latestJoin keeps only the latest version of each record, without FINAL:
// the rows a query reads are joined (ANY LEFT JOIN on record_id) to the
// highest version of every record that has more than one, and a row survives
// if its version is at least that (rows of single-version records join
// nothing and get 0). The right side reads only rows with version > 1
// (amended and reviewed records, a small share) and is scoped by time alone,
// never by tenant: a later version that moved the record to another tenant
// still supersedes the earlier one, so the earlier tenant stops seeing it
// (docs/sql.md: a late gateway event can move a record). Filters apply to
// the row before the join and the latest version is chosen over all
// versions: a record whose latest version fails a filter is excluded even
// when an older version would pass.
//
// Measured on 18.16 with 1M rows, 5% with a second version, in fresh parts:
// FINAL 0.4–6 s depending on the number of parts; a NOT IN / IN pair of
// subqueries 0.45–0.6 s per scan; this join 0.12–0.3 s per scan.
//
// Both sides of the join are named (the caller's "FROM (…) AS _r", and
// "AS _lv" here): servers since 20.x refuse a subquery in a JOIN without an
// alias (joined_subquery_requires_alias = 1, code 206); 18.16 accepts them.
//
// Exactness assumes one row per (record_id, version), which the store
// guarantees (store_progress makes replays exactly-once) and
// ReplacingMergeTree restores at merge time if a duplicate slipped in.
func latestJoin(table string, f Filter) (string, []any) {
	w := &where{}
	if !f.From.IsZero() {
		w.add("start_time >= toDateTime(?)", unix(f.From.Add(-versionMargin)))
	}
	if !f.To.IsZero() {
		w.add("start_time < toDateTime(?)", unix(f.To.Add(versionMargin)))
	}
	return " ANY LEFT JOIN (SELECT record_id, max(version) AS _latest FROM " + table + " PREWHERE version > 1 WHERE " + w.sql() +
		" GROUP BY record_id) AS _lv USING record_id WHERE version >= _latest", w.args
}

// build turns f into conditions on a row. It refuses a filter without
// tenants.
func (f Filter) build() (w *where, err error) {
	if w, err = f.scope(); err != nil {
		return nil, err
	}
	if f.Team != "" {
		w.add(teamExpr+" = ?", f.Team)
	}
	if f.Alias != "" {
		w.add("requested_alias = ?", f.Alias)
	}
	if f.Provider != "" {
		w.add("provider = ?", f.Provider)
	}
	if f.Reason != "" {
		w.add("has(near_miss_reasons, ?)", f.Reason)
	}
	if f.Tier != "" {
		w.add("risk_tier = ?", f.Tier)
	}
	switch f.Category {
	case AnyCategory:
	case Blocked:
		w.add("outcome = 'blocked'")
	case NearMiss:
		w.add("near_miss = 1 AND outcome != 'blocked'")
	case Flagged:
		w.add("(near_miss = 1 OR outcome = 'blocked')")
	default:
		return nil, fmt.Errorf("query: unknown category %q", f.Category)
	}
	if f.Sampled {
		w.add("sampled = 1")
	}
	if f.Sample != "" {
		w.add("sample_reason = ?", f.Sample)
	}
	switch f.Review {
	case AnyReview:
	case Pending:
		w.add("review_status = ''")
	case Reviewed:
		w.add("review_status != ''")
	default:
		w.add("review_status = ?", string(f.Review))
	}
	if f.Outcome != "" {
		w.add("outcome = ?", f.Outcome)
	}
	if f.Model != "" {
		w.add("if(served_model != '', served_model, requested_alias) = ?", f.Model)
	}
	if f.User != "" {
		w.add("(user_id = ? OR user_email = ?)", f.User, f.User)
	}
	switch f.Approval {
	case "":
	case ApprovalViolation:
		w.add("approval_status IN ('executed_without_approval', 'executed_after_rejection')")
	default:
		w.add("approval_status = ?", f.Approval)
	}
	if q := f.Search; q != "" {
		// Equality on each column (bound values, no pattern: a search
		// string is never a LIKE pattern), plus a record id prefix.
		cond, args := "(record_id = ? OR request_key = ? OR user_id = ? OR user_email = ? OR key_alias = ?", []any{q, q, q, q, q}
		if len(q) >= searchPrefix && len(q) < 32 {
			cond += " OR substring(record_id, 1, ?) = ?"
			args = append(args, len(q), q)
		}
		w.add(cond+")", args...)
	}
	return w, nil
}

// span is the time range of a page with a trend and its bucket width.
type span struct {
	from, to time.Time
	step     time.Duration
}

// trend is build plus the span of f: To defaults to now, the step to the
// narrowest that draws at most MaxBuckets buckets.
func (f Filter) trend() (*where, span, error) {
	w, err := f.build()
	if err != nil {
		return nil, span{}, err
	}
	sp := span{from: f.From, to: f.To}
	if sp.to.IsZero() {
		sp.to = time.Now()
	}
	sp.step = Step(sp.from, sp.to)
	return w, sp, nil
}

// unix returns t as seconds for toDateTime: DateTime is UInt32 seconds, and
// passing a number avoids any time zone in the SQL text.
func unix(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > 1<<32-1 {
		return 1<<32 - 1
	}
	return s
}

// steps are the bucket widths a trend may use, narrowest first.
var steps = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour,
}

// MaxBuckets is the most bars a trend draws.
const MaxBuckets = 60

// Step returns the narrowest bucket width that splits [from, to) into at
// most MaxBuckets buckets.
func Step(from, to time.Time) time.Duration {
	span := to.Sub(from)
	for _, s := range steps {
		if span/s <= MaxBuckets {
			return s
		}
	}
	return steps[len(steps)-1]
}

// buckets returns the start of every bucket of width step covering [from, to),
// aligned to multiples of step since the Unix epoch (as the SQL aligns them).
func buckets(from, to time.Time, step time.Duration) []time.Time {
	s := int64(step / time.Second)
	first := from.Unix() / s * s
	var out []time.Time
	for t := first; t < to.Unix() && len(out) <= MaxBuckets+1; t += s {
		out = append(out, time.Unix(t, 0).UTC())
	}
	return out
}
