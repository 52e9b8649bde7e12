package event

import (
	"encoding/binary"
	"math/bits"
)

// scanner is a validating JSON scanner over one payload, for the fast path of
// ParseLiteLLM (fast.go). It accepts exactly RFC 8259 JSON text — the
// grammar go-json-experiment's decoder accepts with the options enrich uses
// (invalid UTF-8 allowed, duplicate names allowed) — and fails on anything
// it does not handle itself: a failure never means "invalid", only "take the
// general path", which then decides. It never reads out of bounds (plain
// indexed slices, no unsafe) and never recurses deeper than maxScanDepth.
//
// Written by hand rather than taken from a library: the fastest general
// decoders either use unsafe with open memory-safety bugs on malformed input
// (goccy/go-json), or cost as much as the whole decode enrich needs
// (jsontext's token reader); enrich reads a few dozen members of a 5 KB
// payload and skips the rest, which a byte loop does at memory speed.
type scanner struct {
	b []byte
	i int

	strs *strs // fast.go: flexString values to copy out at the end (nil: each as it comes)
}

// maxScanDepth bounds nesting on the fast path (jsontext allows 10,000; the
// general path decides deeper documents).
const maxScanDepth = 256

// Flags of a scanned string.
const (
	strEscaped = 1 << iota // holds a backslash escape
	strHigh                // holds a byte >= 0x80
)

// plain marks the bytes a string holds as they are: printable ASCII other
// than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

var hexVal = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return
}()

func (s *scanner) ws() { s.i = skipWS(s.b, s.i) }

// skipWS returns the offset of the first non-space byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str scans the string starting at s.i (a '"'); it returns the string with
// its quotes as b[start:end] and its flags.
func (s *scanner) str() (start, end int, flags int, ok bool) {
	start = s.i
	if end, flags, ok = scanStr(s.b, start); ok {
		s.i = end
	}
	return start, end, flags, ok
}

// scanStr scans the string whose opening quote is b[i]: end is past its
// closing quote.
func scanStr(b []byte, i int) (end int, flags int, ok bool) {
	i++
	for {
		// Skip the bytes that need no attention, eight at a time.
		for i+8 <= len(b) {
			if t := special(binary.LittleEndian.Uint64(b[i:])); t != 0 {
				i += bits.TrailingZeros64(t) >> 3
				break
			}
			i += 8
		}
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			return 0, 0, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags, true
		case c == '\\':
			flags |= strEscaped
			n, ok := escape(b, i)
			if !ok {
				return 0, 0, false
			}
			i += n
		case c < 0x20:
			return 0, 0, false
		default:
			flags |= strHigh
			i++
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special flags (in each byte's high bit) the bytes of x, eight string bytes
// loaded little-endian, that need attention: '"', '\\', a control character
// or a byte >= 0x80. Borrows can flag bytes above a flagged one, never
// below, so the lowest flag is exact.
func special(x uint64) uint64 {
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return ((x-ones*0x20)&^x | (q-ones)&^q | (bs-ones)&^bs | x) & highs
}

// escape validates the escape at b[i] ('\\') and returns its length. A
// surrogate must be a valid pair: a lone one is left to the general path.
func escape(b []byte, i int) (int, bool) {
	if i+1 >= len(b) {
		return 0, false
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		r, ok := hex4(b, i+2)
		if !ok {
			return 0, false
		}
		if r < 0xD800 || r > 0xDFFF {
			return 6, true
		}
		if r > 0xDBFF || i+11 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
			return 0, false
		}
		if lo, ok := hex4(b, i+8); !ok || lo < 0xDC00 || lo > 0xDFFF {
			return 0, false
		}
		return 12, true
	}
	return 0, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		v := hexVal[c]
		if v < 0 {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// number scans a JSON number at s.i.
func (s *scanner) number() bool {
	i, ok := scanNumber(s.b, s.i)
	if ok {
		s.i = i
	}
	return ok
}

// scanNumber scans the JSON number at b[i:] and returns its end.
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	return i, true
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// value scans one value at s.i (after spaces) and returns it as
// b[start:end].
func (s *scanner) value(depth int) (start, end int, ok bool) {
	s.ws()
	start = s.i
	if s.i >= len(s.b) {
		return 0, 0, false
	}
	switch c := s.b[s.i]; c {
	case '"':
		_, end, _, ok = s.str()
		return start, end, ok
	case '{', '[':
		ok = s.skip(depth)
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

// open consumes the '{' at s.i; empty reports "{}" (consumed whole).
func (s *scanner) open(depth int) (empty, ok bool) {
	if depth > maxScanDepth || s.i >= len(s.b) || s.b[s.i] != '{' {
		return false, false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true, true
	}
	return false, true
}

// name reads a member's name and its ':'; the name comes without quotes. A
// name with escapes fails (the general path unescapes it before matching).
func (s *scanner) name() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start, end, flags, ok := s.str()
	if !ok || flags&strEscaped != 0 || s.peek() != ':' {
		return nil, false
	}
	s.i++
	return s.b[start+1 : end-1], true
}

// next consumes the ',' or '}' after a member; done reports '}'.
func (s *scanner) next() (done, ok bool) {
	switch s.peek() {
	case ',':
		s.i++
		return false, true
	case '}':
		s.i++
		return true, true
	}
	return false, false
}

// skip scans the object or array at s.i, whose values are at depth+1, in
// one loop: no call per member or element, the offset in a register. It
// accepts exactly what scanning it member by member accepted (the grammar
// above, an escaped member name refused, nesting bounded by maxScanDepth):
// TestSkipMatchesReference and FuzzSkip compare it with that scan, kept in
// scan_test.go.
func (s *scanner) skip(depth int) bool {
	b, i := s.b, s.i
	// open[n>>6] bit n&63: the container n levels in is an object.
	var open [(maxScanDepth + 63) / 64]uint64
	n := 0 // containers open
	for {
		// At a value (spaces skipped).
		if i >= len(b) {
			return false
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth+n+1 > maxScanDepth {
				return false
			}
			bit := uint64(1) << (n & 63)
			if c == '{' {
				open[n>>6] |= bit
			} else {
				open[n>>6] &^= bit
			}
			n++
			if i = skipWS(b, i+1); i < len(b) && b[i] == c+2 { // '}' or ']'
				i++
				n--
				break
			}
			if c == '{' {
				var ok bool
				if i, ok = skipName(b, i); !ok {
					return false
				}
			}
			continue // at the first value
		case '"':
			var ok bool
			if i, _, ok = scanStr(b, i); !ok {
				return false
			}
		case 't':
			if !hasAt(b, i, "true") {
				return false
			}
			i += 4
		case 'f':
			if !hasAt(b, i, "false") {
				return false
			}
			i += 5
		case 'n':
			if !hasAt(b, i, "null") {
				return false
			}
			i += 4
		default:
			var ok bool
			if i, ok = scanNumber(b, i); !ok {
				return false
			}
		}
		// After a value: close containers, or go on to the next value.
		for {
			if n == 0 {
				s.i = i
				return true
			}
			if i = skipWS(b, i); i >= len(b) {
				return false
			}
			obj := open[(n-1)>>6]&(1<<((n-1)&63)) != 0
			c := b[i]
			if obj && c == '}' || !obj && c == ']' {
				i++
				n--
				continue
			}
			if c != ',' {
				return false
			}
			i = skipWS(b, i+1)
			if obj {
				var ok bool
				if i, ok = skipName(b, i); !ok {
					return false
				}
			}
			break
		}
	}
}

// skipName scans a member's name at b[i] (a '"'), its ':' and the spaces
// after it; a name with escapes fails, as in name.
func skipName(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	i, flags, ok := scanStr(b, i)
	if !ok || flags&strEscaped != 0 {
		return 0, false
	}
	if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
		return 0, false
	}
	return skipWS(b, i+1), true
}

func hasAt(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}
