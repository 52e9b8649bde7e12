package query

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where the decision records are.
type Config struct {
	Addr     []string `yaml:"addr"` // host:port of the native protocol
	Database string   `yaml:"database"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	// Table is the decision records table (one row per version).
	Table string `yaml:"table"`
	// Timeout bounds each page's queries (and is sent to ClickHouse as
	// max_execution_time, so the server stops too).
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults.
const (
	DefaultTable   = "decision_records"
	DefaultTimeout = 10 * time.Second
	// QueuePerTier is how many pending records the sample queue shows per tier.
	QueuePerTier = 10
	// TopN is how many rows a breakdown shows.
	TopN = 15
)

var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem, each prefixed with prefix.
func (c *Config) Validate(prefix string) error {
	var errs []error
	if len(c.Addr) == 0 {
		errs = append(errs, fmt.Errorf("%s.addr: must list at least one host:port", prefix))
	}
	if !ident.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("%s.database: %q is not a plain identifier", prefix, c.Database))
	}
	if !ident.MatchString(c.Table) {
		errs = append(errs, fmt.Errorf("%s.table: %q is not a plain identifier", prefix, c.Table))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("%s.timeout: must be positive", prefix))
	}
	return errors.Join(errs...)
}

// ClickHouse runs the dashboard queries. It is safe for concurrent use.
type ClickHouse struct {
	conn    driver.Conn
	db, tbl string // validated identifiers
	table   string // `db`.`table`
	rawTbl  string // `db`.`raw_events`
	timeout time.Duration

	colsMu sync.Mutex
	cols   map[string]string // column name → type, loaded on first use
}

// Open connects (lazily: the first query dials) with cfg, which must be valid.
func Open(cfg Config) (*ClickHouse, error) {
	if err := cfg.Validate("clickhouse"); err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:            cfg.Addr,
		Auth:            clickhouse.Auth{Database: cfg.Database, Username: cfg.Username, Password: cfg.Password},
		DialTimeout:     5 * time.Second,
		MaxOpenConns:    16,
		MaxIdleConns:    8,
		ConnMaxLifetime: time.Hour,
		Settings:        clickhouse.Settings{"max_execution_time": int(cfg.Timeout / time.Second)},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return &ClickHouse{
		conn:    conn,
		db:      cfg.Database,
		tbl:     cfg.Table,
		table:   "`" + cfg.Database + "`.`" + cfg.Table + "`",
		rawTbl:  "`" + cfg.Database + "`.`raw_events`",
		timeout: cfg.Timeout,
	}, nil
}

// Close closes the connections.
func (c *ClickHouse) Close() error { return c.conn.Close() }

// Ping checks that ClickHouse answers and the table exists.
func (c *ClickHouse) Ping(ctx context.Context) error {
	if err := c.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	if _, err := c.columns(ctx); err != nil {
		return err
	}
	return nil
}

// columns returns the table's columns, read once from system.columns.
func (c *ClickHouse) columns(ctx context.Context) (map[string]string, error) {
	c.colsMu.Lock()
	defer c.colsMu.Unlock()
	if c.cols != nil {
		return c.cols, nil
	}
	rows, err := c.conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", c.db, c.tbl)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: list columns: %w", err)
	}
	defer rows.Close()
	cols := map[string]string{}
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, fmt.Errorf("clickhouse: list columns: %w", err)
		}
		cols[n] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: list columns: %w", err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("clickhouse: table %s not found (run 'auditline migrate')", c.table)
	}
	c.cols = cols
	return cols, nil
}

func (c *ClickHouse) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// parallel runs fns concurrently and returns the first error.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// NearMiss answers the near-miss dashboard with three scans, run
// concurrently: per time bucket (the trend, whose sums are the totals), per
// (team, alias, provider) (the three breakdowns, summed in Go), and per
// (bucket, reason) (the reasons trend and breakdown). Fewer scans matter more
// than smaller ones on a 2-core ClickHouse.
func (c *ClickHouse) NearMiss(ctx context.Context, f Filter) (NearMissPage, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	w, err := f.build(c.table)
	if err != nil {
		return NearMissPage{}, err
	}
	from, to := f.From, f.To
	if to.IsZero() {
		to = time.Now()
	}
	step := Step(from, to)
	secs := int64(step / time.Second)
	page := NearMissPage{Step: step}
	bucket := "toDateTime(intDiv(toUInt32(start_time), ?) * ?) AS b"
	blockedNear := "countIf(outcome = 'blocked') AS blocked, countIf(near_miss = 1 AND outcome != 'blocked') AS near"
	where := " FROM " + c.table + " WHERE " + w.sql()
	err = parallel(
		func() error {
			q := "SELECT " + bucket + ", " + blockedNear + ", count() AS total" + where + " GROUP BY b ORDER BY b"
			rows, err := c.conn.Query(ctx, q, append([]any{secs, secs}, w.args...)...)
			if err != nil {
				return fmt.Errorf("near-miss trend: %w", err)
			}
			defer rows.Close()
			got := map[int64]Point{}
			for rows.Next() {
				var p Point
				if err := rows.Scan(&p.Start, &p.Blocked, &p.NearMiss, &p.Total); err != nil {
					return fmt.Errorf("near-miss trend: %w", err)
				}
				got[p.Start.Unix()] = p
				page.Totals.Total += p.Total
				page.Totals.Blocked += p.Blocked
				page.Totals.NearMiss += p.NearMiss
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("near-miss trend: %w", err)
			}
			page.Totals.Flagged = page.Totals.Blocked + page.Totals.NearMiss
			for _, b := range buckets(from, to, step) {
				p := got[b.Unix()]
				p.Start = b
				page.Trend = append(page.Trend, p)
			}
			return nil
		},
		func() error {
			return c.dimensions(ctx, w, &page)
		},
		func() error {
			q := "SELECT " + bucket + ", reason, count() AS total, countIf(outcome = 'blocked') AS blocked FROM " + c.table +
				" ARRAY JOIN near_miss_reasons AS reason WHERE " + w.sql() + " GROUP BY b, reason ORDER BY b, reason"
			rows, err := c.conn.Query(ctx, q, append([]any{secs, secs}, w.args...)...)
			if err != nil {
				return fmt.Errorf("near-miss reasons: %w", err)
			}
			defer rows.Close()
			by := map[string]*Count{}
			for rows.Next() {
				var p ReasonPoint
				var blocked uint64
				if err := rows.Scan(&p.Start, &p.Reason, &p.Count, &blocked); err != nil {
					return fmt.Errorf("near-miss reasons: %w", err)
				}
				p.Start = p.Start.UTC()
				page.Reasons = append(page.Reasons, p)
				k := by[p.Reason]
				if k == nil {
					k = &Count{Key: p.Reason}
					by[p.Reason] = k
				}
				k.Total += p.Count
				k.Flagged += p.Count
				k.Blocked += blocked
				k.NearMiss += p.Count - blocked
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("near-miss reasons: %w", err)
			}
			page.ByReason = top(by, func(a, b *Count) bool { return a.Total > b.Total })
			return nil
		},
	)
	if err != nil {
		return NearMissPage{}, err
	}
	return page, nil
}

// maxCombos bounds the (team, alias, provider) rows read in one scan; above
// it the breakdowns fall back to one GROUP BY each.
const maxCombos = 100_000

// dimensions fills the team, alias and provider breakdowns.
func (c *ClickHouse) dimensions(ctx context.Context, w *where, page *NearMissPage) error {
	q := "SELECT " + teamExpr + " AS team, requested_alias, provider, count() AS total, countIf(outcome = 'blocked') AS blocked," +
		" countIf(near_miss = 1 AND outcome != 'blocked') AS near FROM " + c.table + " WHERE " + w.sql() +
		" GROUP BY team, requested_alias, provider LIMIT ?"
	rows, err := c.conn.Query(ctx, q, append(w.args, maxCombos+1)...)
	if err != nil {
		return fmt.Errorf("breakdowns: %w", err)
	}
	defer rows.Close()
	maps := [3]map[string]*Count{{}, {}, {}}
	n := 0
	for rows.Next() {
		var keys [3]string
		var total, blocked, near uint64
		if err := rows.Scan(&keys[0], &keys[1], &keys[2], &total, &blocked, &near); err != nil {
			return fmt.Errorf("breakdowns: %w", err)
		}
		n++
		for i, k := range keys {
			m := maps[i][k]
			if m == nil {
				m = &Count{Key: k}
				maps[i][k] = m
			}
			m.Total += total
			m.Blocked += blocked
			m.NearMiss += near
			m.Flagged += blocked + near
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("breakdowns: %w", err)
	}
	if n > maxCombos {
		return c.dimensionsEach(ctx, w, page)
	}
	byFlagged := func(a, b *Count) bool {
		if a.Flagged != b.Flagged {
			return a.Flagged > b.Flagged
		}
		return a.Total > b.Total
	}
	page.ByTeam, page.ByAlias, page.ByProvider = top(maps[0], byFlagged), top(maps[1], byFlagged), top(maps[2], byFlagged)
	return nil
}

// dimensionsEach is dimensions with one GROUP BY per breakdown, for
// very high cardinalities.
func (c *ClickHouse) dimensionsEach(ctx context.Context, w *where, page *NearMissPage) error {
	counts := "count() AS total, countIf(near_miss = 1 OR outcome = 'blocked') AS flagged, countIf(outcome = 'blocked') AS blocked, countIf(near_miss = 1 AND outcome != 'blocked') AS near"
	outs := []*[]Count{&page.ByTeam, &page.ByAlias, &page.ByProvider}
	for i, expr := range []string{teamExpr, "requested_alias", "provider"} {
		*outs[i] = nil
		q := "SELECT " + expr + " AS k, " + counts + " FROM " + c.table + " WHERE " + w.sql() + " GROUP BY k ORDER BY flagged DESC, total DESC, k LIMIT ?"
		if err := c.scanCounts(ctx, outs[i], q, append(w.args, TopN)...); err != nil {
			return err
		}
	}
	return nil
}

// top returns the TopN largest counts by less, ties broken by key.
func top(m map[string]*Count, greater func(a, b *Count) bool) []Count {
	all := make([]*Count, 0, len(m))
	for _, c := range m {
		all = append(all, c)
	}
	sort.Slice(all, func(i, j int) bool {
		if greater(all[i], all[j]) {
			return true
		}
		if greater(all[j], all[i]) {
			return false
		}
		return all[i].Key < all[j].Key
	})
	out := make([]Count, 0, min(len(all), TopN))
	for _, c := range all[:min(len(all), TopN)] {
		out = append(out, *c)
	}
	return out
}

func (c *ClickHouse) scanCounts(ctx context.Context, out *[]Count, q string, args ...any) error {
	rows, err := c.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("breakdown: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k Count
		if err := rows.Scan(&k.Key, &k.Total, &k.Flagged, &k.Blocked, &k.NearMiss); err != nil {
			return fmt.Errorf("breakdown: %w", err)
		}
		*out = append(*out, k)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("breakdown: %w", err)
	}
	return nil
}

// rowColumns are the columns of a list Row, in Scan order.
const rowColumns = "record_id, version, tenant, start_time, " + teamExpr + ", requested_alias, provider, outcome, blocked_by, near_miss, near_miss_reasons, risk_tier, sampled, sample_reason, review_status, cost_usd, duration_ms"

func scanRow(rows driver.Rows) (Row, error) {
	var r Row
	var nm, sampled uint8
	err := rows.Scan(&r.RecordID, &r.Version, &r.Tenant, &r.StartTime, &r.Team, &r.Alias, &r.Provider, &r.Outcome, &r.BlockedBy,
		&nm, &r.Reasons, &r.Tier, &sampled, &r.SampleReason, &r.ReviewStatus, &r.CostUSD, &r.DurationMS)
	r.NearMiss, r.Sampled = nm == 1, sampled == 1
	r.StartTime = r.StartTime.UTC()
	return r, err
}

// MaxLimit caps a list page.
const MaxLimit = 500

// Records lists the latest versions matching f, newest first, starting after
// the cursor, at most limit rows.
func (c *ClickHouse) Records(ctx context.Context, f Filter, after Cursor, limit int) (List, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	w, err := f.build(c.table)
	if err != nil {
		return List{}, err
	}
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	if !after.IsZero() {
		w.add("(start_time < toDateTime(?) OR (start_time = toDateTime(?) AND record_id < ?))", unix(after.Start), unix(after.Start), after.RecordID)
	}
	q := "SELECT " + rowColumns + " FROM " + c.table + " WHERE " + w.sql() + " ORDER BY start_time DESC, record_id DESC LIMIT ?"
	rows, err := c.conn.Query(ctx, q, append(w.args, limit+1)...)
	if err != nil {
		return List{}, fmt.Errorf("records: %w", err)
	}
	defer rows.Close()
	var l List
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return List{}, fmt.Errorf("records: %w", err)
		}
		l.Rows = append(l.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return List{}, fmt.Errorf("records: %w", err)
	}
	if len(l.Rows) > limit {
		l.Rows = l.Rows[:limit]
		last := l.Rows[limit-1]
		l.Next = Cursor{Start: last.StartTime, RecordID: last.RecordID}
	}
	return l, nil
}

// Sampling answers the sampling dashboard with three scans, run
// concurrently: per (tier, sample reason, review status) — the tier table and
// the outcomes, summed in Go —, per time bucket (review progress), and the
// queue.
func (c *ClickHouse) Sampling(ctx context.Context, f Filter) (SamplingPage, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	w, err := f.build(c.table)
	if err != nil {
		return SamplingPage{}, err
	}
	from, to := f.From, f.To
	if to.IsZero() {
		to = time.Now()
	}
	step := Step(from, to)
	secs := int64(step / time.Second)
	page := SamplingPage{Step: step}
	where := " FROM " + c.table + " WHERE " + w.sql()
	err = parallel(
		func() error {
			q := "SELECT risk_tier, sampled, sample_reason, review_status, count() AS n, argMax(sample_rate, start_time) AS rate, max(start_time) AS last" +
				where + " GROUP BY risk_tier, sampled, sample_reason, review_status"
			rows, err := c.conn.Query(ctx, q, w.args...)
			if err != nil {
				return fmt.Errorf("sampling tiers: %w", err)
			}
			defer rows.Close()
			tiers := map[string]*Tier{}
			lastSampled := map[string]time.Time{}
			outcomes := map[string]*Count{}
			for rows.Next() {
				var tier, reason, review string
				var sampled uint8
				var n uint64
				var rate float64
				var last time.Time
				if err := rows.Scan(&tier, &sampled, &reason, &review, &n, &rate, &last); err != nil {
					return fmt.Errorf("sampling tiers: %w", err)
				}
				t := tiers[tier]
				if t == nil {
					t = &Tier{Tier: tier}
					tiers[tier] = t
				}
				t.Total += n
				if sampled != 1 {
					continue
				}
				t.Sampled += n
				switch reason {
				case "baseline":
					t.Baseline += n
				case "burst":
					t.Burst += n
				case "always":
					t.Always += n
				}
				if review != "" {
					t.Reviewed += n
					o := outcomes[review]
					if o == nil {
						o = &Count{Key: review}
						outcomes[review] = o
					}
					o.Total += n
				}
				if last.After(lastSampled[tier]) {
					lastSampled[tier], t.Rate = last, rate
				}
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("sampling tiers: %w", err)
			}
			for _, t := range tiers {
				page.Tiers = append(page.Tiers, *t)
			}
			sort.Slice(page.Tiers, func(i, j int) bool { return TierLess(page.Tiers[i].Tier, page.Tiers[j].Tier) })
			page.Outcomes = top(outcomes, func(a, b *Count) bool { return a.Total > b.Total })
			return nil
		},
		func() error {
			q := "SELECT toDateTime(intDiv(toUInt32(start_time), ?) * ?) AS b, countIf(sampled = 1), countIf(sampled = 1 AND review_status != '')" + where + " GROUP BY b ORDER BY b"
			rows, err := c.conn.Query(ctx, q, append([]any{secs, secs}, w.args...)...)
			if err != nil {
				return fmt.Errorf("review progress: %w", err)
			}
			defer rows.Close()
			got := map[int64]ReviewPoint{}
			for rows.Next() {
				var p ReviewPoint
				if err := rows.Scan(&p.Start, &p.Sampled, &p.Reviewed); err != nil {
					return fmt.Errorf("review progress: %w", err)
				}
				got[p.Start.Unix()] = p
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("review progress: %w", err)
			}
			for _, b := range buckets(from, to, step) {
				p := got[b.Unix()]
				p.Start = b
				page.Progress = append(page.Progress, p)
			}
			return nil
		},
		func() error {
			q := "SELECT " + rowColumns + where + " AND sampled = 1 AND review_status = ''" +
				" ORDER BY start_time, record_id LIMIT ? BY risk_tier LIMIT ?"
			rows, err := c.conn.Query(ctx, q, append(w.args, QueuePerTier, QueuePerTier*20)...)
			if err != nil {
				return fmt.Errorf("sample queue: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				r, err := scanRow(rows)
				if err != nil {
					return fmt.Errorf("sample queue: %w", err)
				}
				page.Queue = append(page.Queue, r)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("sample queue: %w", err)
			}
			sort.SliceStable(page.Queue, func(i, j int) bool {
				return page.Queue[i].Tier != page.Queue[j].Tier && TierLess(page.Queue[i].Tier, page.Queue[j].Tier)
			})
			return nil
		},
		func() error {
			b, err := c.burst(ctx)
			page.Burst = b
			return err
		},
	)
	if err != nil {
		return SamplingPage{}, err
	}
	return page, nil
}

// burst reads the latest sampling_control event. Until the table holding raw
// oversight events exists it reports Known = false.
func (c *ClickHouse) burst(ctx context.Context) (Burst, error) {
	return Burst{}, nil
}

// tierRank orders the usual tier names most severe first; others sort after,
// alphabetically.
var tierRank = map[string]int{"critical": 1, "high": 2, "elevated": 3, "medium": 4, "moderate": 5, "low": 6, "minimal": 7}

// TierLess orders risk tiers most severe first.
func TierLess(a, b string) bool {
	ra, rb := tierRank[a], tierRank[b]
	if ra == 0 {
		ra = 100
	}
	if rb == 0 {
		rb = 100
	}
	if ra != rb {
		return ra < rb
	}
	return a < b
}
