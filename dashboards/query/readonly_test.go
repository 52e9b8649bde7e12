package query_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/internal/stacktest/binary"
)

func TestReadOnlyUser(t *testing.T) { testenv.ForEachClickHouse(t, testReadOnlyUser) }

// testReadOnlyUser: the ClickHouse that deploy/local/start.sh runs (the
// demo's) has the dashboards' user dashboard_ro, which can run every
// dashboard read (and set max_execution_time) but cannot write.
func testReadOnlyUser(t *testing.T) {
	p := testenv.StartPrivateClickHouse(t)
	ctx := context.Background()
	db := testenv.Name(t)
	conn := seedtest.Schema(t, p.Addr, db)
	end := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	if err := seed.Insert(ctx, conn, db, query.DefaultTable, seed.Generate(50, seed.Options{End: end, Span: 24 * time.Hour, Seed: 5})); err != nil {
		t.Fatal(err)
	}
	ro, err := query.Open(query.Config{Addr: []string{p.Addr}, Database: db, Username: "dashboard_ro", Table: query.DefaultTable, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	f := query.Filter{Tenants: []string{query.AllTenants}, From: end.Add(-48 * time.Hour), To: end.Add(time.Hour)}
	if err := ro.Ping(ctx); err != nil {
		t.Fatalf("dashboard_ro: ping: %v", err)
	}
	if n, err := ro.Total(ctx, f); err != nil || n != 50 {
		t.Fatalf("dashboard_ro reads %d records: %v", n, err)
	}
	if _, err := ro.NearMiss(ctx, f); err != nil {
		t.Fatalf("dashboard_ro: near-miss page: %v", err)
	}
	w, err := clickhouse.Open(&clickhouse.Options{Addr: []string{p.Addr}, Auth: clickhouse.Auth{Database: db, Username: "dashboard_ro"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	err = w.Exec(ctx, "INSERT INTO `"+db+"`.`"+query.DefaultTable+"` (record_id) VALUES ('x')")
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "readonly") {
		t.Fatalf("dashboard_ro could write (or failed otherwise): %v", err)
	}
}

// TestDemoReadsAsReadOnlyUser: the demo (scripts/demo.sh, the README's first
// command) gives the dashboard the read-only ClickHouse user, not the
// store's (issue 18).
func TestDemoReadsAsReadOnlyUser(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(binary.RepoRoot(), "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	_, dash, ok := strings.Cut(string(b), "\ndashboard:\n")
	if !ok {
		t.Fatal("scripts/demo.sh writes no dashboard section")
	}
	dash, _, _ = strings.Cut(dash, "\nYAML")
	if !regexp.MustCompile(`(?m)^\s+clickhouse: \{username: dashboard_ro\}`).MatchString(dash) {
		t.Errorf("the demo's dashboard does not read as dashboard_ro:\n%s", dash)
	}
}
