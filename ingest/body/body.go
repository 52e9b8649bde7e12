// Package body splits an HTTP request body into its source events without
// re-encoding them: every element it returns is a byte-exact slice of the body,
// so the bytes that reach Kafka are the bytes the sender wrote (DESIGN.md §2:
// raw bytes are evidence).
//
// A body comes in one of three wire forms, told apart by its bytes alone
// (LiteLLM sends Content-Type application/json for all of them):
//
//	json_array  [ {…}, {…} ]            LiteLLM generic_api default
//	ndjson      {…}\n{…}\n{…}          LiteLLM log_format: ndjson (no trailing newline)
//	single      {…}                     LiteLLM log_format: single, alert webhooks
//
// The grammar is RFC 8259 JSON plus the three tokens Python's json.dumps writes
// for non-finite floats (NaN, Infinity, -Infinity), because LiteLLM serialises
// with json.dumps defaults and a NaN in a cost field must not cost us the event.
// Python writes nothing else outside RFC 8259, so nothing else is tolerated.
//
// Why a hand-written scanner and not encoding/json: encoding/json rejects NaN,
// and re-marshalling would change the bytes. The scanner validates the whole
// body in one pass (a body is either valid as a whole or rejected with the byte
// offset, line and column of the first error), allocates one Element per
// element, and is fuzzed against encoding/json for agreement on every input
// without the Python tokens.
package body

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Form is the wire form of a body.
type Form uint8

// Forms. The names match raw.Format.
const (
	Single Form = iota + 1
	Array
	NDJSON
)

func (f Form) String() string {
	switch f {
	case Single:
		return "single"
	case Array:
		return "json_array"
	case NDJSON:
		return "ndjson"
	}
	return "unknown"
}

// Kind is the JSON type of an element.
type Kind uint8

// Kinds of element.
const (
	Object Kind = iota + 1
	ArrayKind
	String
	Number // includes NaN, Infinity and -Infinity
	Bool
	Null
)

func (k Kind) String() string {
	switch k {
	case Object:
		return "object"
	case ArrayKind:
		return "array"
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "boolean"
	case Null:
		return "null"
	}
	return "unknown"
}

// Element is one top-level value of a body: body[Start:End] are its exact bytes,
// without surrounding whitespace or separators.
type Element struct {
	Start, End int
	Kind       Kind
}

// Bytes returns the element's bytes within b (the body it was split from).
func (e Element) Bytes(b []byte) []byte { return b[e.Start:e.End:e.End] }

// MaxDepth bounds nesting, so that a hostile body cannot exhaust the stack.
// Python's json.dumps writes at most about 1000 levels before RecursionError.
const MaxDepth = 1000

// SyntaxError reports where a body stops being valid JSON. Offset is 0-based;
// Line and Column are 1-based (Column counts bytes).
type SyntaxError struct {
	Msg    string
	Offset int
	Line   int
	Column int
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at line %d, column %d (byte offset %d): %s", e.Line, e.Column, e.Offset, e.Msg)
}

// TooManyError reports a body with more elements than allowed.
type TooManyError struct{ Limit int }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("body has more than %d events", e.Limit)
}

// Split validates b and returns its form and elements. ndjson forces NDJSON
// for a body of one value that is not an array (indistinguishable from single
// otherwise). maxElements (0 = unlimited) bounds the element count; past it
// Split returns a *TooManyError. Any other error is a *SyntaxError.
func Split(b []byte, ndjson bool, maxElements int) (Form, []Element, error) {
	s := scanner{b: b}
	s.skipBOM()
	s.ws()
	if s.i >= len(b) {
		return 0, nil, s.errf("empty body")
	}
	if b[s.i] == '[' {
		// A top-level array is the json_array form when nothing follows it.
		save := s.i
		els, err := s.array(maxElements)
		if err != nil {
			return 0, nil, err
		}
		s.ws()
		if s.i == len(b) {
			return Array, els, nil
		}
		s.i = save // more data: ndjson whose lines are arrays (each one element)
	}
	var els []Element
	for {
		start := s.i
		k, err := s.value(1)
		if err != nil {
			return 0, nil, err
		}
		if maxElements > 0 && len(els) == maxElements {
			return 0, nil, &TooManyError{Limit: maxElements}
		}
		els = append(els, Element{Start: start, End: s.i, Kind: k})
		ws := s.i
		s.ws()
		if s.i == len(b) {
			break
		}
		if bytes.IndexByte(b[ws:s.i], '\n') < 0 {
			return 0, nil, s.errf("unexpected %s after a JSON value (ndjson needs one value per line)", s.quoteCur())
		}
	}
	if len(els) == 1 && !ndjson {
		return Single, els, nil
	}
	return NDJSON, els, nil
}

// Valid reports whether b is one valid JSON value (with the Python tokens),
// surrounded by optional whitespace.
func Valid(b []byte) bool {
	s := scanner{b: b}
	s.ws()
	if _, err := s.value(1); err != nil {
		return false
	}
	s.ws()
	return s.i == len(b)
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) skipBOM() {
	if bytes.HasPrefix(s.b, []byte("\xef\xbb\xbf")) {
		s.i = 3
	}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) errf(format string, args ...any) *SyntaxError {
	line, col := 1, 1
	end := min(s.i, len(s.b))
	if nl := bytes.LastIndexByte(s.b[:end], '\n'); nl >= 0 {
		line += bytes.Count(s.b[:nl+1], []byte{'\n'})
		col = end - nl
	} else {
		col = end + 1
	}
	return &SyntaxError{Msg: fmt.Sprintf(format, args...), Offset: s.i, Line: line, Column: col}
}

func (s *scanner) quoteCur() string {
	if s.i >= len(s.b) {
		return "end of body"
	}
	c := s.b[s.i]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// array scans a top-level array and records its elements.
func (s *scanner) array(maxElements int) ([]Element, error) {
	s.i++ // '['
	var els []Element
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return els, nil
	}
	for {
		s.ws()
		start := s.i
		k, err := s.value(2)
		if err != nil {
			return nil, err
		}
		if maxElements > 0 && len(els) == maxElements {
			return nil, &TooManyError{Limit: maxElements}
		}
		els = append(els, Element{Start: start, End: s.i, Kind: k})
		s.ws()
		if s.i >= len(s.b) {
			return nil, s.errf("unexpected end of body in array (missing ']')")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return els, nil
		default:
			return nil, s.errf("unexpected %s in array (want ',' or ']')", s.quoteCur())
		}
	}
}

// value scans one value at s.i (no leading whitespace) and returns its kind.
func (s *scanner) value(depth int) (Kind, error) {
	if s.i >= len(s.b) {
		return 0, s.errf("unexpected end of body (want a value)")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return Object, s.object(depth)
	case c == '[':
		return ArrayKind, s.list(depth)
	case c == '"':
		return String, s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		if c == '-' && bytes.HasPrefix(s.b[s.i:], []byte("-Infinity")) {
			s.i += len("-Infinity")
			return Number, nil
		}
		return Number, s.number()
	case c == 't':
		return Bool, s.lit("true")
	case c == 'f':
		return Bool, s.lit("false")
	case c == 'n':
		return Null, s.lit("null")
	case c == 'N':
		return Number, s.lit("NaN")
	case c == 'I':
		return Number, s.lit("Infinity")
	}
	return 0, s.errf("unexpected %s (want a value)", s.quoteCur())
}

func (s *scanner) lit(want string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(want)) {
		return s.errf("invalid literal (want %s)", want)
	}
	s.i += len(want)
	return nil
}

func (s *scanner) object(depth int) error {
	if depth > MaxDepth {
		return s.errf("nesting deeper than %d", MaxDepth)
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.errf("unexpected %s in object (want a string key)", s.quoteCur())
		}
		if err := s.str(); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.errf("unexpected %s after object key (want ':')", s.quoteCur())
		}
		s.i++
		s.ws()
		if _, err := s.value(depth + 1); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.errf("unexpected end of body in object (missing '}')")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errf("unexpected %s in object (want ',' or '}')", s.quoteCur())
		}
	}
}

func (s *scanner) list(depth int) error {
	if depth > MaxDepth {
		return s.errf("nesting deeper than %d", MaxDepth)
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if _, err := s.value(depth + 1); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.errf("unexpected end of body in array (missing ']')")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errf("unexpected %s in array (want ',' or ']')", s.quoteCur())
		}
	}
}

// str scans a string starting at the opening quote.
func (s *scanner) str() error {
	s.i++ // '"'
	b := s.b
	for s.i < len(b) {
		// Fast path: skip the bytes that need no attention, eight at a
		// time while none of them does, then one at a time.
		s.i = skipPlain8(b, s.i)
		for s.i < len(b) && plain[b[s.i]] {
			s.i++
		}
		if s.i >= len(b) {
			break
		}
		c := b[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			if s.i+1 >= len(b) {
				s.i++
				return s.errf("unexpected end of body in string escape")
			}
			switch b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(b) {
					s.i = len(b)
					return s.errf("unexpected end of body in \\u escape")
				}
				for j := s.i + 2; j < s.i+6; j++ {
					if !isHex(b[j]) {
						s.i = j
						return s.errf("invalid %s in \\u escape", s.quoteCur())
					}
				}
				s.i += 6
			default:
				s.i++
				return s.errf("invalid escape \\%s in string", s.quoteCur())
			}
		case c < 0x20:
			return s.errf("control character %s in string (must be escaped)", s.quoteCur())
		default:
			s.i++
		}
	}
	return s.errf("unexpected end of body in string (missing '\"')")
}

// plain marks the bytes a string may hold as they are: not '"', not '\\', not
// a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipPlain8 returns the offset of the first 8-byte word at or after i in
// b that holds a byte needing attention in a string ('"', '\\' or a control
// character), or of the last incomplete word: what comes before it is plain.
// Each word is tested at once (SWAR): x has a zero byte iff
// (x - 0x01…) &^ x & 0x80… is non-zero (exact as a yes/no), for
// x = w ^ '"'… (a quote), w ^ '\\'… (a backslash) and w & 0xE0… (a byte
// below 0x20). A flagged word is left to the byte loop.
func skipPlain8(b []byte, i int) int {
	const (
		lo     = 0x0101010101010101
		hi     = 0x8080808080808080
		quote  = '"' * lo
		bslash = '\\' * lo
		ctl    = 0xE0 * lo
	)
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q, e, c := w^quote, w^bslash, w&ctl
		if ((q-lo)&^q|(e-lo)&^e|(c-lo)&^c)&hi != 0 {
			break
		}
	}
	return i
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans an RFC 8259 number.
func (s *scanner) number() error {
	b := s.b
	if b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(b) && b[s.i] == '0':
		s.i++
	case s.i < len(b) && isDigit(b[s.i]):
		for s.i < len(b) && isDigit(b[s.i]) {
			s.i++
		}
	default:
		return s.errf("invalid number: %s where a digit belongs", s.quoteCur())
	}
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		if s.i >= len(b) || !isDigit(b[s.i]) {
			return s.errf("invalid number: %s after the decimal point", s.quoteCur())
		}
		for s.i < len(b) && isDigit(b[s.i]) {
			s.i++
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(b) || !isDigit(b[s.i]) {
			return s.errf("invalid number: %s in the exponent", s.quoteCur())
		}
		for s.i < len(b) && isDigit(b[s.i]) {
			s.i++
		}
	}
	return nil
}
