package event

import (
	"bytes"
	"strings"
	"testing"

	"github.com/auditline/auditline/ingest/loadgen"
)

// refValue is scanner.value as it was before skip: objects and arrays
// scanned member by member, recursively (main ec0032a). It is the reference
// skip must agree with.
func refValue(s *scanner, depth int) (start, end int, ok bool) {
	s.ws()
	start = s.i
	if s.i >= len(s.b) {
		return 0, 0, false
	}
	switch c := s.b[s.i]; c {
	case '"':
		_, end, _, ok = s.str()
		return start, end, ok
	case '{':
		ok = refObject(s, depth+1)
	case '[':
		ok = refArray(s, depth+1)
	case 't':
		ok = s.literal("true")
	case 'f':
		ok = s.literal("false")
	case 'n':
		ok = s.literal("null")
	default:
		ok = s.number()
	}
	return start, s.i, ok
}

func refObject(s *scanner, depth int) bool {
	empty, ok := s.open(depth)
	for ok && !empty {
		if _, ok = s.name(); !ok {
			return false
		}
		if _, _, ok = refValue(s, depth); !ok {
			return false
		}
		empty, ok = s.next()
	}
	return ok
}

func refArray(s *scanner, depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if _, _, ok := refValue(s, depth); !ok {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// skipAgrees checks that scanner.value accepts the value at the start of b
// exactly when the reference scan does, at every depth a caller may start
// it from, and ends it at the same byte.
func skipAgrees(t *testing.T, b []byte) {
	t.Helper()
	for _, depth := range []int{0, 1, maxScanDepth - 2, maxScanDepth - 1, maxScanDepth} {
		ref := scanner{b: b}
		rs, re, rok := refValue(&ref, depth)
		got := scanner{b: b}
		gs, ge, gok := got.value(depth)
		if rok != gok || rok && (rs != gs || re != ge || ref.i != got.i) {
			t.Fatalf("depth %d: value = (%d, %d, %v) at %d, reference (%d, %d, %v) at %d, on\n%.2000q",
				depth, gs, ge, gok, got.i, rs, re, rok, ref.i, b)
		}
	}
}

// TestSkipMatchesReference: the corpus, loadgen's payloads, their prefixes
// and single-byte mutants, and the grammar's edges.
func TestSkipMatchesReference(t *testing.T) {
	var inputs [][]byte
	for _, b := range corpus(t) {
		inputs = append(inputs, b)
	}
	g, err := loadgen.New(loadgen.Config{Seed: 7, Gateway: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	for len(inputs) < 2000 {
		r := g.Next()
		inputs = append(inputs, r.LiteLLM...)
		inputs = append(inputs, r.Gateway...)
	}
	for _, s := range []string{
		`{}`, `[]`, `{ }`, `[ ]`, "{\t\n\r }", `{"a":1}`, `{"a" : [ 1 , 2 ] }`, `[1,[2,[3,{}]]]`,
		`{"a":1,}`, `[1,]`, `[,]`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{1:2}`, `{"a":1 "b":2}`, `[1 2]`,
		`{"a":[}`, `{"a":{]}`, `[}`, `{]`, `[`, `{`, `{"a":1`, `[1`, `{"a`, `{"a":"b`,
		`{"\u0061":1}`, `{"a\"":1}`, `{"a":"\u0061"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud83d"}`, `["\x"]`,
		"[\"\x01\"]", "[\"\xff\xfe\"]", "{\"\xc3\xa9\":1}", "[\x00]", "[\v1]", "[\f1]",
		`[true,false,null]`, `[tru]`, `[nul]`, `[fals]`, `[truex]`, `[-]`, `[-0]`, `[01]`, `[1.]`, `[.1]`, `[1e]`,
		`[1e+]`, `[1E-5]`, `[-1.5e+3]`, `[NaN]`, `[Infinity]`, `[+1]`, `{"a":1}}`, `[1]]`,
		strings.Repeat("[", maxScanDepth) + strings.Repeat("]", maxScanDepth),
		strings.Repeat("[", maxScanDepth+1) + strings.Repeat("]", maxScanDepth+1),
		strings.Repeat(`{"a":`, maxScanDepth) + "1" + strings.Repeat("}", maxScanDepth),
		strings.Repeat(`{"a":[`, 200) + strings.Repeat("]}", 200),
		strings.Repeat("[", 70) + "1" + strings.Repeat("]", 69),
		strings.Repeat(`[{"a":`, 40) + "1" + strings.Repeat("}]", 40),
	} {
		inputs = append(inputs, []byte(s))
	}
	for i, b := range inputs {
		skipAgrees(t, b)
		// The members' values as the fast path meets them, from each '{'
		// and '[' of the first payloads, and the payload cut short.
		if i < 60 {
			for j := range b {
				if b[j] == '{' || b[j] == '[' {
					skipAgrees(t, b[j:])
				}
			}
			for _, cut := range []int{len(b) / 3, len(b) / 2, len(b) - 1} {
				skipAgrees(t, b[:max(cut, 0)])
			}
		}
		if i < 40 {
			m := bytes.Clone(b)
			for j := 0; j < len(m); j += 29 {
				c := m[j]
				for _, r := range []byte{'"', '\\', '{', '}', '[', ']', ',', ':', ' ', 0, 'x', '1'} {
					m[j] = r
					skipAgrees(t, m)
				}
				m[j] = c
			}
		}
	}
}

// FuzzSkip: scanner.value agrees with the reference scan on every input.
func FuzzSkip(f *testing.F) {
	for _, b := range corpus(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"a":[1,{"b":"c\u0041"},true,null,-1.5e3],"d":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		skipAgrees(t, b)
	})
}
