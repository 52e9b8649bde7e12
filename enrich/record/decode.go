package record

import (
	"fmt"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The compact decoder reads a Decision from the JSON enrich publishes (the
// canonical bytes of AppendCanonical) directly, without reflection per call:
// the general decoder (encoding/json/v2) was the largest share of the store's
// per-record CPU (bench/PROFILE.md, issue 17). It is compiled once from the
// Go type, like the canonical encoder.
//
// It reads a subset of JSON and says so when a value is outside it; the
// caller then decodes with the general decoder, which also produces the
// error for a malformed value. Within the subset its result is exactly the
// general decoder's (encoding/json/v2 with default options into a zero
// Decision): TestDecodeCompactMatchesV2 and FuzzDecodeCompact check that.
// The subset is:
//
//   - no whitespace between tokens, nothing after the top-level object;
//   - member names without escapes, each a field's exact JSON name, at most
//     once per object (any order; an unknown name is outside the subset);
//   - strings of valid UTF-8 with no control byte, escaped only with \" \\
//     \/ \b \f \n \r \t or a \uXXXX that is not a surrogate;
//   - integers as -?(0|[1-9][0-9]*) within the field's range; floats as a
//     JSON number that strconv.ParseFloat takes without a range error;
//   - null only where the Go value has a nil (pointer, slice) or for a Time;
//     a Time string is what time.Parse(time.RFC3339Nano) accepts.

// DecodeCompact fills d, which must be the zero Decision, from value and
// reports whether value was within the subset above. When it returns false,
// d holds part of value and must be zeroed again before another decode.
//
// Strings that hold no escape are substrings of value, not copies: value
// must not change while d's strings are in use (string(b) of a []byte that
// will change).
func DecodeCompact(value string, d *Decision) bool {
	decodeOnce.Do(compileDecode)
	if decodeErr != nil {
		return false
	}
	dec := compactDecoder{s: value}
	return decodeDecision(&dec, unsafe.Pointer(d)) && dec.i == len(dec.s)
}

// DecodeCanonical is DecodeCompact that also reports whether value is, byte
// for byte, d's canonical encoding (d.AppendCanonical(nil)) — proven while
// decoding, without encoding d. ok is DecodeCompact's result, on the same d.
// canonical is never true for a value that is not d's canonical encoding;
// false says only that the decoder did not prove it (an integer beyond
// ±2^53, which the encoder writes as the double it becomes), so a caller
// that must know encodes d and compares, as before.
//
// The proof, value by value, beside what DecodeCompact already requires
// (no whitespace, nothing after the object, strings of valid UTF-8 without
// a raw control byte, integers without leading zeros or -0):
//
//   - every member of every object present, in the canonical order (the
//     encoder writes them all, sorted), each name written as the encoder
//     writes it;
//   - strings escaped only where and as the encoder escapes them (\" \\ \b
//     \f \n \r \t, \u00xx in lower case for the other control characters);
//   - an integer within ±2^53 (it reads back as its own decimal digits);
//   - a float written as the encoder writes the double it reads as, and a
//     time as it writes the Time it reads as (compared byte for byte with
//     the encoder's own functions, appendFinite and appendLayout);
//   - null, [] and lists as the encoder writes a nil pointer or slice, an
//     empty slice and a slice's elements.
//
// Every input of the decoder's tests and of FuzzDecodeCompact is checked
// for soundness (whenever canonical is true, d.AppendCanonical gives value);
// TestDecodeCanonical also checks that every canonical value of a record
// without an integer beyond ±2^53 is proven.
func DecodeCanonical(value string, d *Decision) (ok, canonical bool) {
	decodeOnce.Do(compileDecode)
	canonOnce.Do(compileCanonical)
	if decodeErr != nil {
		return false, false
	}
	dec := compactDecoder{s: value, canon: canonErr == nil && decodeProvable}
	ok = decodeDecision(&dec, unsafe.Pointer(d)) && dec.i == len(dec.s)
	return ok, ok && dec.canon
}

type compactDecoder struct {
	s string
	i int
	// floats is where the *float64s of one record point: one allocation
	// for a record's dozen, not one each.
	floats []float64
	// canon is DecodeCanonical's proof so far: true while every value read
	// is written as the canonical encoder writes it. Once false (and always
	// in DecodeCompact) nothing more is checked.
	canon bool
}

// decodeFn reads one value into the Go value at p and reports whether it was
// within the subset.
type decodeFn func(dec *compactDecoder, p unsafe.Pointer) bool

var (
	decodeOnce     sync.Once
	decodeDecision decodeFn
	decodeErr      error
	// decodeProvable: every struct's members, in the order they are looked
	// for, are the canonical encoder's, named as it writes them (checked
	// when compiling; without it DecodeCanonical proves nothing).
	decodeProvable = true
)

func compileDecode() {
	defer func() {
		if r := recover(); r != nil {
			decodeErr = fmt.Errorf("record: compact decoder: %v", r)
		}
	}()
	decodeDecision = compileDecodeType(reflect.TypeFor[Decision]())
}

// compileDecodeType returns the decoder of type t; it supports the types
// compileType (the canonical encoder) does.
func compileDecodeType(t reflect.Type) decodeFn {
	switch t {
	case timeTypeCanon:
		return decodeTime
	case floatPtrCanon:
		return func(dec *compactDecoder, p unsafe.Pointer) bool {
			if dec.null() {
				*(**float64)(p) = nil
				return true
			}
			f, ok := dec.float()
			if !ok {
				return false
			}
			if len(dec.floats) == cap(dec.floats) {
				dec.floats = make([]float64, 0, 16)
			}
			dec.floats = append(dec.floats, f)
			*(**float64)(p) = &dec.floats[len(dec.floats)-1]
			return true
		}
	}
	switch t.Kind() {
	case reflect.String:
		return func(dec *compactDecoder, p unsafe.Pointer) bool {
			s, ok := dec.string()
			*(*string)(p) = s
			return ok
		}
	case reflect.Bool:
		return func(dec *compactDecoder, p unsafe.Pointer) bool {
			switch {
			case dec.literal("true"):
				*(*bool)(p) = true
			case dec.literal("false"):
				*(*bool)(p) = false
			default:
				return false
			}
			return true
		}
	case reflect.Int32:
		return func(dec *compactDecoder, p unsafe.Pointer) bool {
			v, ok := dec.int(32)
			*(*int32)(p) = int32(v)
			return ok
		}
	case reflect.Int64:
		return func(dec *compactDecoder, p unsafe.Pointer) bool {
			v, ok := dec.int(64)
			*(*int64)(p) = v
			return ok
		}
	case reflect.Int:
		return func(dec *compactDecoder, p unsafe.Pointer) bool {
			v, ok := dec.int(strconv.IntSize)
			*(*int)(p) = int(v)
			return ok
		}
	case reflect.Uint32:
		return func(dec *compactDecoder, p unsafe.Pointer) bool {
			v, ok := dec.int(64)
			if !ok || v < 0 || v > 1<<32-1 {
				return false
			}
			*(*uint32)(p) = uint32(v)
			return true
		}
	case reflect.Float64:
		return func(dec *compactDecoder, p unsafe.Pointer) bool {
			f, ok := dec.float()
			*(*float64)(p) = f
			return ok
		}
	case reflect.Slice:
		return compileDecodeSlice(t)
	case reflect.Struct:
		return compileDecodeStruct(t)
	}
	panic(fmt.Sprintf("type %s (%s) is not supported", t, t.Kind()))
}

// compileDecodeSlice: null is a nil slice, [] an empty one (as
// encoding/json/v2 leaves them).
func compileDecodeSlice(t reflect.Type) decodeFn {
	et := t.Elem()
	elem := compileDecodeType(et)
	size := et.Size()
	// Backing arrays of 2, 4, …, 64 elements are allocated as array types
	// (one allocation each; reflect.MakeSlice makes two), larger ones as
	// slices.
	var arrays []reflect.Type
	for n := 2; n <= 64; n *= 2 {
		arrays = append(arrays, reflect.ArrayOf(n, et))
	}
	alloc := func(n int) unsafe.Pointer { // n a power of two ≥ 2
		if k := bits.TrailingZeros(uint(n)) - 1; k < len(arrays) {
			return reflect.New(arrays[k]).UnsafePointer()
		}
		return reflect.MakeSlice(t, n, n).UnsafePointer()
	}
	return func(dec *compactDecoder, p unsafe.Pointer) bool {
		h := (*sliceHeader)(p)
		if dec.null() {
			*h = sliceHeader{}
			return true
		}
		if !dec.byte('[') {
			return false
		}
		if dec.byte(']') {
			*h = sliceHeader{data: unsafe.Pointer(&zeroArray)}
			return true
		}
		// Elements are decoded in place into a fresh, zeroed backing array,
		// doubled when full (a record's lists are short).
		*h = sliceHeader{data: alloc(2), cap: 2}
		for {
			if h.len == h.cap {
				grown := sliceHeader{data: alloc(2 * h.cap), len: h.len, cap: 2 * h.cap}
				reflect.Copy(reflect.NewAt(t, unsafe.Pointer(&grown)).Elem(), reflect.NewAt(t, unsafe.Pointer(h)).Elem())
				*h = grown
			}
			h.len++
			if !elem(dec, unsafe.Add(h.data, uintptr(h.len-1)*size)) {
				return false
			}
			if !dec.byte(',') {
				break
			}
		}
		return dec.byte(']')
	}
}

// zeroArray is where an empty, non-nil slice points (as the runtime's
// zero-length allocations do).
var zeroArray [0]byte

type decodeMember struct {
	name string
	key  string // "name": as the member's start reads in the input
	off  uintptr
	dec  decodeFn
}

func compileDecodeStruct(t reflect.Type) decodeFn {
	var ms []decodeMember
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if strings.ContainsAny(name, "\"\\") {
			panic(fmt.Sprintf("field %s.%s: JSON name %q needs escapes", t, sf.Name, name))
		}
		ms = append(ms, decodeMember{name: name, key: `"` + name + `":`, off: sf.Offset, dec: compileDecodeType(sf.Type)})
		var e canonEncoder // the name as the canonical encoder writes it
		e.string(name)
		if string(e.b)+":" != ms[len(ms)-1].key {
			decodeProvable = false
		}
	}
	if len(ms) > 64 {
		panic(fmt.Sprintf("type %s has more than 64 members", t))
	}
	// The canonical order first: a member is looked for after the previous
	// one, so enrich's values match at the first try.
	sortCanonical(ms)
	return func(dec *compactDecoder, p unsafe.Pointer) bool {
		if !dec.byte('{') {
			return false
		}
		if dec.byte('}') {
			if len(ms) > 0 {
				dec.canon = false // the encoder writes every member
			}
			return true
		}
		var seen uint64
		next := 0
		for {
			k := -1
			if next < len(ms) && strings.HasPrefix(dec.s[dec.i:], ms[next].key) {
				// The expected member: its name and colon, byte for byte
				// (a name without escapes, so exactly that name).
				k = next
				dec.i += len(ms[k].key)
			} else {
				dec.canon = false // not the next member in canonical order
				name, ok := dec.name()
				if !ok || !dec.byte(':') {
					return false
				}
				for j := range ms {
					if m := (next + j) % len(ms); ms[m].name == name {
						k = m
						break
					}
				}
			}
			if k < 0 || seen&(1<<k) != 0 {
				return false // unknown or repeated: the general decoder's case
			}
			seen |= 1 << k
			if !ms[k].dec(dec, unsafe.Add(p, ms[k].off)) {
				return false
			}
			next = k + 1
			if dec.byte(',') {
				continue
			}
			if next != len(ms) {
				dec.canon = false // a member is missing
			}
			return dec.byte('}')
		}
	}
}

func sortCanonical(ms []decodeMember) {
	// insertion sort: a few dozen members, once
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && compareUTF16(ms[j-1].name, ms[j].name) > 0; j-- {
			ms[j-1], ms[j] = ms[j], ms[j-1]
		}
	}
}

func decodeTime(dec *compactDecoder, p unsafe.Pointer) bool {
	if dec.null() {
		*(*Time)(p) = 0
		return true
	}
	start := dec.i
	s, ok := dec.string()
	if !ok {
		return false
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return false
	}
	t := TimeOf(v)
	*(*Time)(p) = t
	if dec.canon {
		// The encoder writes the layout between quotes, and the zero Time
		// as null. The bytes as written are compared, not s.
		var buf [32]byte
		dec.canon = t != 0 && string(t.appendLayout(buf[:0])) == dec.s[start+1:dec.i-1]
	}
	return true
}

func (dec *compactDecoder) byte(c byte) bool {
	if dec.i < len(dec.s) && dec.s[dec.i] == c {
		dec.i++
		return true
	}
	return false
}

func (dec *compactDecoder) literal(lit string) bool {
	if len(dec.s)-dec.i >= len(lit) && dec.s[dec.i:dec.i+len(lit)] == lit {
		dec.i += len(lit)
		return true
	}
	return false
}

func (dec *compactDecoder) null() bool { return dec.literal("null") }

// name reads a member name: a string without escapes.
func (dec *compactDecoder) name() (string, bool) {
	s := dec.s
	if dec.i >= len(s) || s[dec.i] != '"' {
		return "", false
	}
	for i := dec.i + 1; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			n := s[dec.i+1 : i]
			dec.i = i + 1
			return n, true
		}
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			return "", false // no field's name has one
		}
	}
	return "", false
}

// string reads a string value. Without escapes it is a substring of the
// input; with them, a new string.
func (dec *compactDecoder) string() (string, bool) {
	s := dec.s
	if dec.i >= len(s) || s[dec.i] != '"' {
		return "", false
	}
	start := dec.i + 1
	for i := start; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			dec.i = i + 1
			return s[start:i], true
		case c == '\\':
			return dec.unescape(start, i)
		case c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			i += n
		}
	}
	return "", false
}

// unescape reads the rest of a string that has an escape at esc; the string's
// bytes start at start.
func (dec *compactDecoder) unescape(start, esc int) (string, bool) {
	s := dec.s
	b := make([]byte, 0, esc-start+16)
	b = append(b, s[start:esc]...)
	for i := esc; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			dec.i = i + 1
			return unsafe.String(unsafe.SliceData(b), len(b)), true
		case c == '\\':
			if i+1 >= len(s) {
				return "", false
			}
			switch s[i+1] {
			case '/':
				dec.canon = false // the encoder writes '/' as it is
				b = append(b, '/')
			case '"', '\\':
				b = append(b, s[i+1])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				if i+6 > len(s) {
					return "", false
				}
				v, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
				if err != nil || utf16.IsSurrogate(rune(v)) {
					return "", false // surrogates: the general decoder's case
				}
				if dec.canon && !canonicalU(s[i+2:i+6], v) {
					dec.canon = false
				}
				b = utf8.AppendRune(b, rune(v))
				i += 6
				continue
			default:
				return "", false
			}
			i += 2
		case c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			b = append(b, s[i:i+n]...)
			i += n
		}
	}
	return "", false
}

// number returns the JSON number at the input (RFC 8259 §6 grammar) and
// whether it is an integer (no fraction, no exponent).
func (dec *compactDecoder) number() (num string, integer, ok bool) {
	s, i := dec.s, dec.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	default:
		return "", false, false
	}
	integer = true
	if i < len(s) && s[i] == '.' {
		integer = false
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return "", false, false
		}
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integer = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return "", false, false
		}
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	}
	num = s[dec.i:i]
	dec.i = i
	return num, integer, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// int reads an integer that fits in bits; "-0" is outside the subset.
func (dec *compactDecoder) int(bits int) (int64, bool) {
	num, integer, ok := dec.number()
	if !ok || !integer || num == "-0" {
		return 0, false
	}
	v, err := strconv.ParseInt(num, 10, bits)
	if dec.canon && (v < -maxExact || v > maxExact) {
		dec.canon = false // the encoder writes it as a double
	}
	return v, err == nil
}

func (dec *compactDecoder) float() (float64, bool) {
	num, _, ok := dec.number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return f, false
	}
	if dec.canon {
		var buf [32]byte
		dec.canon = string(appendFinite(buf[:0], f)) == num
	}
	return f, true
}

// canonicalU reports whether hex, the four digits of a \u escape of v, is
// how the canonical encoder escapes v: only a control character that has no
// short escape, in lower case.
func canonicalU(hex string, v uint64) bool {
	switch v {
	case '\b', '\f', '\n', '\r', '\t':
		return false
	}
	return v < 0x20 && hex[0] == '0' && hex[1] == '0' && hex[2] == hexDigits[v>>4] && hex[3] == hexDigits[v&0xf]
}
