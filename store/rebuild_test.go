package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
)

// legacyLayout turns db's decision_records into a table of layout 1 (sorted
// without the version, as tables created before the layout record were)
// and marks the recorded layout as not current.
func legacyLayout(t *testing.T, conn driver.Conn, db string, srv Server) {
	t.Helper()
	ctx := context.Background()
	s := schema{db: db, srv: srv}
	mvs, create := s.decisionViews()
	for _, mv := range mvs {
		if err := conn.Exec(ctx, "DROP TABLE "+mv); err != nil {
			t.Fatal(err)
		}
	}
	ddl := s.decisionRecordsDDL()
	if !strings.Contains(ddl, "ORDER BY ("+decisionOrderBy+")") {
		t.Fatal("decisionOrderBy not found in the DDL")
	}
	ddl = strings.Replace(ddl, "ORDER BY ("+decisionOrderBy+")", "ORDER BY (tenant, start_time, record_id)", 1)
	for _, q := range append([]string{"DROP TABLE " + s.t(TableDecisions), ddl}, create...) {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// A newer row wins (argMax by applied_at): the recorded layout is now layout 1.
	time.Sleep(1100 * time.Millisecond)
	if err := insert(ctx, conn, db, TableMigrations, []string{"version", "name", "checksum"},
		[]any{[]uint32{0}, []string{layoutRecord}, []string{"layout 1"}}, ""); err != nil {
		t.Fatal(err)
	}
}

// TestRebuildLayout upgrades a live decision_records of layout 1 — whose
// merges dropped older versions — to the current layout, and checks that
// nothing is lost: every row and version, the materialized views' tables,
// the views, and the materialized views fire on the new table. Then every
// version survives OPTIMIZE FINAL. A store writing meanwhile makes migrate
// refuse, changing nothing.
func TestRebuildLayout(t *testing.T) { testenv.ForEachClickHouse(t, testRebuildLayout) }

func testRebuildLayout(t *testing.T) {
	conn, db, srv := testDB(t)
	ctx := context.Background()
	q := func(s string) string { return strings.ReplaceAll(s, "{db}", quote(db)) }
	legacyLayout(t, conn, db, srv)
	loadDocsData(t, conn, db, 500) // 2,000 records, some with a version 2 (a few moved)
	snapshot := func() [6]uint64 {
		t.Helper()
		return [6]uint64{
			count(t, conn, q("SELECT count() FROM {db}."+TableDecisions)),
			count(t, conn, q("SELECT uniqExact(record_id, version, kafka_offset) FROM {db}."+TableDecisions)),
			count(t, conn, q("SELECT count() FROM {db}."+TableVersions)),
			count(t, conn, q("SELECT count() FROM {db}."+TableSuperseded)),
			count(t, conn, q("SELECT count() FROM {db}."+TableProgress)),
			count(t, conn, q("SELECT count() FROM {db}."+ViewLatest)),
		}
	}
	before := snapshot()
	if before[0] <= before[5] {
		t.Fatalf("no amended records in the data: %v", before)
	}

	// A store wrote in the last minute: refused, nothing changed.
	if err := insert(ctx, conn, db, TableProgress, []string{"topic", "partition", "min_offset", "max_offset", "rows", "inserted_at"},
		[]any{[]string{"busy"}, []int32{9}, []int64{1}, []int64{1}, []uint64{1}, []time.Time{time.Now()}}, ""); err != nil {
		t.Fatal(err)
	}
	_, err := Migrate(ctx, conn, db, srv, quietLog())
	if err == nil || !strings.Contains(err.Error(), "stop every `auditline store`") {
		t.Fatalf("migrate while a store writes: %v", err)
	}
	if got := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions)); got != before[0] {
		t.Fatalf("a refused rebuild changed decision_records: %d rows, had %d", got, before[0])
	}
	// The store stopped a while ago.
	if err := conn.Exec(ctx, q("TRUNCATE TABLE {db}."+TableProgress)); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, conn, db, TableProgress, []string{"topic", "partition", "min_offset", "max_offset", "rows", "inserted_at"},
		[]any{[]string{"gen", "gen"}, []int32{0, 1}, []int64{0, 1}, []int64{999_996, 999_997}, []uint64{1, 1},
			[]time.Time{time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)}}, ""); err != nil {
		t.Fatal(err)
	}
	before[4] = 2

	done, err := Migrate(ctx, conn, db, srv, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if len(done) == 0 || !strings.HasPrefix(done[0], "rebuild decision_records") {
		t.Fatalf("migrate of a layout-1 table did %v", done)
	}
	if after := snapshot(); after != before {
		t.Fatalf("rebuild changed [rows, versions, decision_versions, decision_superseded, store_progress, latest] from %v to %v", before, after)
	}
	tables, err := existingTables(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if tables[TableDecisions+oldSuffix] || tables[TableDecisions+rebuildSuffix] {
		t.Fatalf("rebuild left tables behind: %v", tables)
	}
	if done, err := Migrate(ctx, conn, db, srv, quietLog()); err != nil || len(done) != 0 {
		t.Fatalf("second migrate = %v, %v; want nothing", done, err)
	}

	// The materialized views fire on the new table.
	rows := newDecisionRows()
	for i := range 10 {
		d := genDecision(2_000_000 + i)
		if err := rows.add(&kgo.Record{Topic: "gen", Partition: 3, Offset: 5_000_000 + int64(i), Value: mustJSON(t, d)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := insert(ctx, conn, db, TableDecisions, rows.columns(), rows.values(), ""); err != nil {
		t.Fatal(err)
	}
	if got := count(t, conn, q("SELECT count() FROM {db}."+TableVersions+" WHERE kafka_offset >= 5000000")); got != 10 {
		t.Fatalf("decision_versions got %d of 10 rows inserted after the rebuild", got)
	}
	if last, ok, err := progress(ctx, conn, db, "gen", 3); err != nil || !ok || last != 5_000_009 {
		t.Fatalf("store_progress after the rebuild: %d %v %v", last, ok, err)
	}

	// Every version survives a merge now.
	testenv.OptimizeFinal(t, conn, db, TableDecisions)
	if got := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions)); got != before[0]+10 {
		t.Fatalf("after OPTIMIZE FINAL: %d rows, want every version: %d", got, before[0]+10)
	}
	if got := count(t, conn, q("SELECT count() FROM {db}."+ViewLatest)); got != before[5]+10 {
		t.Fatalf("after OPTIMIZE FINAL the latest view has %d rows, want %d", got, before[5]+10)
	}
}

// TestRecordAppliedSameSecond: two rows of one name recorded within one
// second (applied_at has whole seconds) read back as the later one, every
// time — the tie that once made a second migrate rebuild again.
func TestRecordAppliedSameSecond(t *testing.T) {
	testenv.ForEachClickHouse(t, testRecordAppliedSameSecond)
}

func testRecordAppliedSameSecond(t *testing.T) {
	conn, db, srv := testDB(t)
	ctx := context.Background()
	s := schema{db: db, srv: srv}
	for i := range 5 {
		want := fmt.Sprintf("checksum %d", i)
		if err := s.recordApplied(ctx, conn, 0, "same second", want); err != nil {
			t.Fatal(err)
		}
		applied, err := appliedMigrations(ctx, conn, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := applied["same second"]; got != want {
			t.Fatalf("after recording %q: read back %q", want, got)
		}
	}
}
