package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/auditline/auditline/internal/mutant"
)

// checkCompact is the differential check of DecodeCompact against the
// general decoder (encoding/json/v2 into a zero Decision, as the store and
// the archive decode): whatever the input, when DecodeCompact accepts it the
// general decoder accepts it too and fills the same Decision. It reports
// whether DecodeCompact accepted it.
//
// It checks DecodeCanonical on the same input too: it reads what
// DecodeCompact reads, into the same Decision, and whenever it says the
// input is canonical, encoding that Decision gives the input byte for byte.
func checkCompact(t testing.TB, value []byte) bool {
	t.Helper()
	var got Decision
	// A private copy: the result's strings share it, and nothing may change
	// them (value is reused by the fuzzer).
	read := DecodeCompact(string(value), &got)
	checkCanonicalProof(t, value, read, &got)
	if !read {
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

// checkCanonicalProof checks DecodeCanonical on value against
// DecodeCompact's result (read, and the Decision it read when read) and
// against the encoder; it reports whether DecodeCanonical proved value
// canonical.
func checkCanonicalProof(t testing.TB, value []byte, read bool, compact *Decision) bool {
	t.Helper()
	var d Decision
	ok, proven := DecodeCanonical(string(value), &d)
	if ok != read {
		t.Fatalf("DecodeCanonical read %v, DecodeCompact %v:\n%q", ok, read, value)
	}
	if !ok {
		if proven {
			t.Fatalf("DecodeCanonical proved a value it did not read:\n%q", value)
		}
		return false
	}
	if !reflect.DeepEqual(&d, compact) {
		t.Fatalf("DecodeCanonical and DecodeCompact differ on\n%q\n got %#v\nwant %#v", value, d, *compact)
	}
	if !proven {
		return false
	}
	c, err := d.AppendCanonical(nil)
	if err != nil || !bytes.Equal(c, value) {
		t.Fatalf("DecodeCanonical proved a value that is not its record's canonical encoding (%v):\n got %q\nwant %q", err, value, c)
	}
	return true
}

// hasBigInt reports whether v holds an integer beyond ±2^53, which the
// canonical encoder writes as the double it becomes (DecodeCanonical does
// not prove those).
func hasBigInt(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Int64, reflect.Int:
		return v.Int() < -maxExact || v.Int() > maxExact
	case reflect.Slice:
		for i := range v.Len() {
			if hasBigInt(v.Index(i)) {
				return true
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && hasBigInt(v.Field(i)) {
				return true
			}
		}
	}
	return false
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
			m := mutant.Byte(rng, canon)
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

// TestDecodeCanonical: DecodeCanonical proves canonical every canonical
// value of the golden records and of random ones (unless the record holds an
// integer beyond ±2^53), and never a value that is not its record's canonical
// encoding: encoding/json's output, and mutants of the canonical bytes that
// it still reads — a member dropped or two swapped, a string's characters
// escaped otherwise, numbers and times written in another form (each one
// checked against the encoder by checkCompact).
func TestDecodeCanonical(t *testing.T) {
	ds := goldenDecisions(t)
	golden := len(ds)
	rng := rand.New(rand.NewPCG(9, 10))
	for range 2000 {
		var d Decision
		fillRandom(rng, reflect.ValueOf(&d).Elem(), 0)
		ds = append(ds, d)
	}
	var proven, big, mutants, mutantsRead, mutantsProven int
	for i := range ds {
		canon, err := ds[i].AppendCanonical(nil)
		if err != nil {
			t.Fatal(err)
		}
		var d Decision
		if !DecodeCompact(string(canon), &d) {
			continue // an integer beyond the field's range (random records)
		}
		if checkCanonicalProof(t, canon, true, &d) {
			proven++
		} else if hasBigInt(reflect.ValueOf(d)) {
			big++
		} else {
			t.Fatalf("canonical value not proven (record %d, golden %v):\n%s", i, i < golden, canon)
		}
		marshalled, err := json.Marshal(&ds[i])
		if err != nil {
			t.Fatal(err)
		}
		checkCompact(t, marshalled)
		for range 12 {
			m := mutateJSON(t, rng, canon)
			if m == nil {
				continue
			}
			mutants++
			if checkCompact(t, m) {
				mutantsRead++
				var d Decision
				if _, ok := DecodeCanonical(string(m), &d); ok {
					mutantsProven++
				}
			}
		}
	}
	if proven < golden {
		t.Fatalf("only %d values proven", proven)
	}
	t.Logf("%d of %d canonical values proven (%d hold an integer beyond ±2^53); %d mutants, %d read, %d proven (each one its record's canonical encoding)", proven, len(ds), big, mutants, mutantsRead, mutantsProven)
}

// TestDecodeCanonicalEdges pins what DecodeCanonical proves, on a record
// whose canonical bytes are edited in one place.
func TestDecodeCanonicalEdges(t *testing.T) {
	var d Decision
	d.RecordID = "a\"b\\c\n\x01\x1f/é\u2028\x7f"
	d.Request.StartTime = 1763807445118
	d.Request.EndTime = 1763807446000
	cost, big := 1.5, 1e-7
	d.Outcome.CostUSD = cost
	d.Budget.MaxPctUsed = &big
	d.Identity.Roles = []string{}
	d.Request.DurationMS = 1 << 53
	canon, err := d.AppendCanonical(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		old, new string
		read     bool
		proven   bool
	}{
		{``, ``, true, true},
		{`\u001f`, `\u001F`, true, false},
		{`\n`, `\u000a`, true, false},
		{`/é`, `\/é`, true, false},
		{`é`, `\u00e9`, true, false},
		{`"a\"b`, `"\u0061\"b`, true, false},
		{`"cost_usd":1.5`, `"cost_usd":1.50`, true, false},
		{`"cost_usd":1.5`, `"cost_usd":15e-1`, true, false},
		{`"cost_usd":1.5`, `"cost_usd":2`, true, true},
		{`"cost_usd":1.5`, `"cost_usd":-0`, true, false},
		{`"cost_usd":1.5`, `"cost_usd":0`, true, true},
		{`"max_pct_used":1e-7`, `"max_pct_used":1E-7`, true, false},
		{`"max_pct_used":1e-7`, `"max_pct_used":0.0000001`, true, false},
		{`"max_pct_used":1e-7`, `"max_pct_used":null`, true, true},
		{`"duration_ms":9007199254740992`, `"duration_ms":9007199254740993`, true, false},
		{`"duration_ms":9007199254740992`, `"duration_ms":-9007199254740992`, true, true},
		{`"start_time":"2025-11-22T10:30:45.118Z"`, `"start_time":"2025-11-22T10:30:45.118+00:00"`, true, false},
		{`"start_time":"2025-11-22T10:30:45.118Z"`, `"start_time":"2025-11-22T10:30:45.1180Z"`, true, false},
		{`"start_time":"2025-11-22T10:30:45.118Z"`, `"start_time":"2025-11-22T10:30:45.118\u005a"`, true, false},
		{`"start_time":"2025-11-22T10:30:45.118Z"`, `"start_time":"1970-01-01T00:00:00.000Z"`, true, false},
		{`"start_time":"2025-11-22T10:30:45.118Z"`, `"start_time":null`, true, true},
		{`"end_time":"2025-11-22T10:30:46.000Z"`, `"end_time":"2025-11-22T10:30:46Z"`, true, false},
		{`"roles":[]`, `"roles":null`, true, true},
		{`"roles":[]`, `"roles":["x"]`, true, true},
		{`"stream":false,`, ``, true, false},
		{`"call_type":"","duration_ms":9007199254740992`, `"duration_ms":9007199254740992,"call_type":""`, true, false},
		{`"stream":false`, `"stream":false `, false, false},
	} {
		if !bytes.Contains(canon, []byte(c.old)) {
			if c.read {
				t.Fatalf("%s: not in the value", c.old)
			}
			continue
		}
		v := bytes.Replace(canon, []byte(c.old), []byte(c.new), 1)
		if c.old == "" {
			v = canon
		}
		var got Decision
		ok, proven := DecodeCanonical(string(v), &got)
		if ok != c.read || proven != c.proven {
			t.Errorf("%s → %s: read %v proven %v, want %v %v", c.old, c.new, ok, proven, c.read, c.proven)
		}
		checkCompact(t, v)
	}
}

// mutateJSON returns canonical JSON changed in one place so that it may
// still be read but is likely not canonical (nil when nothing applied): a
// member dropped, two adjacent members swapped, a string re-escaped (\u of
// one character, \/, encoding/json's HTML escapes), a number rewritten
// (trailing zero, exponent, capital E, a sign), a time's zone or fraction
// rewritten.
func mutateJSON(t testing.TB, rng *rand.Rand, canon []byte) []byte {
	t.Helper()
	root := parseJNode(t, jsontext.NewDecoder(bytes.NewReader(canon)))
	var objs, scalars []*jnode
	var walk func(n *jnode)
	walk = func(n *jnode) {
		switch n.kind {
		case '{':
			objs = append(objs, n)
			for _, m := range n.members {
				walk(m.value)
			}
		case '[':
			for _, e := range n.elems {
				walk(e)
			}
		default:
			scalars = append(scalars, n)
		}
	}
	walk(root)
	switch op := rng.IntN(4); {
	case op == 0 && len(objs) > 0:
		o := objs[rng.IntN(len(objs))]
		if len(o.members) == 0 {
			return nil
		}
		k := rng.IntN(len(o.members))
		o.members = append(o.members[:k], o.members[k+1:]...)
	case op == 1 && len(objs) > 0:
		o := objs[rng.IntN(len(objs))]
		if len(o.members) < 2 {
			return nil
		}
		k := rng.IntN(len(o.members) - 1)
		o.members[k], o.members[k+1] = o.members[k+1], o.members[k]
	default:
		n := scalars[rng.IntN(len(scalars))]
		switch n.raw[0] {
		case '"':
			var s string
			if err := json.Unmarshal([]byte(n.raw), &s); err != nil {
				t.Fatal(err)
			}
			switch {
			case len(s) > 0 && rng.IntN(2) == 0:
				r, _ := utf8.DecodeRuneInString(s)
				if r > 0xffff {
					return nil
				}
				format := `\u%04x`
				if rng.IntN(2) == 0 {
					format = `\u%04X`
				}
				rest, _ := json.Marshal(s[utf8.RuneLen(r):])
				n.raw = `"` + fmt.Sprintf(format, r) + string(rest[1:])
			case strings.Contains(n.raw, "/"):
				n.raw = strings.Replace(n.raw, "/", `\/`, 1)
			case strings.HasSuffix(n.raw, `Z"`):
				n.raw = strings.TrimSuffix(n.raw, `Z"`) + []string{`+00:00"`, `0Z"`, `z"`}[rng.IntN(3)]
			default:
				b, _ := json.Marshal(s) // HTML escapes, \ufffd
				n.raw = string(b)
			}
		case 't', 'f', 'n':
			return nil
		default:
			switch rng.IntN(4) {
			case 0:
				if strings.ContainsAny(n.raw, ".eE") {
					n.raw += "0"
				} else {
					n.raw += ".0"
				}
			case 1:
				n.raw += "e0"
			case 2:
				n.raw = strings.Replace(n.raw, "e", "E", 1)
			default:
				if n.raw[0] == '-' {
					n.raw = n.raw[1:]
				} else {
					n.raw = "-" + n.raw
				}
			}
		}
	}
	var b bytes.Buffer
	root.write(&b)
	return b.Bytes()
}

// jnode is a JSON value with its members in the order written and its
// scalars as written.
type jnode struct {
	kind    byte // '{', '[', or 0 for a scalar
	members []jmember
	elems   []*jnode
	raw     string
}

type jmember struct {
	name  string // as written, quotes included
	value *jnode
}

func parseJNode(t testing.TB, dec *jsontext.Decoder) *jnode {
	t.Helper()
	switch dec.PeekKind() {
	case '{', '[':
		tok, err := dec.ReadToken()
		if err != nil {
			t.Fatal(err)
		}
		n := &jnode{kind: byte(tok.Kind())}
		for dec.PeekKind() != '}' && dec.PeekKind() != ']' {
			if n.kind == '{' {
				v, err := dec.ReadValue()
				if err != nil {
					t.Fatal(err)
				}
				name := string(v) // copied before the decoder reuses its buffer
				n.members = append(n.members, jmember{name: name, value: parseJNode(t, dec)})
			} else {
				n.elems = append(n.elems, parseJNode(t, dec))
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	v, err := dec.ReadValue()
	if err != nil {
		t.Fatal(err)
	}
	return &jnode{raw: string(v)}
}

func (n *jnode) write(b *bytes.Buffer) {
	switch n.kind {
	case '{':
		b.WriteByte('{')
		for i, m := range n.members {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m.name)
			b.WriteByte(':')
			m.value.write(b)
		}
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, e := range n.elems {
			if i > 0 {
				b.WriteByte(',')
			}
			e.write(b)
		}
		b.WriteByte(']')
	default:
		b.WriteString(n.raw)
	}
}

// FuzzDecodeCompact: on any input, DecodeCompact either leaves it to the
// general decoder or decodes exactly what encoding/json/v2 decodes, and
// DecodeCanonical proves canonical only its record's canonical encoding.
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
