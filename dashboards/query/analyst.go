package query

import (
	"context"
	"sort"
	"strconv"
	"time"
)

// Reads for analysts (issue 18): the values a filter can take, totals,
// sorted lists, exports, usage trends with the previous period, review
// throughput, and the access log. Each is one scan (two for usage), over
// the latest versions where counts depend on it.

// Sorts of a list besides newest first.
const (
	SortNewest   = ""         // start time, newest first (keyset-paged)
	SortOldest   = "oldest"   // start time, oldest first (keyset-paged)
	SortCost     = "cost"     // most expensive first (top MaxLimit)
	SortDuration = "duration" // slowest first (top MaxLimit)
)

// Options are the known values of the list filters within a filter's tenant
// and time scope, most frequent first, at most MaxOptions each.
type Options struct {
	Tenant, Outcome, Tier, Reason, Review, Model, User, Team, Alias, Provider, Approval []string
}

// MaxOptions bounds each list of Options.
const MaxOptions = 200

type optionRow struct {
	Key, Value string
	N          uint64
}

func (r *optionRow) dest() []any { return []any{&r.Key, &r.Value, &r.N} }

// Options reads the values each filter can take in f's scope (tenants,
// time range; the other filters are ignored, so a dropdown never hides the
// way out of a filter), in one scan: every row is fanned out to its
// (filter, value) pairs, grouped, LIMIT BY filter.
func (c *ClickHouse) Options(ctx context.Context, f Filter) (Options, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	w, err := f.scope()
	if err != nil {
		return Options{}, err
	}
	q := "SELECT p.1 AS k, p.2 AS v, count() AS n FROM (SELECT arrayConcat([('tenant', tenant), ('outcome', outcome), ('tier', risk_tier)," +
		" ('review', review_status), ('model', if(served_model != '', served_model, requested_alias)), ('user', if(user_email != '', user_email, user_id))," +
		" ('team', " + teamExpr + "), ('alias', requested_alias), ('provider', provider), ('approval', approval_status)]," +
		" arrayMap(r -> ('reason', r), near_miss_reasons)) AS kv FROM " + c.table + " WHERE " + w.sql() + ") AS _o" +
		" ARRAY JOIN kv AS p WHERE v != '' GROUP BY k, v ORDER BY k, n DESC, v LIMIT ? BY k"
	var o Options
	dst := map[string]*[]string{"tenant": &o.Tenant, "outcome": &o.Outcome, "tier": &o.Tier, "reason": &o.Reason, "review": &o.Review,
		"model": &o.Model, "user": &o.User, "team": &o.Team, "alias": &o.Alias, "provider": &o.Provider, "approval": &o.Approval}
	err = each(ctx, c.conn, "options", q, append(w.args, MaxOptions), func(r *optionRow) error {
		if d := dst[r.Key]; d != nil {
			*d = append(*d, r.Value)
		}
		return nil
	})
	if err != nil {
		return Options{}, err
	}
	sort.Slice(o.Tier, func(i, j int) bool { return TierLess(o.Tier[i], o.Tier[j]) })
	return o, nil
}

// Total counts the latest versions matching f.
func (c *ClickHouse) Total(ctx context.Context, f Filter) (uint64, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	w, err := f.build()
	if err != nil {
		return 0, err
	}
	src, args := c.from("start_time", w, f, "", "")
	var n uint64
	err = each(ctx, c.conn, "total", "SELECT count()"+src, args, func(r *countRow) error { n = r.N; return nil })
	return n, err
}

// top lists the latest versions matching w, sorted by an expression, at
// most limit (no paging: a top list).
func (c *ClickHouse) top(ctx context.Context, w *where, f Filter, order string, limit int) (List, error) {
	src, args := c.from(rowSource, w, f, "", "")
	return c.list(ctx, "SELECT "+rowColumns+src+" ORDER BY "+order+", record_id DESC LIMIT ?", append(args, limit)...)
}

// ExportRow is one record as an export writes it.
type ExportRow struct {
	RecordID       string    `json:"record_id"`
	Version        uint32    `json:"version"`
	Tenant         string    `json:"tenant"`
	StartTime      time.Time `json:"start_time"`
	RequestKey     string    `json:"request_key"`
	UserID         string    `json:"user_id"`
	UserEmail      string    `json:"user_email"`
	KeyAlias       string    `json:"key_alias"`
	Team           string    `json:"team"`
	RequestedAlias string    `json:"requested_alias"`
	ServedModel    string    `json:"served_model"`
	Provider       string    `json:"provider"`
	Outcome        string    `json:"outcome"`
	BlockedBy      string    `json:"blocked_by"`
	NearMiss       bool      `json:"near_miss"`
	Reasons        []string  `json:"near_miss_reasons"`
	Tier           string    `json:"risk_tier"`
	Sampled        bool      `json:"sampled"`
	SampleReason   string    `json:"sample_reason"`
	ReviewStatus   string    `json:"review_status"`
	ApprovalStatus string    `json:"approval_status"`
	CostUSD        float64   `json:"cost_usd"`
	TotalTokens    int64     `json:"total_tokens"`
	DurationMS     int64     `json:"duration_ms"`
}

// ExportColumns names ExportRow's fields in order (the CSV header).
var ExportColumns = []string{"record_id", "version", "tenant", "start_time", "request_key", "user_id", "user_email", "key_alias", "team",
	"requested_alias", "served_model", "provider", "outcome", "blocked_by", "near_miss", "near_miss_reasons", "risk_tier", "sampled",
	"sample_reason", "review_status", "approval_status", "cost_usd", "total_tokens", "duration_ms"}

const exportSource = "tenant, start_time, request_key, user_id, user_email, key_alias, team_alias, team_id, requested_alias, served_model, provider," +
	" outcome, blocked_by, near_miss, near_miss_reasons, risk_tier, sampled, sample_reason, review_status, approval_status, cost_usd, total_tokens, duration_ms"

const exportColumns = "record_id, version, tenant, start_time, request_key, user_id, user_email, key_alias, " + teamExpr + ", requested_alias, served_model," +
	" provider, outcome, blocked_by, near_miss, near_miss_reasons, risk_tier, sampled, sample_reason, review_status, approval_status, cost_usd, total_tokens, duration_ms"

type exportRow struct {
	ExportRow
	nearMiss, sampled uint8
}

func (r *exportRow) dest() []any {
	e := &r.ExportRow
	return []any{&e.RecordID, &e.Version, &e.Tenant, &e.StartTime, &e.RequestKey, &e.UserID, &e.UserEmail, &e.KeyAlias, &e.Team,
		&e.RequestedAlias, &e.ServedModel, &e.Provider, &e.Outcome, &e.BlockedBy, &r.nearMiss, &e.Reasons, &e.Tier, &r.sampled,
		&e.SampleReason, &e.ReviewStatus, &e.ApprovalStatus, &e.CostUSD, &e.TotalTokens, &e.DurationMS}
}

// MaxExport bounds one export.
const MaxExport = 1_000_000

// Export streams the latest versions matching f, newest first, to fn, at
// most max (≤ MaxExport), as ClickHouse sends them: memory stays bounded
// whatever the size. It stops at fn's first error.
func (c *ClickHouse) Export(ctx context.Context, f Filter, max int, fn func(ExportRow) error) error {
	w, err := f.build()
	if err != nil {
		return err
	}
	if max <= 0 || max > MaxExport {
		max = MaxExport
	}
	// No c.ctx here: a large export may take longer than a page's timeout;
	// the server's max_execution_time still bounds the query.
	src, args := c.from(exportSource, w, f, "", "")
	q := "SELECT " + exportColumns + src + " ORDER BY start_time DESC, record_id DESC LIMIT ?"
	return each(ctx, c.conn, "export", q, append(args, max), func(r *exportRow) error {
		e := r.ExportRow
		e.NearMiss, e.Sampled, e.StartTime = r.nearMiss == 1, r.sampled == 1, e.StartTime.UTC()
		return fn(e)
	})
}

// Usage is what a range cost and how it ran, with the previous period of
// the same length beside it.
type Usage struct {
	Step     time.Duration
	Totals   UsagePoint // this range
	Previous UsagePoint // the range of the same length just before
	Trend    []UsagePoint
	ByTenant []UsageCount // most expensive first
}

// UsagePoint sums one bucket (or a whole range).
type UsagePoint struct {
	Start        time.Time
	Requests     uint64
	CostUSD      float64
	Tokens       int64
	AvgLatencyMS float64
	P95LatencyMS float64
}

// UsageCount is one tenant's usage.
type UsageCount struct {
	Key string
	UsagePoint
}

type usageRow struct {
	Bucket uint32
	Tenant string
	UsagePoint
	prev uint8
}

func (r *usageRow) dest() []any {
	return []any{&r.prev, &r.Bucket, &r.Tenant, &r.Requests, &r.CostUSD, &r.Tokens, &r.AvgLatencyMS, &r.P95LatencyMS}
}

// Usage answers the usage page: cost, tokens, requests and latency per
// bucket, per tenant and in total, for f's range and the one before it, in
// one scan grouped by (period, bucket, tenant). The p95 of a total is the
// largest bucket p95 (quantiles do not add up); the averages are weighted.
func (c *ClickHouse) Usage(ctx context.Context, f Filter) (Usage, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, sp, err := f.trend()
	if err != nil {
		return Usage{}, err
	}
	length := sp.to.Sub(sp.from)
	wide := f
	wide.From = sp.from.Add(-length)
	w, err := wide.build()
	if err != nil {
		return Usage{}, err
	}
	secs := int64(sp.step / time.Second)
	src, args := c.from("start_time, tenant, cost_usd, total_tokens, duration_ms", w, wide, "", "")
	q := "SELECT toUInt8(start_time < toDateTime(?)) AS prev, toUInt32(intDiv(toUInt32(start_time), ?) * ?) AS b, tenant, count(), sum(cost_usd), sum(total_tokens)," +
		" avg(duration_ms), quantile(0.95)(duration_ms)" + src + " GROUP BY prev, b, tenant"
	u := Usage{Step: sp.step}
	trend := map[int64]*UsagePoint{}
	tenants := map[string]*UsageCount{}
	add := func(dst *UsagePoint, r *UsagePoint) {
		if n := dst.Requests + r.Requests; n > 0 {
			dst.AvgLatencyMS = (dst.AvgLatencyMS*float64(dst.Requests) + r.AvgLatencyMS*float64(r.Requests)) / float64(n)
		}
		dst.Requests += r.Requests
		dst.CostUSD += r.CostUSD
		dst.Tokens += r.Tokens
		dst.P95LatencyMS = max(dst.P95LatencyMS, r.P95LatencyMS)
	}
	err = each(ctx, c.conn, "usage", q, append([]any{unix(sp.from), secs, secs}, args...), func(r *usageRow) error {
		if r.prev == 1 {
			add(&u.Previous, &r.UsagePoint)
			return nil
		}
		add(&u.Totals, &r.UsagePoint)
		p := trend[int64(r.Bucket)]
		if p == nil {
			p = &UsagePoint{}
			trend[int64(r.Bucket)] = p
		}
		add(p, &r.UsagePoint)
		t := tenants[r.Tenant]
		if t == nil {
			t = &UsageCount{Key: r.Tenant}
			tenants[r.Tenant] = t
		}
		add(&t.UsagePoint, &r.UsagePoint)
		return nil
	})
	if err != nil {
		return Usage{}, err
	}
	for _, b := range buckets(sp.from, sp.to, sp.step) {
		p := UsagePoint{}
		if got := trend[b.Unix()]; got != nil {
			p = *got
		}
		p.Start = b
		u.Trend = append(u.Trend, p)
	}
	for _, t := range tenants {
		u.ByTenant = append(u.ByTenant, *t)
	}
	sort.Slice(u.ByTenant, func(i, j int) bool {
		if u.ByTenant[i].CostUSD != u.ByTenant[j].CostUSD {
			return u.ByTenant[i].CostUSD > u.ByTenant[j].CostUSD
		}
		return u.ByTenant[i].Key < u.ByTenant[j].Key
	})
	return u, nil
}

// ReviewStats is review throughput: reviews per reviewer in the range, and
// how long the oldest sampled record still waiting for review has waited.
type ReviewStats struct {
	Reviewers     []Count   // Key = reviewer, Total = oversight entries recorded in the range
	OldestPending time.Time // start time of the oldest pending sampled record; zero if none
	Pending       uint64
}

type reviewerRow struct {
	Reviewer string
	N        uint64
}

func (r *reviewerRow) dest() []any { return []any{&r.Reviewer, &r.N} }

type pendingRow struct {
	N      uint64
	Oldest time.Time
}

func (r *pendingRow) dest() []any { return []any{&r.N, &r.Oldest} }

// ReviewStats reads review throughput for f: oversight entries per
// reviewer on the latest versions of f's records, and the oldest sampled
// record still pending.
func (c *ClickHouse) ReviewStats(ctx context.Context, f Filter) (ReviewStats, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	w, err := f.build()
	if err != nil {
		return ReviewStats{}, err
	}
	var rs ReviewStats
	err = parallel(
		func() error {
			src, args := c.from("`oversight.reviewer`", w, f, " AND notEmpty(`oversight.reviewer`)", "`oversight.reviewer` AS reviewer")
			q := "SELECT reviewer, count() AS n" + src + " GROUP BY reviewer ORDER BY n DESC, reviewer LIMIT ?"
			return each(ctx, c.conn, "review throughput", q, append(args, TopN), func(r *reviewerRow) error {
				rs.Reviewers = append(rs.Reviewers, Count{Key: r.Reviewer, Total: r.N})
				return nil
			})
		},
		func() error {
			src, args := c.from("start_time", w, f, " AND sampled = 1 AND review_status = ''", "")
			return each(ctx, c.conn, "pending", "SELECT count(), min(start_time)"+src, args, func(r *pendingRow) error {
				rs.Pending = r.N
				if r.N > 0 {
					rs.OldestPending = r.Oldest.UTC()
				}
				return nil
			})
		},
	)
	return rs, err
}

// AccessRow is one access to the audit trail.
type AccessRow struct {
	RecordID  string
	Tenant    string
	At        time.Time // ingest's receive time
	Action    string
	Actor     string
	Role      string
	Via       string
	Client    string
	Sender    string
	Target    string
	TargetVer int64
	Query     string
}

func (r *AccessRow) dest() []any {
	return []any{&r.RecordID, &r.Tenant, &r.At, &r.Action, &r.Actor, &r.Role, &r.Via, &r.Client, &r.Sender, &r.Target, &r.TargetVer, &r.Query}
}

// AccessLog lists the newest access records in f's scope (f.Access is
// implied), at most limit.
func (c *ClickHouse) AccessLog(ctx context.Context, f Filter, limit int) ([]AccessRow, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	f.Access = true
	w, err := f.scope()
	if err != nil {
		return nil, err
	}
	if f.User != "" {
		w.add("access_actor = ?", f.User)
	}
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	q := "SELECT record_id, tenant, start_time, access_action, access_actor, access_role, access_via, access_client, access_sender," +
		" access_target, access_target_version, access_query FROM " + c.table + " WHERE " + w.sql() +
		" ORDER BY start_time DESC, record_id DESC LIMIT " + strconv.Itoa(limit)
	var out []AccessRow
	err = each(ctx, c.conn, "access log", q, w.args, func(r *AccessRow) error {
		r.At = r.At.UTC()
		out = append(out, *r)
		return nil
	})
	return out, err
}
