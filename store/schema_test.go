package store

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditline/auditline/enrich/record"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name (or name itself when it is a path),
// or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := name
	if !strings.Contains(name, "/") {
		path = filepath.Join("testdata", name)
	}
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./store -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the generated DDL; if the schema change is intended, run go test ./store -run %s -update and review the diff", path, t.Name())
	}
}

// TestSchemaGolden pins the DDL `auditline migrate --dry-run` prints, for the
// oldest supported server and for a current one, so that a schema change
// shows in review.
func TestSchemaGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		srv  Server
	}{
		{"schema-18.16.sql", Oldest},
		{"schema-24.8.sql", Server{24, 8}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			golden(t, tc.file, strings.Join(Plan("auditline", tc.srv), ";\n\n")+";\n")
		})
	}
}

func TestSchemaKeys(t *testing.T) {
	cols := map[string]string{}
	for _, c := range decisionColumns() {
		if _, dup := cols[c.Name]; dup {
			t.Errorf("column %s derived twice", c.Name)
		}
		cols[c.Name] = c.Type
	}
	for _, k := range kafkaColumns() {
		if _, dup := cols[k.Name]; dup {
			t.Errorf("kafka column %s collides with a record field", k.Name)
		}
	}
	for _, key := range []string{"tenant", "start_time", "record_id", "version"} {
		if _, ok := cols[key]; !ok {
			t.Errorf("sorting/version column %s missing from record.Fields", key)
		}
	}
	if cols["start_time"] != dateTimeUTC {
		t.Errorf("start_time is %s, want %s (partition key)", cols["start_time"], dateTimeUTC)
	}
	if cols["version"] != "UInt32" {
		t.Errorf("version is %s, want UInt32 (ReplacingMergeTree version)", cols["version"])
	}
	// Every field of record.Fields has a column.
	for _, f := range record.Fields() {
		if f.Kind == record.KindStructList {
			for _, e := range f.Elem {
				if _, ok := cols[f.Name+"."+e.Name]; !ok {
					t.Errorf("no column for %s[].%s", f.JSON, e.JSON)
				}
			}
			continue
		}
		if _, ok := cols[f.Name]; !ok {
			t.Errorf("no column for %s", f.JSON)
		}
	}
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  Server
		dedup bool
		bad   bool
	}{
		{in: "18.16.1", want: Server{18, 16}},
		{in: "24.8.4.13", want: Server{24, 8}, dedup: true},
		{in: "22.2", want: Server{22, 2}, dedup: true},
		{in: "22.1.3", want: Server{22, 1}},
		{in: "x", bad: true},
		{in: "1.x", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseServer(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseServer(%q) error = %v, want error %v", tc.in, err, tc.bad)
			continue
		}
		if tc.bad {
			continue
		}
		if got != tc.want || got.DedupToken() != tc.dedup {
			t.Errorf("ParseServer(%q) = %v dedup %v, want %v dedup %v", tc.in, got, got.DedupToken(), tc.want, tc.dedup)
		}
	}
}
