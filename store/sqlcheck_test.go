package store

import (
	"testing"

	"github.com/auditline/auditline/deploy/testenv"
)

// TestSubqueriesNamed: the documented queries, the views and every DDL
// statement name the subqueries they read FROM or JOIN (ClickHouse 20.x+
// refuses an unnamed subquery in a JOIN; 18.16 accepts it).
func TestSubqueriesNamed(t *testing.T) {
	stmts := docQueries(t)
	for _, srv := range []Server{Oldest, {26, 9}} {
		stmts = append(stmts, Plan("db", srv)...)
	}
	for _, q := range stmts {
		if bad := testenv.UnnamedSubqueries(q); len(bad) > 0 {
			t.Errorf("subqueries without an alias %q in:\n%s", bad, q)
		}
	}
}
