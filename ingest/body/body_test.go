package body

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func elems(b []byte, els []Element) []string {
	var out []string
	for _, e := range els {
		out = append(out, string(e.Bytes(b)))
	}
	return out
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ndjson bool
		form   Form
		want   []string
		kinds  []Kind
	}{
		{"single", `{"a": 1}`, false, Single, []string{`{"a": 1}`}, []Kind{Object}},
		{"single with whitespace", " \n{\"a\": 1}\n ", false, Single, []string{`{"a": 1}`}, []Kind{Object}},
		{"single with BOM", "\xef\xbb\xbf{}", false, Single, []string{`{}`}, []Kind{Object}},
		{"array", `[{"a": 1}, {"b": [1, 2]}]`, false, Array, []string{`{"a": 1}`, `{"b": [1, 2]}`}, []Kind{Object, Object}},
		{"empty array", `[]`, false, Array, nil, nil},
		{"array with nulls", `[null, {"a": 1}, null]`, false, Array, []string{`null`, `{"a": 1}`, `null`}, []Kind{Null, Object, Null}},
		{"array of mixed", `[1, "x", true, [], {}]`, false, Array, []string{`1`, `"x"`, `true`, `[]`, `{}`}, []Kind{Number, String, Bool, ArrayKind, Object}},
		{"array keeps inner spacing", "[ {\"a\" :\t1 } ,\n{ } ]", false, Array, []string{"{\"a\" :\t1 }", `{ }`}, []Kind{Object, Object}},
		{"ndjson", "{\"a\": 1}\n{\"b\": 2}", false, NDJSON, []string{`{"a": 1}`, `{"b": 2}`}, []Kind{Object, Object}},
		{"ndjson trailing newline", "{\"a\": 1}\n{\"b\": 2}\n", false, NDJSON, []string{`{"a": 1}`, `{"b": 2}`}, []Kind{Object, Object}},
		{"ndjson crlf", "{\"a\": 1}\r\n{\"b\": 2}\r\n", false, NDJSON, []string{`{"a": 1}`, `{"b": 2}`}, []Kind{Object, Object}},
		{"ndjson blank lines", "{}\n\n\n{}", false, NDJSON, []string{`{}`, `{}`}, []Kind{Object, Object}},
		{"ndjson null line", "{}\nnull\n{}", false, NDJSON, []string{`{}`, `null`, `{}`}, []Kind{Object, Null, Object}},
		{"ndjson of one line by content type", `{"a": 1}`, true, NDJSON, []string{`{"a": 1}`}, []Kind{Object}},
		{"ndjson of arrays", "[1]\n[2]", false, NDJSON, []string{`[1]`, `[2]`}, []Kind{ArrayKind, ArrayKind}},
		{"python NaN tokens", `[{"c": NaN, "d": Infinity, "e": -Infinity, "f": [NaN]}]`, false, Array,
			[]string{`{"c": NaN, "d": Infinity, "e": -Infinity, "f": [NaN]}`}, []Kind{Object}},
		{"numbers", `[0, -0, 1.5e10, -2E-3, 12345678901234567890]`, false, Array,
			[]string{`0`, `-0`, `1.5e10`, `-2E-3`, `12345678901234567890`}, []Kind{Number, Number, Number, Number, Number}},
		{"escapes", `{"s": "a\"b\\c\/\b\f\n\r\t\u00e9\uD83D\uDE00"}`, false, Single,
			[]string{`{"s": "a\"b\\c\/\b\f\n\r\t\u00e9\uD83D\uDE00"}`}, []Kind{Object}},
		{"utf8 kept", `{"s": "héllo ✓"}`, false, Single, []string{`{"s": "héllo ✓"}`}, []Kind{Object}},
		{"bare null", `null`, false, Single, []string{`null`}, []Kind{Null}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, els, err := Split([]byte(tt.body), tt.ndjson, 0)
			if err != nil {
				t.Fatal(err)
			}
			if form != tt.form {
				t.Errorf("form %s, want %s", form, tt.form)
			}
			got := elems([]byte(tt.body), els)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("elements %q, want %q", got, tt.want)
			}
			for i, e := range els {
				if e.Kind != tt.kinds[i] {
					t.Errorf("element %d kind %s, want %s", i, e.Kind, tt.kinds[i])
				}
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		line, col int
		offset    int
		msg       string
	}{
		{"empty", ``, 1, 1, 0, "empty body"},
		{"only whitespace", "  \n ", 2, 2, 4, "empty body"},
		{"truncated array", `[{"a": 1}, {"b": 2}`, 1, 20, 19, "missing ']'"},
		{"truncated string", `{"a": "xyz`, 1, 11, 10, "missing '\"'"},
		{"trailing comma", `[{"a": 1},]`, 1, 11, 10, "want a value"},
		{"missing colon", `{"a" 1}`, 1, 6, 5, "want ':'"},
		{"single quotes", `{'a': 1}`, 1, 2, 1, "want a string key"},
		{"two objects one line", `{} {}`, 1, 4, 3, "one value per line"},
		{"error on line 3", "{}\n{}\n{\"a\": tru}", 3, 7, 12, "want true"},
		{"bad escape", `{"a": "\x"}`, 1, 9, 8, "invalid escape"},
		{"bad unicode escape", `{"a": "\u12G4"}`, 1, 12, 11, "\\u escape"},
		{"control char", "{\"a\": \"x\ty\"}", 1, 9, 8, "control character"},
		{"leading zero", `[01]`, 1, 3, 2, "want ',' or ']'"},
		{"bare minus", `[-]`, 1, 3, 2, "where a digit belongs"},
		{"dot without digits", `[1.]`, 1, 4, 3, "after the decimal point"},
		{"exponent without digits", `[1e]`, 1, 4, 3, "in the exponent"},
		{"lowercase nan", `[nan]`, 1, 2, 1, "want null"},
		{"python None", `[None]`, 1, 2, 1, "want NaN"},
		{"garbage after array", `[1] x`, 1, 5, 4, "one value per line"},
		{"unclosed object", `{"a": 1`, 1, 8, 7, "missing '}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Split([]byte(tt.body), false, 0)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *SyntaxError", err)
			}
			if se.Line != tt.line || se.Column != tt.col || se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("got line %d col %d offset %d %q; want line %d col %d offset %d containing %q",
					se.Line, se.Column, se.Offset, se.Msg, tt.line, tt.col, tt.offset, tt.msg)
			}
		})
	}
}

func TestSplitDepth(t *testing.T) {
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, _, err := Split([]byte(ok), false, 0); err != nil {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	var se *SyntaxError
	if _, _, err := Split([]byte(deep), false, 0); !errors.As(err, &se) || !strings.Contains(se.Msg, "nesting") {
		t.Fatalf("depth %d: %v, want a nesting error", MaxDepth+1, err)
	}
}

func TestSplitLimit(t *testing.T) {
	for _, body := range []string{`[{}, {}, {}]`, "{}\n{}\n{}"} {
		if _, els, err := Split([]byte(body), false, 3); err != nil || len(els) != 3 {
			t.Fatalf("%q limit 3: %v %d", body, err, len(els))
		}
		var tm *TooManyError
		if _, _, err := Split([]byte(body), false, 2); !errors.As(err, &tm) || tm.Limit != 2 {
			t.Fatalf("%q limit 2: %v, want *TooManyError", body, err)
		}
	}
}

// examples reads the LiteLLM reference payloads copied into ingest/testdata.
func examples(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../testdata/examples/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// TestExamples: every example is one valid element; the json_array body of
// example 09 splits into its three payloads, byte-exact, each equal in value to
// the pretty-printed example it was built from.
func TestExamples(t *testing.T) {
	ex := examples(t)
	for name, b := range ex {
		form, els, err := Split(b, false, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "09_generic_api_batch_post_body_json_array.json" {
			if form != Array || len(els) != 3 {
				t.Fatalf("%s: form %s with %d elements, want json_array with 3", name, form, len(els))
			}
			for i, src := range []string{"03a_fallback_attempt1_failure_azure_429.json", "03b_fallback_attempt2_success_anthropic.json", "01_success_plain_openai.json"} {
				var got, want any
				if err := json.Unmarshal(els[i].Bytes(b), &got); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(ex[src], &want); err != nil {
					t.Fatal(err)
				}
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				if !bytes.Equal(gb, wb) {
					t.Errorf("element %d of 09 differs from %s", i, src)
				}
			}
			continue
		}
		if form != Single || len(els) != 1 || els[0].Kind != Object {
			t.Fatalf("%s: form %s, %d elements", name, form, len(els))
		}
		if !bytes.Equal(els[0].Bytes(b), bytes.TrimSpace(b)) {
			t.Errorf("%s: element is not the file's bytes", name)
		}
	}
}

func TestMembers(t *testing.T) {
	obj := []byte(`{"id": "x", "n": NaN, "o": {"id": "inner"}, "l": [1, {"a": 2}], "k\u0065y": "esc", "e": "a\"b"}`)
	var keys, vals []string
	if err := Members(obj, func(k, v []byte) bool {
		keys = append(keys, string(k))
		vals = append(vals, string(v))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys, ","); got != "id,n,o,l,key,e" {
		t.Errorf("keys %s", got)
	}
	if got := strings.Join(vals, "|"); got != `"x"|NaN|{"id": "inner"}|[1, {"a": 2}]|"esc"|"a\"b"` {
		t.Errorf("values %s", got)
	}
	if s, ok := Str([]byte(`"a\"b\u00e9"`)); !ok || s != `a"bé` {
		t.Errorf("Str: %q %v", s, ok)
	}
	if _, ok := Str([]byte(`12`)); ok {
		t.Error("Str of a number")
	}
	if err := Members([]byte(`[1]`), func(k, v []byte) bool { return true }); err == nil {
		t.Error("Members of an array: no error")
	}
	n := 0
	_ = Members(obj, func(k, v []byte) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("early stop after %d", n)
	}
}

// pythonTokens reports whether b contains a byte sequence that could be one of
// the Python tokens (outside strings or not, conservatively).
func pythonTokens(b []byte) bool {
	return bytes.Contains(b, []byte("NaN")) || bytes.Contains(b, []byte("Infinity"))
}

// FuzzSplit checks the scanner against encoding/json on every input without
// the Python tokens, that elements are exact sub-slices that are themselves
// valid, and that it never panics.
func FuzzSplit(f *testing.F) {
	for _, b := range examples(f) {
		f.Add(b, false)
	}
	f.Add([]byte(`[null, {"a": NaN}, {"b": -Infinity}]`), false)
	f.Add([]byte("{}\n{}\n"), true)
	f.Add([]byte(`{"a": "\ud800"}`), false)
	f.Fuzz(func(t *testing.T, b []byte, ndjson bool) {
		form, els, err := Split(b, ndjson, 0)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T", err)
			}
			if se.Offset < 0 || se.Offset > len(b) {
				t.Fatalf("offset %d outside body of %d bytes", se.Offset, len(b))
			}
			if form == Single || form == Array {
				// A body our scanner rejects must not be a valid single JSON value
				// for encoding/json either (BOM aside).
				t.Fatalf("form set on error")
			}
			if json.Valid(b) && !bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
				t.Fatalf("encoding/json accepts what we reject: %v", err)
			}
			return
		}
		for _, e := range els {
			el := e.Bytes(b)
			if !Valid(el) {
				t.Fatalf("element %q is not valid on its own", el)
			}
			if !pythonTokens(el) && !json.Valid(el) {
				t.Fatalf("element %q rejected by encoding/json", el)
			}
			if e.Kind == Object {
				if err := Members(el, func(k, v []byte) bool { return true }); err != nil {
					t.Fatalf("Members of %q: %v", el, err)
				}
			}
		}
		if form == Single || form == Array {
			trimmed := bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
			if !pythonTokens(trimmed) && !json.Valid(trimmed) {
				t.Fatalf("we accept %q as %s, encoding/json does not", b, form)
			}
		}
	})
}

// BenchmarkSplit measures splitting the 512-payload json_array body LiteLLM
// sends, beside encoding/json decoding the same body into []json.RawMessage
// (the plain-decode baseline; it cannot accept NaN and copies every element).
func BenchmarkSplit(b *testing.B) {
	ex := examples(b)
	var parts [][]byte
	for _, name := range []string{"01_success_plain_openai.json", "02_success_streaming_azure.json", "03a_fallback_attempt1_failure_azure_429.json", "03b_fallback_attempt2_success_anthropic.json", "05_guardrail_pre_call_block.json", "07_cache_hit.json", "08_budget_near_limit_key_user_team_end_user.json"} {
		var v any
		_ = json.Unmarshal(ex[name], &v)
		c, _ := json.Marshal(v)
		parts = append(parts, c)
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range 512 {
		if i > 0 {
			buf.WriteString(", ")
		}
		buf.Write(parts[i%len(parts)])
	}
	buf.WriteByte(']')
	body := buf.Bytes()

	const rounds = 50
	start := time.Now()
	for range rounds {
		var raw []json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			b.Fatal(err)
		}
	}
	baseline := float64(rounds*len(body)) / time.Since(start).Seconds()

	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Split(body, false, 0); err != nil {
			b.Fatal(err)
		}
	}
	ours := float64(b.N*len(body)) / b.Elapsed().Seconds()
	b.ReportMetric(baseline/1e6, "baseline_MB/s")
	b.ReportMetric(ours/baseline, "x_baseline")
}

// TestSkipPlain8 checks the word-at-a-time skip against the byte table: it
// never passes a byte that needs attention, and stops within 8 bytes of the
// first one (or of the end).
func TestSkipPlain8(t *testing.T) {
	for c := range 256 {
		for pos := range 20 {
			b := bytes.Repeat([]byte{'a'}, 24)
			b[pos] = byte(c)
			i := skipPlain8(b, 0)
			first := len(b)
			for j, x := range b {
				if !plain[x] {
					first = j
					break
				}
			}
			if i > first || (first < len(b) && first-i >= 8) || (first == len(b) && len(b)-i >= 8) {
				t.Fatalf("byte %#x at %d: skipped to %d, first byte needing attention at %d", c, pos, i, first)
			}
		}
	}
}
