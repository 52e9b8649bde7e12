package event

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/auditline/auditline/enrich/record"
)

// unmarshal decodes with encoding/json/v2 semantics (github.com/go-json-experiment/json,
// the code that became encoding/json/v2): about twice as fast as
// encoding/json on these payloads, measured in enrich/bench_test.go. Duplicate
// names (the last wins, as in Python) and invalid UTF-8 are tolerated, as
// encoding/json did: LiteLLM's bytes are evidence, not input to refuse.
func unmarshal(b []byte, v any) error { return jsonv2.Unmarshal(b, v, decodeOptions) }

var decodeOptions = jsonv2.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// The flex types accept the several spellings LiteLLM uses for one value. None
// of them returns an error: a value of an unexpected shape decodes as unknown.

// flexString is a string that may arrive as a number, a bool or null. Objects
// and arrays decode as "".
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	*s = ""
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 {
			// No escapes (the common case): the bytes between the quotes are
			// the string; encoding/json has validated them already.
			*s = flexString(pyNone(string(b[1 : len(b)-1])))
			return nil
		}
		var v string
		if unmarshal(b, &v) == nil {
			*s = flexString(pyNone(v))
		}
	case 'n', '{', '[':
	default: // number, true, false
		*s = flexString(b)
	}
	return nil
}

// pyNone maps Python's str(None) to "".
func pyNone(v string) string {
	if v == "None" {
		return ""
	}
	return v
}

// flexFloat is a number that may arrive as a string ("0.0123", "None") or as
// null; NaN and ±Inf (Python tokens, sanitised to null) are unknown.
type flexFloat struct {
	v  float64
	ok bool
}

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	*f = flexFloat{}
	if len(b) == 0 {
		return nil
	}
	s := b
	if b[0] == '"' {
		var v string
		if unmarshal(b, &v) != nil {
			return nil
		}
		s = []byte(strings.TrimSpace(v))
	}
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	*f = flexFloat{v: v, ok: true}
	return nil
}

// ptr returns the value, or nil when unknown.
func (f flexFloat) ptr() *float64 {
	if !f.ok {
		return nil
	}
	v := f.v
	return &v
}

// int returns the value as an integer count (0 when unknown or negative).
func (f flexFloat) int() int64 {
	if !f.ok || f.v < 0 || f.v > math.MaxInt64/2 {
		return 0
	}
	return int64(f.v)
}

// flexBool accepts true/false, "True"/"False"/"true"/"false", 1/0 and null.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	*f = false
	s := string(bytes.Trim(b, `"`))
	switch strings.ToLower(s) {
	case "true", "1":
		*f = true
	}
	return nil
}

// flexTime is an instant as LiteLLM writes it: epoch seconds (a number or a
// numeric string), or a datetime string (the legacy v1 dict writes Python's
// str(datetime), "2025-11-22 10:30:01.220118", which we read as UTC).
type flexTime record.Time

var pyTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
}

func (t *flexTime) UnmarshalJSON(b []byte) error {
	*t = 0
	var f flexFloat
	_ = f.UnmarshalJSON(b)
	if f.ok {
		*t = flexTime(record.TimeFromSeconds(f.v))
		return nil
	}
	var s string
	if len(b) == 0 || b[0] != '"' || unmarshal(b, &s) != nil {
		return nil
	}
	*t = flexTime(parseTime(s))
	return nil
}

func parseTime(s string) record.Time {
	for _, l := range pyTimeLayouts {
		if v, err := time.Parse(l, s); err == nil {
			return record.TimeOf(v)
		}
	}
	return 0
}

// flexStrings is a list of strings; a single string is a list of one, and
// non-string members are skipped.
type flexStrings []string

func (l *flexStrings) UnmarshalJSON(b []byte) error {
	*l = nil
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var s flexString
		_ = s.UnmarshalJSON(b)
		if s != "" {
			*l = flexStrings{string(s)}
		}
	case '[':
		if l.plainStrings(b, nil, 0) {
			return nil
		}
		var ss []string
		if unmarshal(b, &ss) == nil { // all strings: the common case
			for _, s := range ss {
				if s != "" && s != "None" {
					*l = append(*l, s)
				}
			}
			return nil
		}
		var raw []jsontext.Value
		if unmarshal(b, &raw) != nil {
			return nil
		}
		for _, r := range raw {
			var s flexString
			_ = s.UnmarshalJSON(r)
			if s != "" {
				*l = append(*l, string(s))
			}
		}
	}
	return nil
}

// plainStrings decodes the common case, an array of strings without
// escapes or bytes >= 0x80, without the general decoder: what it gives
// is what the all-strings path below gives ("" and "None" dropped). It
// reports false, having set nothing, for any other array. With t (the fast
// path; b is then the payload's bytes from off) the strings are left for
// t to copy out with the payload's other values.
func (l *flexStrings) plainStrings(b []byte, t *strs, off int) bool {
	s := scanner{b: b, i: 1}
	n := 0
	if s.peek() != ']' {
		for {
			if s.peek() != '"' {
				return false
			}
			if _, _, flags, ok := s.str(); !ok || flags != 0 {
				return false
			}
			n++
			switch s.peek() {
			case ',':
				s.i++
				continue
			case ']':
			default:
				return false
			}
			break
		}
	}
	s.i++
	if s.ws(); s.i != len(b) {
		return false
	}
	if n == 0 {
		return true
	}
	out := make(flexStrings, 0, n)
	s.i = 1
	for range n {
		s.peek()
		start, end, _, _ := s.str()
		switch v := b[start+1 : end-1]; {
		case len(v) == 0 || string(v) == "None":
		case t != nil:
			out = append(out, "")
			if !t.put((*flexString)(&out[len(out)-1]), off+start+1, off+end-1) {
				out[len(out)-1] = string(v)
			}
		default:
			out = append(out, string(v))
		}
		s.peek()
		s.i++ // ',' or ']'
	}
	if len(out) > 0 {
		*l = out
	}
	return true
}

// sanitize returns b with Python's NaN, Infinity and -Infinity tokens (outside
// strings) replaced by null, so that encoding/json accepts it. b is returned
// unchanged (not copied) when it has none, which is the common case.
func sanitize(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
		return b
	}
	out := make([]byte, 0, len(b))
	inStr, esc := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			out = append(out, c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch {
		case c == '"':
			inStr = true
			out = append(out, c)
		case bytes.HasPrefix(b[i:], []byte("NaN")):
			out = append(out, "null"...)
			i += len("NaN") - 1
		case bytes.HasPrefix(b[i:], []byte("-Infinity")):
			out = append(out, "null"...)
			i += len("-Infinity") - 1
		case bytes.HasPrefix(b[i:], []byte("Infinity")):
			out = append(out, "null"...)
			i += len("Infinity") - 1
		default:
			out = append(out, c)
		}
	}
	return out
}
