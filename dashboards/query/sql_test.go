package query

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/deploy/testenv"
)

// recorder is a driver.Conn that records every query and answers none.
type recorder struct {
	driver.Conn // nil: any other method panics
	mu          sync.Mutex
	sql         []string
}

var errRecorded = errors.New("recorded, not run")

func (r *recorder) Query(_ context.Context, q string, _ ...any) (driver.Rows, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sql = append(r.sql, q)
	return nil, errRecorded
}

// TestSubqueriesNamed: every query the dashboards send names the subqueries
// it reads FROM or JOINs. ClickHouse 20.x and later refuse an unnamed
// subquery in a JOIN (code 206, joined_subquery_requires_alias); before the
// aliases were added every near-miss, sampling and list query failed on
// 26.9 while 18.16 accepted them. The queries themselves run on both engines
// in TestClickHouseQueries.
func TestSubqueriesNamed(t *testing.T) {
	rec := &recorder{}
	c := &ClickHouse{conn: rec, db: "db", tbl: DefaultTable, table: "`db`.`" + DefaultTable + "`", timeout: time.Second, maxGroups: defaultMaxGroups,
		tables: map[string]bool{rawEventsTable: true}}
	ctx := context.Background()
	f := Filter{Tenants: []string{"acme"}, From: time.Unix(1e9, 0), To: time.Unix(1e9+86400, 0), Reason: "pii"}
	_, _ = c.NearMiss(ctx, f)
	_, _ = c.Sampling(ctx, f)
	_, _ = c.Records(ctx, f, Cursor{}, 10)
	_, _ = c.Records(ctx, Filter{Tenants: []string{AllTenants}}, Cursor{Start: time.Unix(1e9, 0), RecordID: "r"}, 10)
	if len(rec.sql) < 5 {
		t.Fatalf("recorded %d queries, want at least 5", len(rec.sql))
	}
	for _, q := range rec.sql {
		if bad := testenv.UnnamedSubqueries(q); len(bad) > 0 {
			t.Errorf("subqueries without an alias %q in:\n%s", bad, q)
		}
	}
}
