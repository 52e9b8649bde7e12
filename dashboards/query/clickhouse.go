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

// NearMiss answers the near-miss dashboard: totals, the trend of blocked and
// nearly blocked records, the trend per reason, and breakdowns by team, alias,
// provider and reason — six aggregations in ClickHouse, run concurrently.
func (c *ClickHouse) NearMiss(ctx context.Context, f Filter) (NearMissPage, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	w, err := f.build()
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
	src := "FROM " + c.table + " FINAL WHERE " + w.sql()
	// Named columns: ClickHouse 18.16 has no positional ORDER BY (ORDER BY 2
	// sorts by the constant 2).
	counts := "count() AS total, countIf(near_miss = 1 OR outcome = 'blocked') AS flagged, countIf(outcome = 'blocked') AS blocked, countIf(near_miss = 1 AND outcome != 'blocked') AS near"

	breakdown := func(expr string, out *[]Count) func() error {
		return func() error {
			q := "SELECT " + expr + " AS k, " + counts + " " + src + " GROUP BY k ORDER BY flagged DESC, total DESC, k LIMIT ?"
			return c.scanCounts(ctx, out, q, append(w.args, TopN)...)
		}
	}
	err = parallel(
		func() error {
			var t []Count
			if err := c.scanCounts(ctx, &t, "SELECT '', "+counts+" "+src, w.args...); err != nil {
				return err
			}
			if len(t) == 1 {
				page.Totals = t[0]
			}
			return nil
		},
		func() error {
			q := "SELECT toDateTime(intDiv(toUInt32(start_time), ?) * ?) AS b, countIf(outcome = 'blocked'), countIf(near_miss = 1 AND outcome != 'blocked'), count() " + src + " GROUP BY b ORDER BY b"
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
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("near-miss trend: %w", err)
			}
			for _, b := range buckets(from, to, step) {
				p := got[b.Unix()]
				p.Start = b
				page.Trend = append(page.Trend, p)
			}
			return nil
		},
		func() error {
			q := "SELECT toDateTime(intDiv(toUInt32(start_time), ?) * ?) AS b, reason, count() FROM " + c.table +
				" FINAL ARRAY JOIN near_miss_reasons AS reason WHERE " + w.sql() + " AND near_miss = 1 GROUP BY b, reason ORDER BY b, reason"
			rows, err := c.conn.Query(ctx, q, append([]any{secs, secs}, w.args...)...)
			if err != nil {
				return fmt.Errorf("near-miss reasons trend: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var p ReasonPoint
				if err := rows.Scan(&p.Start, &p.Reason, &p.Count); err != nil {
					return fmt.Errorf("near-miss reasons trend: %w", err)
				}
				p.Start = p.Start.UTC()
				page.Reasons = append(page.Reasons, p)
			}
			return rows.Err()
		},
		breakdown(teamExpr, &page.ByTeam),
		breakdown("requested_alias", &page.ByAlias),
		breakdown("provider", &page.ByProvider),
		func() error {
			q := "SELECT reason AS k, " + counts + " FROM " + c.table + " FINAL ARRAY JOIN near_miss_reasons AS reason WHERE " + w.sql() +
				" GROUP BY k ORDER BY total DESC, k LIMIT ?"
			return c.scanCounts(ctx, &page.ByReason, q, append(w.args, TopN)...)
		},
	)
	if err != nil {
		return NearMissPage{}, err
	}
	return page, nil
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
	w, err := f.build()
	if err != nil {
		return List{}, err
	}
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	if !after.IsZero() {
		w.add("(start_time < toDateTime(?) OR (start_time = toDateTime(?) AND record_id < ?))", unix(after.Start), unix(after.Start), after.RecordID)
	}
	q := "SELECT " + rowColumns + " FROM " + c.table + " FINAL WHERE " + w.sql() + " ORDER BY start_time DESC, record_id DESC LIMIT ?"
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

// Sampling answers the sampling dashboard.
func (c *ClickHouse) Sampling(ctx context.Context, f Filter) (SamplingPage, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	w, err := f.build()
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
	src := " FROM " + c.table + " FINAL WHERE " + w.sql()
	err = parallel(
		func() error {
			q := "SELECT risk_tier, count(), countIf(sampled = 1), countIf(sampled = 1 AND sample_reason = 'baseline'), countIf(sampled = 1 AND sample_reason = 'burst')," +
				" countIf(sampled = 1 AND sample_reason = 'always'), countIf(sampled = 1 AND review_status != ''), argMaxIf(sample_rate, start_time, sampled = 1)" +
				src + " GROUP BY risk_tier"
			rows, err := c.conn.Query(ctx, q, w.args...)
			if err != nil {
				return fmt.Errorf("sampling tiers: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var t Tier
				if err := rows.Scan(&t.Tier, &t.Total, &t.Sampled, &t.Baseline, &t.Burst, &t.Always, &t.Reviewed, &t.Rate); err != nil {
					return fmt.Errorf("sampling tiers: %w", err)
				}
				page.Tiers = append(page.Tiers, t)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("sampling tiers: %w", err)
			}
			sort.Slice(page.Tiers, func(i, j int) bool { return TierLess(page.Tiers[i].Tier, page.Tiers[j].Tier) })
			return nil
		},
		func() error {
			q := "SELECT review_status AS k, count() AS total, toUInt64(0), toUInt64(0), toUInt64(0)" + src + " AND sampled = 1 AND review_status != '' GROUP BY k ORDER BY total DESC, k"
			return c.scanCounts(ctx, &page.Outcomes, q, w.args...)
		},
		func() error {
			q := "SELECT toDateTime(intDiv(toUInt32(start_time), ?) * ?) AS b, countIf(sampled = 1), countIf(sampled = 1 AND review_status != '')" + src + " GROUP BY b ORDER BY b"
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
			q := "SELECT " + rowColumns + src + " AND sampled = 1 AND review_status = ''" +
				" ORDER BY start_time, record_id LIMIT ? BY risk_tier LIMIT ?"
			rows, err := c.conn.Query(ctx, q, append(w.args, QueuePerTier, QueuePerTier*10)...)
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
