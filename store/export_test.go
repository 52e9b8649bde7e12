package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
)

// Hooks for the layout benchmark (layout_bench_test.go, package store_test,
// which also runs the dashboards' queries and so cannot be in package store).

// BenchLayout is one candidate layout of decision_records.
type BenchLayout struct {
	Name string
	l    layout
}

// BenchLayouts are the candidates: the 18.16 layout, each modern feature
// alone, and all of them.
func BenchLayouts() []BenchLayout {
	return []BenchLayout{
		{"18.16", layout{}},
		{"lowcard", layout{lowCard: true}},
		{"zstd", layout{codecs: true}},
		{"lowcard+zstd", layout{lowCard: true, codecs: true}},
		{"bloom", layout{indexes: true}},
		{"all", layout{lowCard: true, codecs: true, indexes: true}},
	}
}

// MigrateLayout creates database db with decision_records in layout bl.
func MigrateLayout(ctx context.Context, conn driver.Conn, db string, srv Server, bl BenchLayout) error {
	_, err := schema{db: db, srv: srv, variant: &bl.l}.migrate(ctx, conn, quietLog())
	return err
}

// DocQueries are the SQL blocks of docs/sql.md.
func DocQueries(t testing.TB) []string { return docQueries(t) }

// Insert is the store's INSERT.
func Insert(ctx context.Context, conn driver.Conn, db, table string, cols []string, values []any, token string) error {
	return insert(ctx, conn, db, table, cols, values, token)
}

// BenchRows are the columns and values of n generated records from first
// (realisticDecision), as one INSERT's worth.
func BenchRows(tb testing.TB, first, n int) ([]string, []any) {
	rows := newDecisionRows()
	for i := first; i < first+n; i++ {
		if err := rows.add(&kgo.Record{Topic: "gen", Partition: int32(i % 4), Offset: int64(i), Value: mustJSON(tb, realisticDecision(i))}); err != nil {
			tb.Fatal(err)
		}
	}
	return rows.columns(), rows.values()
}

// LoadLayoutSource loads n generated records (realisticDecision), 2 % of
// them with a second version (a quarter of those moved to another tenant),
// into db's decision_records with the store's INSERT, plus what
// loadDocsData adds for the documented queries (record 42's raw event, the
// gateway_config, a reject).
func LoadLayoutSource(tb testing.TB, conn driver.Conn, db string, n int) {
	tb.Helper()
	ctx := context.Background()
	rows := newDecisionRows()
	flush := func() {
		if err := insert(ctx, conn, db, TableDecisions, rows.columns(), rows.values(), ""); err != nil {
			tb.Fatal(err)
		}
		rows.reset()
	}
	add := func(d record.Decision, i int, off int64) {
		if err := rows.add(&kgo.Record{Topic: "gen", Partition: int32(i % 4), Offset: off, Value: mustJSON(tb, d)}); err != nil {
			tb.Fatal(err)
		}
		if rows.len() >= 50_000 {
			flush()
		}
	}
	base := min(n, copyBase)
	for i := range base {
		add(realisticDecision(i), i, int64(i))
	}
	for i := 0; i < base; i += 50 {
		d := realisticDecision(i)
		d.Version, d.Completeness, d.Risk.ReviewStatus = 2, "amended", "approve"
		if i%200 == 0 {
			d.Identity.Tenant = "moved"
		}
		add(d, i, 2_000_000+int64(i))
	}
	flush()
	loadDocsExtras(ctx, tb, conn, db) // record 42 is among the n
	// More than copyBase: copies of the generated records made by the
	// server (the client's JSON path is slow on a busy 2-core box), each
	// with its own ids, offsets and hashes. (The filter is in a subquery:
	// an alias of the SELECT, kafka_offset here, would replace the column
	// in its WHERE.)
	for k := 1; k*base < n; k++ {
		hash := func(col string) string {
			return fmt.Sprintf("lower(hex(SHA256(concat(%s, '/%d'))))", col, k)
		}
		id := func(col string) string { return fmt.Sprintf("concat(%s, '-%d')", col, k) }
		q := fmt.Sprintf("INSERT INTO %s SELECT * REPLACE (%s AS record_id, %s AS request_key, %s AS trace_id, %s AS call_id, "+
			"kafka_offset + %d AS kafka_offset, %s AS messages_sha256, %s AS response_sha256, "+
			"arrayMap(x -> %s, `sources.sha256`) AS `sources.sha256`, arrayMap(x -> %s, `sources.event_id`) AS `sources.event_id`, "+
			"arrayMap(x -> %s, `attempts.event_id`) AS `attempts.event_id`) FROM (SELECT * FROM %s WHERE kafka_offset < %d AND kafka_topic = 'gen' LIMIT %d) AS _g",
			quote(db)+"."+TableDecisions, id("record_id"), id("request_key"), id("trace_id"), id("call_id"),
			k*10_000_000, hash("messages_sha256"), hash("response_sha256"), hash("x"), id("x"), id("x"),
			quote(db)+"."+TableDecisions, 10_000_000, n-k*base+base/50)
		if err := conn.Exec(ctx, q); err != nil {
			tb.Fatalf("%v\n%s", err, q)
		}
	}
}

// copyBase is how many records LoadLayoutSource generates in Go.
const copyBase = 100_000

// BenchRecordID is the record id of generated record i.
func BenchRecordID(i int) string { return string(genDecision(i).RecordID) }

// realisticDecision is genDecision(i) with hashes that look like hashes
// (SHA-256 hex, incompressible) instead of the generator's zero-padded
// counters, so that the bytes on disk are those of real traffic.
func realisticDecision(i int) record.Decision {
	d := genDecision(i)
	h := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	d.Identity.KeyHash = h(d.Identity.KeyAlias)
	d.Content.MessagesSHA256 = h(fmt.Sprint("m", i))
	d.Content.ResponseSHA256 = h(fmt.Sprint("r", i))
	for j := range d.Evidence.Sources {
		d.Evidence.Sources[j].SHA256 = h(fmt.Sprint("s", i, j))
	}
	return d
}
