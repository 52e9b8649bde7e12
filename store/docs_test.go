package store

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/raw"
)

// docQueries returns the ```sql blocks of docs/sql.md.
func docQueries(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/sql.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	if len(out) < 10 {
		t.Fatalf("docs/sql.md has %d sql blocks; the parser is broken or the examples are gone", len(out))
	}
	return out
}

// loadDocsData loads synthetic traffic that every documented query finds
// rows in: every step-th record of the 30-day generator (plus record 42, the
// drill-down example), a second version of some (a quarter of them moved to
// another tenant), the raw event record 42 points to, and one reject.
func loadDocsData(t testing.TB, conn driver.Conn, db string, step int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rows := newDecisionRows()
	flush := func() {
		if err := insert(ctx, conn, db, TableDecisions, rows.columns(), rows.values(), ""); err != nil {
			t.Fatal(err)
		}
		rows.reset()
	}
	add := func(i int, off int64) {
		d := genDecision(i)
		if err := rows.add(&kgo.Record{Topic: "gen", Partition: int32(i % 4), Offset: off, Value: mustJSON(t, d)}); err != nil {
			t.Fatal(err)
		}
	}
	add(42, 42)
	for i := 0; i < 1_000_000; i += step {
		add(i, int64(i))
		if rows.len() >= 50_000 {
			flush()
		}
	}
	flush()
	for i := 0; i < 1_000_000; i += 50 * step {
		d := genDecision(i)
		d.Version, d.Completeness, d.Risk.ReviewStatus = 2, "amended", "approve"
		if i%(200*step) == 0 {
			d.Identity.Tenant = "moved"
		}
		if err := rows.add(&kgo.Record{Topic: "gen", Partition: int32(i % 4), Offset: 2_000_000 + int64(i), Value: mustJSON(t, d)}); err != nil {
			t.Fatal(err)
		}
	}
	flush()
	loadDocsExtras(ctx, t, conn, db)
}

// loadDocsExtras adds what the documented queries need besides decisions:
// the raw event record 42 points to, a gateway_config, and one reject.
func loadDocsExtras(ctx context.Context, t testing.TB, conn driver.Conn, db string) {
	t.Helper()
	d := genDecision(42)
	src := d.Evidence.Sources[0]
	raws := newRawRows(0, nil)
	_ = raws.add(&kgo.Record{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset, Key: []byte(d.Request.RequestKey),
		Value: []byte(`{"id":"call-00000042"}`), Timestamp: time.UnixMilli(int64(src.ReceivedAt))})
	// The gateway_config the generated records' emitter announced (seq 1).
	_ = raws.add(&kgo.Record{Topic: "auditline.raw.admin", Partition: 0, Offset: 0, Key: []byte("proxy-w0"),
		Headers: []kgo.RecordHeader{{Key: raw.HeaderSource, Value: []byte(raw.SourceGatewayConfig)}, {Key: raw.HeaderEventID, Value: []byte("gateway_config:proxy-w0/1")}},
		Value: []byte(`{"schema": "auditline.gateway_config.v1", "event_id": "proxy-w0/1", "emitter": "proxy-w0", "seq": 1, "occurred_at": "2025-11-01T00:00:00.000Z", "reason": "start", ` +
			`"config_hash": "sha256:` + strings.Repeat("0", 63) + `7", "litellm_version": "1.106.2", "config": {"litellm_version": "1.106.2"}}`),
		Timestamp: time.UnixMilli(int64(genEpoch))})
	if err := insert(ctx, conn, db, TableRawEvents, raws.columns(), raws.values(), ""); err != nil {
		t.Fatal(err)
	}
	var rej rejectRows
	rej.addReject(&kgo.Record{Topic: "gen", Partition: 0, Offset: 7, Key: []byte("bad"), Value: []byte("{"), Timestamp: time.UnixMilli(int64(genEpoch))},
		ErrInvalid)
	if err := insert(ctx, conn, db, TableRejected, rej.columns(), rej.values(), ""); err != nil {
		t.Fatal(err)
	}
}

// dbConn opens a connection whose default database is db, as an analyst's
// clickhouse-client --database would.
func dbConn(t testing.TB, db string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{testenv.ClickHouse(t)}, Auth: clickhouse.Auth{Database: db, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestDocsSQL runs every SQL block of docs/sql.md and requires each to
// return at least one row.
func TestDocsSQL(t *testing.T) { testenv.ForEachClickHouse(t, testDocsSQL) }

func testDocsSQL(t *testing.T) {
	conn, db, _ := testDB(t)
	loadDocsData(t, conn, db, 50)
	checkDocsSQL(t, db)
}

// checkDocsSQL runs every SQL block of docs/sql.md on db (loaded by
// loadDocsData) and requires each to return at least one row.
func checkDocsSQL(t *testing.T, db string) {
	q := dbConn(t, db)
	for i, sql := range docQueries(t) {
		first, _, _ := strings.Cut(sql, "\n")
		t.Run(strings.TrimSpace(first), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rows, err := q.Query(ctx, sql)
			if err != nil {
				t.Fatalf("query %d failed: %v\n%s", i+1, err, sql)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("query %d: %v", i+1, err)
			}
			if n == 0 {
				t.Errorf("query %d returned no rows:\n%s", i+1, sql)
			}
		})
	}
}

// TestViewsAgree checks each aggregate view against the same figure computed
// from decision_records with the latest-version guard.
func TestViewsAgree(t *testing.T) { testenv.ForEachClickHouse(t, testViewsAgree) }

func testViewsAgree(t *testing.T) {
	conn, db, _ := testDB(t)
	loadDocsData(t, conn, db, 200)
	q := dbConn(t, db)
	const guard = " AND (record_id, version) NOT IN (SELECT record_id, superseded FROM " + TableSuperseded + ")"
	for _, tc := range []struct{ name, view, table string }{
		{"latest", "SELECT toFloat64(count()) FROM " + ViewLatest,
			"SELECT toFloat64(uniqExact(record_id)) FROM " + TableDecisions},
		{"moved records count once, in their new tenant", "SELECT toFloat64(count()) FROM " + ViewLatest + " WHERE tenant = 'moved'",
			"SELECT toFloat64(count()) FROM " + TableDecisions + " WHERE tenant = 'moved'"},
		{"near misses", "SELECT toFloat64(sum(records)) FROM " + ViewNearMissesDaily + " WHERE tenant = 'tenant-1'",
			"SELECT toFloat64(count()) FROM " + TableDecisions + " FINAL ARRAY JOIN near_miss_reasons WHERE tenant = 'tenant-1' AND near_miss = 1" + guard},
		{"fallbacks", "SELECT toFloat64(sum(fallbacks)) FROM " + ViewRoutingDaily,
			"SELECT toFloat64(countIf(fallback_used = 1)) FROM " + TableDecisions + " FINAL WHERE 1" + guard},
		{"attempts", "SELECT toFloat64(sum(attempts)) FROM " + ViewProviderAttemptsDaily,
			"SELECT toFloat64(sum(length(attempts.event_id))) FROM " + TableDecisions + " FINAL WHERE 1" + guard},
		{"guardrails", "SELECT toFloat64(sum(runs)) FROM " + ViewGuardrailOutcomesDaily,
			"SELECT toFloat64(sum(length(guardrails.name))) FROM " + TableDecisions + " FINAL WHERE 1" + guard},
		{"spend", "SELECT round(sum(cost_usd), 6) FROM " + ViewSpendDaily,
			"SELECT round(sum(cost_usd), 6) FROM " + TableDecisions + " FINAL WHERE 1" + guard},
		{"sampled", "SELECT toFloat64(count()) FROM " + ViewSampleQueue,
			"SELECT toFloat64(countIf(sampled = 1)) FROM " + TableDecisions + " FINAL WHERE 1" + guard},
		{"reviewed", "SELECT toFloat64(countIf(review_status != 'pending')) FROM " + ViewSampleQueue,
			"SELECT toFloat64(countIf(sampled = 1 AND review_status != '')) FROM " + TableDecisions + " FINAL WHERE 1" + guard},
		{"team budgets", "SELECT toFloat64(count()) FROM " + ViewBudgetProximity + " WHERE entity_type = 'team'",
			"SELECT toFloat64(uniqExact(tenant, team_id)) FROM " + TableDecisions + " FINAL WHERE budget_team_max_budget IS NOT NULL" + guard},
	} {
		var v, w float64
		if err := q.QueryRow(context.Background(), tc.view).Scan(&v); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := q.QueryRow(context.Background(), tc.table).Scan(&w); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v != w || v == 0 {
			t.Errorf("%s: view says %v, table says %v", tc.name, v, w)
		}
	}
}
