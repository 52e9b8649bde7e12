package store

import (
	"slices"
	"strings"
	"testing"
)

// TestLayoutColumns: every column a layout names exists, as a string
// column, and the zero layout is the one schema of 18.16 (no signature,
// so tables built before layouts existed are not rebuilt).
func TestLayoutColumns(t *testing.T) {
	types := map[string]string{}
	for _, c := range decisionColumns() {
		types[c.Name] = c.Type
	}
	for _, c := range kafkaColumns() {
		types[c.Name] = c.Type
	}
	for _, name := range slices.Concat(lowCardColumns, searchColumns) {
		typ, ok := types[name]
		if !ok {
			t.Errorf("layout names %s, which decision_records does not have", name)
			continue
		}
		if strings.Trim(strings.ReplaceAll(typ, "Array(", ""), ")") != "String" {
			t.Errorf("layout names %s, of type %s: not a string column", name, typ)
		}
	}
	if (layout{}).signature() != "" {
		t.Error("the zero layout has a signature: every existing table would be rebuilt")
	}
	if layoutFor(Oldest) != (layout{}) {
		t.Errorf("ClickHouse %s gets layout %+v, want the 18.16 one", Oldest, layoutFor(Oldest))
	}
	all := layout{lowCard: true, codecs: true, indexes: true}
	ddl := schema{db: "d", srv: Server{26, 9}, variant: &all}.decisionRecordsDDL()
	for _, want := range []string{"`tenant` LowCardinality(String) CODEC(ZSTD(1))", "`start_time_ms` Int64 CODEC(Delta, ZSTD(1))",
		"`provider` LowCardinality(String) CODEC(ZSTD(1))", "INDEX `search_request_key` `request_key` TYPE bloom_filter"} {
		if !strings.Contains(ddl, want) {
			t.Errorf("DDL of every modern feature lacks %q", want)
		}
	}
}
