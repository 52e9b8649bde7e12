package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
)

// TestUpgradeLayout upgrades a database written in the 18.16 layout (what
// every database created before the modern layout has) to the layout migrate
// picks for the server, the way an operator does: the store stopped, then
// auditline migrate. The rebuild is killed twice — after the copy, and
// after the swap before the materialized views exist again — and the next
// migrate finishes it. Nothing is lost: every row of every version reads
// back field for field, the materialized views' tables and the views agree,
// every docs/sql.md query answers, and the materialized views fire on the
// new table. On a server whose layout is the 18.16 one, migrate does nothing.
func TestUpgradeLayout(t *testing.T) { testenv.ForEachClickHouse(t, testUpgradeLayout) }

func testUpgradeLayout(t *testing.T) {
	conn, db, srv := testDBLayout(t, testenv.ClickHouse(t), &layout{})
	ctx := context.Background()
	q := func(s string) string { return strings.ReplaceAll(s, "{db}", quote(db)) }
	loadDocsData(t, conn, db, 50) // 20,000 records, 2 % with a second version
	// The store stopped an hour ago.
	if err := conn.Exec(ctx, q("TRUNCATE TABLE {db}."+TableProgress)); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, conn, db, TableProgress, []string{"topic", "partition", "min_offset", "max_offset", "rows", "inserted_at"},
		[]any{[]string{"gen"}, []int32{0}, []int64{0}, []int64{2_999_999}, []uint64{1}, []time.Time{time.Now().Add(-time.Hour)}}, ""); err != nil {
		t.Fatal(err)
	}
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
	records := readDecisions(t, conn, q("SELECT * FROM {db}."+TableDecisions))

	want := layoutFor(srv)
	if want == (layout{}) {
		if done, err := Migrate(ctx, conn, db, srv, quietLog()); err != nil || len(done) != 0 {
			t.Fatalf("migrate on %s = %v, %v; want nothing (its layout is the 18.16 one)", srv, done, err)
		}
		return
	}

	errKilled := errors.New("killed")
	defer func() { rebuildInterrupt = func(string) error { return nil } }()
	for _, step := range []string{"copied", "swapped"} {
		rebuildInterrupt = func(at string) error {
			if at == step {
				return errKilled
			}
			return nil
		}
		if _, err := Migrate(ctx, conn, db, srv, quietLog()); !errors.Is(err, errKilled) {
			t.Fatalf("migrate killed when %s: %v", step, err)
		}
	}
	tables, err := existingTables(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if !tables[TableDecisions+oldSuffix] {
		t.Fatalf("a rebuild killed after the swap left no %s%s: %v", TableDecisions, oldSuffix, tables)
	}
	rebuildInterrupt = func(string) error { return nil }
	done, err := Migrate(ctx, conn, db, srv, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if len(done) == 0 || !strings.HasPrefix(done[0], "rebuild decision_records") {
		t.Fatalf("migrate after a killed rebuild did %v", done)
	}
	if after := snapshot(); after != before {
		t.Fatalf("upgrade changed [rows, versions, decision_versions, decision_superseded, store_progress, latest] from %v to %v", before, after)
	}
	got := readDecisions(t, conn, q("SELECT * FROM {db}."+TableDecisions))
	if len(got) != len(records) {
		t.Fatalf("%d record versions after the upgrade, %d before", len(got), len(records))
	}
	for k, d := range records {
		diffDecisions(t, d, got[k])
	}
	have, err := tableColumns(ctx, conn, db, TableDecisions)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range decisionColumns() {
		if normType(have[c.Name]) != want.colType(c.Column) {
			t.Errorf("after the upgrade %s is %s, want %s", c.Name, have[c.Name], want.colType(c.Column))
		}
	}
	tables, err = existingTables(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if tables[TableDecisions+oldSuffix] || tables[TableDecisions+rebuildSuffix] {
		t.Fatalf("the upgrade left tables behind: %v", tables)
	}
	if done, err := Migrate(ctx, conn, db, srv, quietLog()); err != nil || len(done) != 0 {
		t.Fatalf("second migrate = %v, %v; want nothing", done, err)
	}
	checkDocsSQL(t, db)

	// The materialized views fire on the new table.
	rows := newDecisionRows()
	for i := range 10 {
		if err := rows.add(&kgo.Record{Topic: "gen", Partition: 3, Offset: 5_000_000 + int64(i), Value: mustJSON(t, genDecision(2_000_000+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := insert(ctx, conn, db, TableDecisions, rows.columns(), rows.values(), ""); err != nil {
		t.Fatal(err)
	}
	if got := count(t, conn, q("SELECT count() FROM {db}."+TableVersions+" WHERE kafka_offset >= 5000000")); got != 10 {
		t.Fatalf("decision_versions got %d of 10 rows inserted after the upgrade", got)
	}
}
