package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/store"
)

// BenchmarkLayouts measures the candidate layouts of decision_records
// (store.BenchLayouts: the 18.16 layout, LowCardinality, ZSTD codecs, bloom
// filter skip indexes, all of them) side by side on one server:
//
//   - insert: the store's INSERT (clickhouse-go, 10,000-row blocks) of
//     50,000 records into a fresh database of the layout, rows/s;
//   - bytes: decision_records on disk after INSERT … SELECT of the source's
//     records (AUDITLINE_LAYOUT_RECORDS, default 1,000,000, 2 % with a
//     second version; hashes are real SHA-256 hex; beyond the first 100,000
//     the server copies them with new ids, offsets and hashes), then
//     OPTIMIZE FINAL (merged parts, like for like);
//   - the median time of 3 runs of every docs/sql.md query and of the
//     dashboards' reads (near-miss, sampling, lists, search, options,
//     totals, usage, review stats, a record page).
//
// It writes a markdown table to AUDITLINE_LAYOUT_OUT (or the log). The
// server is AUDITLINE_LAYOUT_CLICKHOUSE, else AUDITLINE_CLICKHOUSE_MODERN:
//
//	go test ./store -run '^$' -bench Layouts -benchtime 1x -timeout 2h
func BenchmarkLayouts(b *testing.B) {
	addr := os.Getenv("AUDITLINE_LAYOUT_CLICKHOUSE")
	if addr == "" {
		addr = os.Getenv("AUDITLINE_CLICKHOUSE_MODERN")
	}
	if addr == "" {
		b.Skip("set AUDITLINE_CLICKHOUSE_MODERN (or AUDITLINE_LAYOUT_CLICKHOUSE)")
	}
	n := 1_000_000
	if v := os.Getenv("AUDITLINE_LAYOUT_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	// Not store.Open: its 5-minute read timeout ends a 1M-row INSERT … SELECT
	// or OPTIMIZE FINAL on a loaded 2-core box (285 s measured for one copy)
	// before the server answers; nothing else differs for these statements.
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout: 10 * time.Second,
		ReadTimeout: time.Hour,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	srv, err := store.Detect(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	var version string
	_ = conn.QueryRow(ctx, "SELECT version()").Scan(&version)
	drop := func(db string) { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`") }

	// The source: the 18.16 layout, loaded with the store's INSERT.
	src := testenv.Name(b)
	defer drop(src)
	layouts := store.BenchLayouts()
	if err := store.MigrateLayout(ctx, conn, src, srv, layouts[0]); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	store.LoadLayoutSource(b, conn, src, n)
	b.Logf("source: %d records (+2 %% versions) loaded in %s", n, time.Since(start).Round(time.Second))
	var cols []string
	if err := selectStrings(ctx, conn, &cols, "SELECT name FROM system.columns WHERE database = ? AND table = ?", src, store.TableDecisions); err != nil {
		b.Fatal(err)
	}
	colList := "`" + strings.Join(cols, "`, `") + "`"

	dt64 := timeColumnBytes(b, ctx, conn, src, cols)

	// One 10,000-row block, inserted 5 times (distinct tokens) per layout.
	insCols, insVals := store.BenchRows(b, 0, 10_000)
	docs := store.DocQueries(b)

	type result struct {
		name              string
		insertRowsPerSec  float64
		copySec           float64
		bytes, comp, unc  uint64
		parts             uint64
		ms                map[string]float64
		queryOrder        []string
		decisionsRowCount uint64
	}
	var results []result
	for _, l := range layouts {
		r := result{name: l.Name, ms: map[string]float64{}}

		// Insert throughput.
		ins := testenv.Name(b)
		if err := store.MigrateLayout(ctx, conn, ins, srv, l); err != nil {
			b.Fatalf("%s: %v", l.Name, err)
		}
		t0 := time.Now()
		for i := range 5 {
			if err := store.Insert(ctx, conn, ins, store.TableDecisions, insCols, insVals, fmt.Sprintf("bench-%d", i)); err != nil {
				b.Fatalf("%s: %v", l.Name, err)
			}
		}
		r.insertRowsPerSec = 50_000 / time.Since(t0).Seconds()
		drop(ins)

		// The full copy.
		db := testenv.Name(b)
		if err := store.MigrateLayout(ctx, conn, db, srv, l); err != nil {
			b.Fatalf("%s: %v", l.Name, err)
		}
		t0 = time.Now()
		for _, q := range []string{
			"INSERT INTO `" + db + "`.`" + store.TableDecisions + "` (" + colList + ") SELECT " + colList + " FROM `" + src + "`.`" + store.TableDecisions + "`",
			"INSERT INTO `" + db + "`.`" + store.TableRawEvents + "` SELECT * FROM `" + src + "`.`" + store.TableRawEvents + "`",
			"INSERT INTO `" + db + "`.`" + store.TableRejected + "` SELECT * FROM `" + src + "`.`" + store.TableRejected + "`",
		} {
			if err := conn.Exec(ctx, q); err != nil {
				b.Fatalf("%s: %v\n%s", l.Name, err, q)
			}
		}
		r.copySec = time.Since(t0).Seconds()
		// Like for like: bytes and query times of fully merged parts, not
		// of whatever the background merges had reached.
		testenv.OptimizeFinal(b, conn, db, store.TableDecisions)
		if err := conn.QueryRow(ctx, "SELECT sum(bytes_on_disk), sum(data_compressed_bytes), sum(data_uncompressed_bytes), count(), sum(rows) FROM system.parts WHERE active AND database = ? AND table = ?",
			db, store.TableDecisions).Scan(&r.bytes, &r.comp, &r.unc, &r.parts, &r.decisionsRowCount); err != nil {
			b.Fatal(err)
		}

		// Queries.
		an, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"}, ReadTimeout: 30 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		for i, q := range docs {
			first, _, _ := strings.Cut(q, "\n")
			name := fmt.Sprintf("sql.md #%d %s", i+1, strings.TrimSpace(strings.TrimPrefix(first, "--")))
			r.queryOrder = append(r.queryOrder, name)
			r.ms[name] = median3(b, func() error { return drain(ctx, an, q) })
		}
		an.Close()
		dash, err := query.Open(query.Config{Addr: []string{addr}, Database: db, Username: "default", Table: store.TableDecisions, Timeout: 5 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range dashboardReads() {
			r.queryOrder = append(r.queryOrder, "dashboards: "+d.name)
			r.ms["dashboards: "+d.name] = median3(b, func() error { return d.run(ctx, dash) })
		}
		dash.Close()
		drop(db)
		results = append(results, r)
		b.Logf("%s: insert %.0f rows/s, copy %.1f s, %d bytes (%d parts, %d rows)", r.name, r.insertRowsPerSec, r.copySec, r.bytes, r.parts, r.decisionsRowCount)
	}

	// The table: one column per layout, its ratio to 18.16 in brackets.
	var out strings.Builder
	fmt.Fprintf(&out, "ClickHouse %s, %d records (+%d second versions), %s\n\n", version, n, (n+49)/50, time.Now().UTC().Format("2006-01-02"))
	out.WriteString("| |")
	for _, r := range results {
		out.WriteString(" " + r.name + " |")
	}
	out.WriteString("\n|---|" + strings.Repeat("---|", len(results)) + "\n")
	base := results[0]
	row := func(name string, v func(r result) float64, format string, higherBetter bool) {
		out.WriteString("| " + name + " |")
		for _, r := range results {
			ratio := v(base) / v(r)
			if higherBetter {
				ratio = v(r) / v(base)
			}
			fmt.Fprintf(&out, " "+format+" (%.2f×) |", v(r), ratio)
		}
		out.WriteString("\n")
	}
	row("insert, rows/s", func(r result) float64 { return r.insertRowsPerSec }, "%.0f", true)
	row("INSERT … SELECT of all rows, s", func(r result) float64 { return r.copySec }, "%.1f", false)
	row("decision_records on disk, MiB", func(r result) float64 { return float64(r.bytes) / (1 << 20) }, "%.1f", false)
	for _, q := range base.queryOrder {
		row(strings.ReplaceAll(q, "|", "/")+", ms", func(r result) float64 { return r.ms[q] }, "%.0f", false)
	}
	fmt.Fprintf(&out, "\nThe %d top-level times (one part each) as DateTime + Int64 ms (LZ4): %.1f MiB; as one DateTime64(3) each (LZ4): %.1f MiB (%.2f×); DateTime64(3) CODEC(Delta, ZSTD(1)): %.1f MiB (%.2f×)\n",
		dt64.n, mib(dt64.pair), mib(dt64.dt64), float64(dt64.pair)/float64(dt64.dt64), mib(dt64.dt64zstd), float64(dt64.pair)/float64(dt64.dt64zstd))
	if path := os.Getenv("AUDITLINE_LAYOUT_OUT"); path != "" {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Log("\n" + out.String())
}

// dashboardRead is one read of the dashboards.
type dashboardRead struct {
	name string
	run  func(ctx context.Context, c *query.ClickHouse) error
}

// dashboardReads are the dashboards' reads over one tenant's week (the
// default page) and over everything (30 days, every tenant).
func dashboardReads() []dashboardRead {
	week := query.Filter{Tenants: []string{"tenant-1"},
		From: time.Date(2025, 11, 10, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 11, 17, 0, 0, 0, 0, time.UTC)}
	all := query.Filter{Tenants: []string{query.AllTenants},
		From: time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 12, 3, 0, 0, 0, 0, time.UTC)}
	with := func(f query.Filter, set func(*query.Filter)) query.Filter { set(&f); return f }
	list := func(f query.Filter) func(ctx context.Context, c *query.ClickHouse) error {
		return func(ctx context.Context, c *query.ClickHouse) error {
			_, err := c.Records(ctx, f, query.Cursor{}, 50)
			return err
		}
	}
	return []dashboardRead{
		{"near-miss page, tenant week", func(ctx context.Context, c *query.ClickHouse) error { _, err := c.NearMiss(ctx, week); return err }},
		{"near-miss page, all 30 days", func(ctx context.Context, c *query.ClickHouse) error { _, err := c.NearMiss(ctx, all); return err }},
		{"sampling page, tenant week", func(ctx context.Context, c *query.ClickHouse) error { _, err := c.Sampling(ctx, week); return err }},
		{"list newest 50, tenant week", list(week)},
		{"list top cost, all 30 days", list(with(all, func(f *query.Filter) { f.Sort = query.SortCost }))},
		{"list blocked, all 30 days", list(with(all, func(f *query.Filter) { f.Category = query.Blocked }))},
		{"list model gpt-4o, tenant week", list(with(week, func(f *query.Filter) { f.Model = "gpt-4o" }))},
		{"search user id, all 30 days", list(with(all, func(f *query.Filter) { f.Search = "user-17" }))},
		{"search request key, all 30 days", list(with(all, func(f *query.Filter) { f.Search = "call-00123456" }))},
		{"options, tenant week", func(ctx context.Context, c *query.ClickHouse) error { _, err := c.Options(ctx, week); return err }},
		{"total, all 30 days", func(ctx context.Context, c *query.ClickHouse) error { _, err := c.Total(ctx, all); return err }},
		{"usage, all 30 days", func(ctx context.Context, c *query.ClickHouse) error { _, err := c.Usage(ctx, all); return err }},
		{"review stats, all 30 days", func(ctx context.Context, c *query.ClickHouse) error { _, err := c.ReviewStats(ctx, all); return err }},
		{"record page", func(ctx context.Context, c *query.ClickHouse) error {
			_, err := c.Record(ctx, all, store.BenchRecordID(42), 0)
			return err
		}},
	}
}

// median3 runs fn three times and returns the median time in ms.
func median3(b *testing.B, fn func() error) float64 {
	b.Helper()
	var ms []float64
	for range 3 {
		t0 := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
	}
	slices.Sort(ms)
	return ms[1]
}

func drain(ctx context.Context, conn driver.Conn, q string) error {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, q)
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

func selectStrings(ctx context.Context, conn driver.Conn, out *[]string, q string, args ...any) error {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		*out = append(*out, s)
	}
	return rows.Err()
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// dt64Bytes compares the two-column times (DateTime + Int64 ms) with one
// DateTime64(3) column each.
type dt64Bytes struct {
	n                    int
	pair, dt64, dt64zstd uint64
}

// timeColumnBytes measures the top-level time pairs of src's decision_records
// against the same times as DateTime64(3) in a table of the same sort order.
func timeColumnBytes(b *testing.B, ctx context.Context, conn driver.Conn, src string, cols []string) dt64Bytes {
	b.Helper()
	var r dt64Bytes
	var names []string
	for _, c := range cols {
		if !strings.Contains(c, ".") && slices.Contains(cols, c+"_ms") {
			names = append(names, c)
		}
	}
	r.n = len(names)
	sum := func(db, table string, cols []string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT sum(data_compressed_bytes) FROM system.columns WHERE database = ? AND table = ? AND has(?, name)",
			db, table, cols).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	for i, v := range []struct {
		typ  string
		pair bool
		out  *uint64
	}{{"DateTime('UTC')", true, &r.pair}, {"DateTime64(3, 'UTC')", false, &r.dt64}, {"DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))", false, &r.dt64zstd}} {
		var defs, sel, measured []string
		for _, c := range names {
			defs = append(defs, "`"+c+"` "+v.typ)
			measured = append(measured, c)
			if v.pair {
				defs = append(defs, "`"+c+"_ms` Int64")
				sel = append(sel, "`"+c+"`", "`"+c+"_ms`")
				measured = append(measured, c+"_ms")
			} else {
				sel = append(sel, "fromUnixTimestamp64Milli(`"+c+"_ms`, 'UTC')")
			}
		}
		t := fmt.Sprintf("`%s`.times%d", src, i)
		for _, q := range []string{
			"CREATE TABLE " + t + " (tenant String, record_id String, version UInt32, " + strings.Join(defs, ", ") +
				") ENGINE = MergeTree ORDER BY (tenant, start_time, record_id, version)",
			"INSERT INTO " + t + " SELECT tenant, record_id, version, " + strings.Join(sel, ", ") + " FROM `" + src + "`.`" + store.TableDecisions + "`",
			"OPTIMIZE TABLE " + t + " FINAL",
		} {
			if err := conn.Exec(ctx, q); err != nil {
				b.Fatalf("%v\n%s", err, q)
			}
		}
		*v.out = sum(src, fmt.Sprintf("times%d", i), measured)
	}
	return r
}
