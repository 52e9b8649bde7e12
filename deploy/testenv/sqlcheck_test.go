package testenv

import (
	"fmt"
	"slices"
	"testing"
)

func TestUnnamedSubqueries(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want []string
	}{
		{"SELECT 1 FROM t", nil},
		{"SELECT * FROM (SELECT a FROM t) AS x ANY LEFT JOIN (SELECT a FROM u) AS y USING a", nil},
		{"SELECT * FROM (SELECT a FROM t) x JOIN (SELECT a FROM u) y USING a", nil},
		{"SELECT * FROM (SELECT a FROM t) ANY LEFT JOIN (SELECT a FROM u) USING a",
			[]string{"(SELECT a FROM t) ANY LEFT JOIN (SELECT a FROM u) USING a", "(SELECT a FROM u) USING a"}},
		{"SELECT * FROM (SELECT a FROM t)\nARRAY JOIN b AS c", []string{"(SELECT a FROM t) ARRAY JOIN b AS c"}},
		{"SELECT * FROM t WHERE (a, b) IN (SELECT a, b FROM u) AND f(x) = 1", nil},           // not FROM/JOIN
		{"SELECT 'FROM (SELECT 1)' FROM (SELECT 1) AS x WHERE s = ')' -- FROM (SELECT", nil}, // literals, comments
		{"SELECT * FROM (SELECT a FROM (SELECT a FROM t) AS i) AS o", nil},
		{"SELECT * FROM (SELECT a FROM (SELECT a FROM t)) AS o", []string{"(SELECT a FROM t)) AS o"}},
		{"SELECT * FROM (  with 1 AS k SELECT k) AS o", nil},
	} {
		got := UnnamedSubqueries(tc.sql)
		if !slices.Equal(got, tc.want) {
			t.Errorf("UnnamedSubqueries(%q)\n got %q\nwant %q", tc.sql, got, tc.want)
		}
	}
}

func TestTablesRead(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want string
	}{
		{"SELECT * FROM decision_records_latest WHERE x = 1", "[decision_records_latest]"},
		{"select a from `db`.`decision_records` AS r ANY LEFT JOIN (SELECT 1 FROM {db}.decision_versions) AS v USING id", "[decision_records decision_versions]"},
		{"SELECT reason FROM near_misses_daily ARRAY JOIN near_miss_reasons AS reason LEFT ARRAY JOIN tags", "[near_misses_daily]"},
		{"SELECT name FROM system.columns WHERE table = 'x' -- FROM commented\nUNION ALL SELECT 'FROM quoted' FROM raw_events", "[system.columns raw_events]"},
		{"SELECT fromUnixTimestamp(1) AS from_x, joined FROM (SELECT 1) AS s JOIN t2 ON 1", "[t2]"},
		{"SELECT 1 FROM\n    sample_queue\nWHERE 1", "[sample_queue]"},
	} {
		if got := fmt.Sprint(TablesRead(tc.sql)); got != tc.want {
			t.Errorf("TablesRead(%q) = %s, want %s", tc.sql, got, tc.want)
		}
	}
}
