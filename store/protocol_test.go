package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
)

// TestProtocols checks clickhouse-go's two protocols on each engine: the
// native one (what the store and the dashboards use) everywhere, and HTTP —
// which fails on 18.16 ("Unknown setting client_protocol_version"; DESIGN.md
// §6) and runs migrate, a batch INSERT with a deduplication token and the
// documented queries on 26.x. If HTTP starts working on 18.16 (a new
// clickhouse-go), this test says so and DESIGN.md §6 and docs/store.md need
// updating.
func TestProtocols(t *testing.T) { testenv.ForEachClickHouse(t, testProtocols) }

func testProtocols(t *testing.T) {
	e := testenv.ClickHouseEngine(t)
	if e.HTTP == "" {
		t.Fatalf("%s_HTTP is not set: deploy/local/start.sh writes it to .data/env", e.Var)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Protocol: clickhouse.HTTP, Addr: []string{e.HTTP}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := Detect(ctx, conn)
	if e.Major() < 20 {
		if err == nil || !strings.Contains(err.Error(), "client_protocol_version") {
			t.Fatalf("HTTP on ClickHouse %s: got version %v, err %v; want the known failure (Unknown setting client_protocol_version)", e.Version, srv, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("HTTP on ClickHouse %s: %v", e.Version, err)
	}
	db := testenv.Name(t)
	defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+quote(db)) }()
	if _, err := Migrate(ctx, conn, db, srv, quietLog()); err != nil {
		t.Fatalf("migrate over HTTP: %v", err)
	}
	rows := newDecisionRows()
	for i := range 2000 {
		if err := rows.add(&kgo.Record{Topic: "gen", Partition: 0, Offset: int64(i), Value: mustJSON(t, genDecision(i))}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // the second is dropped: same token
		t0 := time.Now()
		if err := insert(ctx, conn, db, TableDecisions, rows.columns(), rows.values(), "http-test"); err != nil {
			t.Fatalf("insert over HTTP: %v", err)
		}
		t.Logf("INSERT of 2,000 decisions over HTTP: %s", time.Since(t0).Round(time.Millisecond))
	}
	for table, want := range map[string]uint64{TableDecisions: 2000, TableVersions: 2000, TableProgress: 1} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+quote(db)+"."+quote(table)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s has %d rows after two INSERTs with one token over HTTP, want %d", table, n, want)
		}
	}
	got := readDecisions(t, conn, "SELECT * FROM "+quote(db)+"."+ViewLatest+" WHERE record_id IN ('"+genDecision(7).RecordID+"')")
	if len(got) != 1 {
		t.Fatalf("read back %d records over HTTP, want 1", len(got))
	}
}
