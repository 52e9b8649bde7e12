package record

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/gowebpki/jcs"
)

// referenceCanonical is how record v1's canonical bytes were made before the
// direct encoder: encoding/json, then an RFC 8785 transform.
func referenceCanonical(t testing.TB, d *Decision) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	c, err := jcs.Transform(b)
	if err != nil {
		t.Fatal(err)
	}
	// The archive canonicalises with jsontext; both must agree.
	v := jsontext.Value(bytes.Clone(b))
	if err := v.Canonicalize(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v, c) {
		t.Fatalf("gowebpki/jcs and jsontext disagree:\n%s\n%s", c, v)
	}
	return c
}

func checkCanonical(t testing.TB, d *Decision) {
	t.Helper()
	want := referenceCanonical(t, d)
	got, err := d.AppendCanonical(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("canonical bytes differ at byte %d:\n got …%s\nwant …%s", i, got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
	}
}

// TestCanonicalMatchesJCS: the direct encoder writes exactly the bytes of
// jcs.Transform(json.Marshal(d)) for every golden record of enrich and for
// random records exercising every field, escapes, invalid UTF-8, numbers at
// the ECMAScript format's boundaries, nil and empty lists.
func TestCanonicalMatchesJCS(t *testing.T) {
	goldens, _ := filepath.Glob("../testdata/golden/*.json")
	if len(goldens) == 0 {
		t.Fatal("no golden records found")
	}
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		var ds []Decision // one per version
		if err := json.Unmarshal(b, &ds); err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		t.Run(filepath.Base(g), func(t *testing.T) {
			for i := range ds {
				checkCanonical(t, &ds[i])
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var d Decision
		fillRandom(rng, reflect.ValueOf(&d).Elem(), 0)
		checkCanonical(t, &d)
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		var d Decision
		fillRandom(rand.New(rand.NewPCG(a, b)), reflect.ValueOf(&d).Elem(), 0)
		checkCanonical(t, &d)
	})
}

func TestCanonicalRejectsNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		d := Decision{RecordID: "x"}
		d.Outcome.CostUSD = f
		if _, err := d.AppendCanonical(nil); err == nil {
			t.Errorf("%v: no error", f)
		}
		if _, err := json.Marshal(&d); err == nil {
			t.Errorf("%v: encoding/json accepted it", f)
		}
	}
}

var specialStrings = []string{
	"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f", "<html> & 'apos'",
	"unicode é ü ß 日本語 \U0001F600", "line sep \u2028 para sep \u2029", "bad utf8 \xff\xfe x \xc3", "\xed\xa0\x80 surrogate half",
	"€", "\ufeffbom", "tab\tend",
}

var specialFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 1e-6, 9.999999e-7, 1e-7, 1.5e-7, 123456789012345678, 1e20, 1e21, 9.99e20, 1.7976931348623157e308,
	5e-324, 2.5e-6, 0.000001234, 100, 1234.5678, 1 << 53, 1<<53 + 2, 4.35, 0.30000000000000004,
}

var specialInts = []int64{0, 1, -1, 1 << 53, -(1 << 53), 1<<53 + 1, 1<<53 + 3, math.MaxInt64, math.MinInt64, 1 << 31, 1<<32 - 1}

func randString(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		return specialStrings[rng.IntN(len(specialStrings))]
	}
	b := make([]byte, rng.IntN(12))
	for i := range b {
		b[i] = byte(rng.IntN(256))
		if rng.IntN(2) == 0 {
			b[i] = byte('a' + rng.IntN(26))
		}
	}
	return string(b)
}

func randFloat(rng *rand.Rand) float64 {
	switch rng.IntN(4) {
	case 0:
		return specialFloats[rng.IntN(len(specialFloats))]
	case 1:
		return math.Ldexp(rng.Float64(), rng.IntN(140)-70) * float64(1-2*rng.IntN(2))
	case 2:
		return float64(rng.IntN(100000)) / 100
	}
	return math.Float64frombits(rng.Uint64()&^(0x7ff<<52) | uint64(rng.IntN(0x7fe)+1)<<52) // finite
}

func fillRandom(rng *rand.Rand, v reflect.Value, depth int) {
	switch {
	case v.Type() == reflect.TypeFor[Time]():
		if rng.IntN(4) > 0 {
			v.SetInt(rng.Int64N(4102444800000)) // up to 2100
		}
		return
	case v.Type() == reflect.TypeFor[*float64]():
		if rng.IntN(3) > 0 {
			f := randFloat(rng)
			v.Set(reflect.ValueOf(&f))
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(randString(rng))
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int32:
		v.SetInt(int64(int32(rng.Uint32())))
	case reflect.Int64, reflect.Int:
		if rng.IntN(3) == 0 {
			v.SetInt(specialInts[rng.IntN(len(specialInts))])
		} else {
			v.SetInt(rng.Int64N(1<<40) - 1<<39)
		}
	case reflect.Uint32:
		v.SetUint(uint64(rng.Uint32()))
	case reflect.Float64:
		v.SetFloat(randFloat(rng))
	case reflect.Slice:
		switch rng.IntN(3) {
		case 0: // nil
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := 1 + rng.IntN(3)
			if depth > 2 {
				n = 1
			}
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				fillRandom(rng, s.Index(i), depth+1)
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillRandom(rng, v.Field(i), depth+1)
			}
		}
	default:
		panic("fillRandom: " + v.Type().String())
	}
}

func BenchmarkCanonical(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	var d Decision
	fillRandom(rng, reflect.ValueOf(&d).Elem(), 0)
	ref, _ := json.Marshal(&d)
	b.Run("direct", func(b *testing.B) {
		var buf []byte
		b.SetBytes(int64(len(ref)))
		for b.Loop() {
			buf, _ = d.AppendCanonical(buf[:0])
		}
	})
	b.Run("marshal+jcs", func(b *testing.B) {
		b.SetBytes(int64(len(ref)))
		for b.Loop() {
			m, _ := json.Marshal(&d)
			_, _ = jcs.Transform(m)
		}
	})
}
