package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/deploy/testenv"
)

// testDB opens the shared ClickHouse and migrates a fresh database, dropped
// when the test ends.
func testDB(t testing.TB) (driver.Conn, string, Server) {
	t.Helper()
	return testDBAt(t, testenv.ClickHouse(t))
}

func testDBAt(t testing.TB, addr string) (driver.Conn, string, Server) {
	t.Helper()
	return testDBLayout(t, addr, nil)
}

// testDBLayout is testDBAt with decision_records in layout l (nil: the one
// migrate picks for the server).
func testDBLayout(t testing.TB, addr string, l *layout) (driver.Conn, string, Server) {
	t.Helper()
	conn, err := Open(ClickHouseConfig{Addr: []string{addr}, Username: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Detect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.Name(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quote(db))
		conn.Close()
	})
	if _, err := (schema{db: db, srv: srv, variant: l}).migrate(ctx, conn, quietLog()); err != nil {
		t.Fatal(err)
	}
	return conn, db, srv
}

func TestMigrateIdempotent(t *testing.T) { testenv.ForEachClickHouse(t, testMigrateIdempotent) }

func testMigrateIdempotent(t *testing.T) {
	conn, db, srv := testDB(t)
	ctx := context.Background()

	done, err := Migrate(ctx, conn, db, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 0 {
		t.Fatalf("second migrate did %v, want nothing", done)
	}
	tables, err := existingTables(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{TableDecisions, TableRawEvents, TableRejected, TableProgress, TableVersions, TableSuperseded, TableMigrations}
	for _, v := range Views() {
		want = append(want, v.Name)
	}
	for _, w := range want {
		if !tables[w] {
			t.Errorf("table %s missing after migrate", w)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+quote(db)+"."+TableMigrations+" WHERE version > 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if int(n) != len(Migrations(db, srv)) {
		t.Errorf("schema_migrations has %d versioned rows, want %d", n, len(Migrations(db, srv)))
	}

	// A column record.Decision gained since the table was created (simulated
	// by dropping two, one of them inside a Nested group) is added back, in
	// place, and the views are re-created.
	for _, c := range []string{"risk_tier", "attempts.cache_hit"} {
		if err := conn.Exec(ctx, "ALTER TABLE "+quote(db)+"."+TableDecisions+" DROP COLUMN "+quote(c)); err != nil {
			t.Fatal(err)
		}
	}
	done, err = Migrate(ctx, conn, db, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(done, "add column risk_tier") || !slices.Contains(done, "add column attempts.cache_hit") {
		t.Fatalf("migrate after dropping columns did %v", done)
	}
	cols, err := tableColumns(ctx, conn, db, TableDecisions)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range decisionColumns() {
		if want := layoutFor(srv).colType(c.Column); normType(cols[c.Name]) != want {
			t.Errorf("column %s is %q, want %q", c.Name, cols[c.Name], want)
		}
	}
	if done, err := Migrate(ctx, conn, db, srv, nil); err != nil || len(done) != 0 {
		t.Fatalf("third migrate = %v, %v; want nothing", done, err)
	}

	// A column whose type changed is refused, never rewritten.
	if err := conn.Exec(ctx, "ALTER TABLE "+quote(db)+"."+TableDecisions+" MODIFY COLUMN `sample_rate` Float32"); err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(ctx, conn, db, srv, nil); err == nil || !strings.Contains(err.Error(), "sample_rate is Float32") {
		t.Fatalf("migrate with a changed type: %v", err)
	}
}
