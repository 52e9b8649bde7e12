package record

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

// checkCompact is the differential check of DecodeCompact against the
// general decoder (encoding/json/v2 into a zero Decision, as the store and
// the archive decode): whatever the input, when DecodeCompact accepts it the
// general decoder accepts it too and fills the same Decision. It reports
// whether DecodeCompact accepted it.
func checkCompact(t testing.TB, value []byte) bool {
	t.Helper()
	var got Decision
	// A private copy: the result's strings share it, and nothing may change
	// them (value is reused by the fuzzer).
	if !DecodeCompact(string(value), &got) {
		return false
	}
	var want Decision
	if err := jsonv2.Unmarshal(value, &want); err != nil {
		t.Fatalf("DecodeCompact accepted what encoding/json/v2 rejects (%v):\n%q", err, value)
	}
	if !reflect.DeepEqual(&got, &want) {
		t.Fatalf("DecodeCompact and encoding/json/v2 differ on\n%q\n got %#v\nwant %#v", value, got, want)
	}
	return true
}

func goldenDecisions(t testing.TB) []Decision {
	t.Helper()
	goldens, _ := filepath.Glob("../testdata/golden/*.json")
	if len(goldens) == 0 {
		t.Fatal("no golden records found")
	}
	var out []Decision
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		var ds []Decision
		if err := json.Unmarshal(b, &ds); err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		out = append(out, ds...)
	}
	return out
}

// TestDecodeCompactMatchesV2: DecodeCompact reads enrich's canonical bytes
// and encoding/json's compact output of every golden record and of random
// records (every field, escapes, invalid UTF-8 made valid, numbers at the
// boundaries, nil and empty lists) exactly as encoding/json/v2 does, and
// leaves to it every input it does not read (indented, mutated, truncated).
func TestDecodeCompactMatchesV2(t *testing.T) {
	ds := goldenDecisions(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		var d Decision
		fillRandom(rng, reflect.ValueOf(&d).Elem(), 0)
		ds = append(ds, d)
	}
	var accepted, mutants, mutantsAccepted int
	for i := range ds {
		canon, err := ds[i].AppendCanonical(nil)
		if err != nil {
			t.Fatal(err)
		}
		marshalled, err := json.Marshal(&ds[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range [][]byte{canon, marshalled} {
			// What encoding/json/v2 decodes of canonical bytes and of
			// encoding/json's output is within the subset (neither writes a
			// \u escape of a surrogate). It rejects an integer beyond ±2^53,
			// which both write as the double it becomes (random records).
			if !checkCompact(t, v) {
				var d Decision
				if jsonv2.Unmarshal(v, &d) == nil {
					t.Fatalf("not read by DecodeCompact:\n%s", v)
				}
				continue
			}
			accepted++
		}
		var ind bytes.Buffer
		if err := json.Indent(&ind, canon, "", " "); err != nil {
			t.Fatal(err)
		}
		if checkCompact(t, ind.Bytes()) && bytes.Contains(ind.Bytes(), []byte("\n")) {
			t.Fatalf("DecodeCompact read whitespace")
		}
		// Mutants: one byte changed, removed or duplicated, or cut short.
		for range 20 {
			m := bytes.Clone(canon)
			k := rng.IntN(len(m))
			switch rng.IntN(4) {
			case 0:
				const alphabet = "{}[],:\"\\0123456789.eE+-ntfalsu \xff"
				m[k] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				m = append(m[:k], m[k+1:]...)
			case 2:
				m = append(m[:k+1], m[k:]...)
			default:
				m = m[:k]
			}
			mutants++
			if checkCompact(t, m) {
				mutantsAccepted++
			}
		}
	}
	t.Logf("%d values read; %d of %d mutants read (all as encoding/json/v2 reads them)", accepted, mutantsAccepted, mutants)
}

// TestDecodeCompactEdges pins the subset's edges against encoding/json/v2.
func TestDecodeCompactEdges(t *testing.T) {
	for _, c := range []struct {
		in   string
		read bool // whether DecodeCompact reads it (else the general decoder decides)
	}{
		{`{}`, true},
		{`{"record_id":"a"}`, true},
		{`{"record_id":"a\"b\\c\/d\b\f\n\r\t\u0000\u00e9\u2028"}`, true},
		{`{"record_id":"\ud83d\ude00"}`, false},
		{`{"record_id":"\ud800"}`, false},
		{`{"record_id":"\u12"}`, false},
		{`{"record_id":"\x"}`, false},
		{"{\"record_id\":\"a\x01\"}", false},
		{"{\"record_id\":\"\xff\"}", false},
		{"{\"record_id\":\"\xed\xa0\x80\"}", false},
		{`{"record_id":"é日本\u0041"}`, true},
		{`{"record_id":null}`, false},
		{`{"record_id":"a","record_id":"b"}`, false},
		{`{"Record_id":"a"}`, false},
		{`{"unknown":1}`, false},
		{`{"r\u0065cord_id":"a"}`, false},
		{` {}`, false},
		{`{} `, false},
		{`{}{}`, false},
		{`null`, false},
		{`{"version":1}`, true},
		{`{"version":4294967295}`, true},
		{`{"version":4294967296}`, false},
		{`{"version":-1}`, false},
		{`{"version":-0}`, false},
		{`{"version":01}`, false},
		{`{"version":1.0}`, false},
		{`{"version":1e0}`, false},
		{`{"schema_version":-9223372036854775808}`, true},
		{`{"schema_version":9223372036854775808}`, false},
		{`{"routing":{"retry_count":2147483648}}`, false},
		{`{"outcome":{"cost_usd":-0}}`, true},
		{`{"outcome":{"cost_usd":1E+2}}`, true},
		{`{"outcome":{"cost_usd":1e400}}`, false},
		{`{"outcome":{"cost_usd":4.9e-325}}`, true},
		{`{"outcome":{"cost_usd":.5}}`, false},
		{`{"outcome":{"cost_usd":1.}}`, false},
		{`{"outcome":{"cost_usd":null}}`, false},
		{`{"budget":{"max_pct_used":null,"key":{"spend":12.5}}}`, true},
		{`{"identity":{"roles":null,"tags":[]}}`, true},
		{`{"identity":{"roles":["a","b,]"]}}`, true},
		{`{"identity":{"roles":["a",]}}`, false},
		{`{"identity":{"roles":[,]}}`, false},
		{`{"identity":{"roles":[null]}}`, false},
		{`{"routing":{"attempts":[{},{"event_id":"x","start_time":null}]}}`, true},
		{`{"routing":{"attempts":[{"event_id":"x"}]`, false},
		{`{"request":{"start_time":"2025-11-22T10:41:07.512Z"}}`, true},
		{`{"request":{"start_time":"2025-11-22T10:41:07.5123456+02:00"}}`, true},
		{`{"request":{"start_time":"0001-01-01T00:00:00Z"}}`, true},
		{`{"request":{"start_time":"2025-02-30T10:41:07Z"}}`, false},
		{`{"request":{"start_time":"yesterday"}}`, false},
		{`{"request":{"start_time":1}}`, false},
		{`{"request":{"stream":true}}`, true},
		{`{"request":{"stream":tru}}`, false},
		{`{"request":{"stream":1}}`, false},
		{`{"request":[]}`, false},
	} {
		if got := checkCompact(t, []byte(c.in)); got != c.read {
			t.Errorf("%s: read %v, want %v", c.in, got, c.read)
		}
	}
}

// FuzzDecodeCompact: on any input, DecodeCompact either leaves it to the
// general decoder or decodes exactly what encoding/json/v2 decodes.
func FuzzDecodeCompact(f *testing.F) {
	for _, d := range goldenDecisions(f) {
		b, err := d.AppendCanonical(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20 {
		var d Decision
		fillRandom(rng, reflect.ValueOf(&d).Elem(), 0)
		b, _ := json.Marshal(&d)
		f.Add(b)
	}
	f.Add([]byte(`{"identity":{"roles":["a","b"]},"version":1,"record_id":"x\u00e9"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		checkCompact(t, value)
	})
}

func BenchmarkDecodeCompact(b *testing.B) {
	ds := goldenDecisions(b)
	var values [][]byte
	for i := range ds {
		v, _ := ds[i].AppendCanonical(nil)
		values = append(values, v)
	}
	b.Run("compact", func(b *testing.B) {
		var i int
		for b.Loop() {
			var d Decision
			if !DecodeCompact(string(values[i%len(values)]), &d) {
				b.Fatal("not read")
			}
			i++
		}
	})
	b.Run("v2", func(b *testing.B) {
		var i int
		for b.Loop() {
			var d Decision
			if err := jsonv2.Unmarshal(values[i%len(values)], &d); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
