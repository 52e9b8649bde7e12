package batch

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
	"unsafe"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/internal/mutant"
	"github.com/auditline/auditline/sinks/archive/archivetest"
)

// refCanonical is canonical as it was before record.DecodeCanonical: every
// record DecodeCompact read was encoded again and compared with the value.
func refCanonical(value []byte) ([]byte, *record.Decision, string) {
	d := new(record.Decision)
	if record.DecodeCompact(unsafe.String(unsafe.SliceData(value), len(value)), d) && isCanonical(d, value) {
		return value, d, ""
	}
	*d = record.Decision{}
	derr := jsonv2.Unmarshal(value, d)
	if derr == nil && isCanonical(d, value) {
		return value, d, ""
	}
	c := jsontext.Value(bytes.Clone(value))
	if err := c.Canonicalize(); err != nil {
		return bytes.Clone(value), nil, "not JSON (archive_canonical holds the raw value): " + err.Error()
	}
	if derr != nil {
		return c, nil, "not a decision record: " + derr.Error()
	}
	return c, d, ""
}

// TestCanonicalMatchesReference: canonical gives what refCanonical gave —
// the same archive_canonical bytes (the value itself, not a copy, exactly
// when the reference kept it), the same record and the same archive_error —
// for the archive's test records in canonical and legacy form, random
// records with every field set, and mutants of their canonical bytes that
// are read but not canonical (a time's zone, a number's form, an escape,
// whitespace) or not read at all (a byte changed, removed, doubled, cut).
func TestCanonicalMatchesReference(t *testing.T) {
	var values [][]byte
	for i := range 200 {
		values = append(values, archivetest.Value(i), archivetest.LegacyValue(i))
	}
	r := rand.New(rand.NewPCG(45, 17))
	for range 500 {
		var d record.Decision
		fill(r, reflect.ValueOf(&d).Elem())
		if v, err := d.Canonical(); err == nil {
			values = append(values, v)
		}
	}
	// Canonical, but not proven while decoding: an integer beyond ±2^53
	// (kept after the encode and compare, as before).
	big := archivetest.Decision(0)
	big.Request.DurationMS = 1 << 60
	bigValue, err := big.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if _, proven := record.DecodeCanonical(string(bigValue), new(record.Decision)); proven {
		t.Fatal("an integer beyond ±2^53 was proven: the case is not covered")
	}
	if got, _, _ := canonical(bigValue); &got[0] != &bigValue[0] {
		t.Fatal("a canonical value not proven while decoding was not kept")
	}
	values = append(values, bigValue)
	edits := [][2]string{
		{`Z"`, `+00:00"`}, {`.`, `.0`}, {`0,`, `0e0,`}, {`":`, `": `}, {`/`, `\/`},
		{`"a`, `"\u0061`}, {`\n`, `\u000a`}, {`,"version":`, `,"version":0`}, {`[]`, `null`},
	}
	var kept, proofs, fallbacks int
	check := func(v []byte) {
		t.Helper()
		want, wantD, wantErr := refCanonical(v)
		got, gotD, gotErr := canonical(v)
		if !bytes.Equal(got, want) || gotErr != wantErr || !reflect.DeepEqual(gotD, wantD) {
			t.Fatalf("canonical differs from the reference on\n%q\n got %q %q\nwant %q %q", v, got, gotErr, want, wantErr)
		}
		if len(v) > 0 && len(got) > 0 && (&got[0] == &v[0]) != (&want[0] == &v[0]) {
			t.Fatalf("value kept %v, the reference kept it %v:\n%q", &got[0] == &v[0], &want[0] == &v[0], v)
		}
		if len(got) > 0 && len(v) > 0 && &got[0] == &v[0] {
			kept++
			var d record.Decision
			if _, proven := record.DecodeCanonical(string(v), &d); proven {
				proofs++
			}
		} else {
			fallbacks++
		}
	}
	for _, v := range values {
		check(v)
		for _, e := range edits {
			if m := bytes.Replace(v, []byte(e[0]), []byte(e[1]), 1); !bytes.Equal(m, v) {
				check(m)
			}
		}
		for range 10 {
			m := mutant.Byte(r, v)
			check(m)
		}
	}
	t.Logf("%d values kept as they are (%d proven while decoding), %d canonicalised or raw", kept, proofs, fallbacks)
	if proofs < 200 {
		t.Fatalf("only %d of the test records' canonical values proven", proofs)
	}
}
