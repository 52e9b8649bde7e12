// Package seedtest gives a test its own database with the decision schema on
// a ClickHouse server, for tests that seed records with package seed (the
// dashboards' query, browser and access tests, the Grafana panel test).
package seedtest

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/dashboards/seed"
)

// Schema creates database db with the schema on the ClickHouse at addr and
// returns a connection to it; the database is dropped and the connection
// closed when the test ends.
func Schema(t testing.TB, addr, db string) driver.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := seed.Open(ctx, addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seed.Drop(context.Background(), conn, db); conn.Close() })
	if err := seed.CreateSchema(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	return conn
}
