package record

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The canonical encoder writes a Decision's RFC 8785 (JCS) bytes directly,
// in one pass and without reflection per call: enrich encodes each record
// once, publishes these bytes as the decisions topic's value, and the archive
// hashes them as they are. Before, enrich marshalled with encoding/json and
// the archive parsed and re-serialised every value (jsontext Canonicalize):
// together a fifth of both stages' CPU (bench/PROFILE.md).
//
// It is compiled once from the Go type, like Fields, so a field added to
// Decision is encoded without touching this file. Its output is, byte for
// byte, jcs.Transform(json.Marshal(d)) — the bytes record v1 has always been
// hashed as — which TestCanonicalMatchesJCS checks on the golden records and
// on random ones (FuzzCanonical). The RFC 8785 rules it applies:
//
//   - object members sorted by their names' UTF-16 code units (§3.2.3);
//   - numbers in the ECMAScript shortest round-trip form (§3.2.2.3): an
//     integer beyond ±2^53 is written as the double it becomes, as any JCS
//     implementation that parses it into a double does;
//   - strings with only the escapes §3.2.2.2 requires (\", \\, \b, \f, \n,
//     \r, \t and \u00xx for the other control characters); invalid UTF-8
//     becomes U+FFFD per byte, as encoding/json writes it;
//   - nil slices and pointers are null, an empty slice is [], a zero Time
//     is null (Time.MarshalJSON).

// AppendCanonical appends the RFC 8785 (JCS) bytes of d to b: the bytes the
// archive hashes. It fails only for a NaN or infinite number, which JSON
// cannot represent (fold never produces one).
func (d *Decision) AppendCanonical(b []byte) ([]byte, error) {
	canonOnce.Do(compileCanonical)
	if canonErr != nil {
		return nil, canonErr
	}
	e := canonEncoder{b: b}
	canonDecision(&e, unsafe.Pointer(d))
	if e.err != nil {
		return nil, fmt.Errorf("canonicalise decision %s: %w", d.RecordID, e.err)
	}
	return e.b, nil
}

type canonEncoder struct {
	b   []byte
	err error
}

// encodeFn appends the value at p.
type encodeFn func(e *canonEncoder, p unsafe.Pointer)

var (
	canonOnce      sync.Once
	canonDecision  encodeFn
	canonErr       error
	errNotFinite   = errors.New("NaN or infinite number")
	timeTypeCanon  = reflect.TypeFor[Time]()
	floatPtrCanon  = reflect.TypeFor[*float64]()
	stringsTypeCan = reflect.TypeFor[[]string]()
)

func compileCanonical() {
	defer func() {
		if r := recover(); r != nil {
			canonErr = fmt.Errorf("record: canonical encoder: %v", r)
		}
	}()
	canonDecision = compileType(reflect.TypeFor[Decision]())
}

// compileType returns the encoder of type t. It panics on a type the record
// does not use (compileCanonical turns that into canonErr, and
// TestCanonicalMatchesJCS fails).
func compileType(t reflect.Type) encodeFn {
	switch {
	case t == timeTypeCanon:
		return encodeTime
	case t == floatPtrCanon:
		return func(e *canonEncoder, p unsafe.Pointer) {
			fp := *(**float64)(p)
			if fp == nil {
				e.b = append(e.b, "null"...)
				return
			}
			e.float(*fp)
		}
	case t == stringsTypeCan:
		return func(e *canonEncoder, p unsafe.Pointer) {
			ss := *(*[]string)(p)
			if ss == nil {
				e.b = append(e.b, "null"...)
				return
			}
			e.b = append(e.b, '[')
			for i, s := range ss {
				if i > 0 {
					e.b = append(e.b, ',')
				}
				e.string(s)
			}
			e.b = append(e.b, ']')
		}
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[interface{ MarshalJSON() ([]byte, error) }]()) {
		panic(fmt.Sprintf("type %s has its own MarshalJSON: teach canonical.go its form", t))
	}
	switch t.Kind() {
	case reflect.String:
		return func(e *canonEncoder, p unsafe.Pointer) { e.string(*(*string)(p)) }
	case reflect.Bool:
		return func(e *canonEncoder, p unsafe.Pointer) {
			if *(*bool)(p) {
				e.b = append(e.b, "true"...)
			} else {
				e.b = append(e.b, "false"...)
			}
		}
	case reflect.Int32:
		return func(e *canonEncoder, p unsafe.Pointer) { e.int(int64(*(*int32)(p))) }
	case reflect.Int64:
		return func(e *canonEncoder, p unsafe.Pointer) { e.int(*(*int64)(p)) }
	case reflect.Int:
		return func(e *canonEncoder, p unsafe.Pointer) { e.int(int64(*(*int)(p))) }
	case reflect.Uint32:
		return func(e *canonEncoder, p unsafe.Pointer) { e.int(int64(*(*uint32)(p))) }
	case reflect.Float64:
		return func(e *canonEncoder, p unsafe.Pointer) { e.float(*(*float64)(p)) }
	case reflect.Slice:
		elem := compileType(t.Elem())
		size := t.Elem().Size()
		return func(e *canonEncoder, p unsafe.Pointer) {
			h := (*sliceHeader)(p)
			if h.data == nil {
				e.b = append(e.b, "null"...)
				return
			}
			e.b = append(e.b, '[')
			for i := range h.len {
				if i > 0 {
					e.b = append(e.b, ',')
				}
				elem(e, unsafe.Add(h.data, uintptr(i)*size))
			}
			e.b = append(e.b, ']')
		}
	case reflect.Struct:
		return compileStruct(t)
	}
	panic(fmt.Sprintf("type %s (%s) is not supported", t, t.Kind()))
}

type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

type canonMember struct {
	prefix []byte // `,"name":` (the comma is skipped for the first member)
	off    uintptr
	enc    encodeFn
}

func compileStruct(t reflect.Type) encodeFn {
	var ms []canonMember
	names := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		if sf.Anonymous || opts != "" {
			panic(fmt.Sprintf("field %s.%s: embedded fields and json options are not supported", t, sf.Name))
		}
		if name == "" {
			name = sf.Name
		}
		if names[name] {
			panic(fmt.Sprintf("field %s.%s: duplicate JSON name %q", t, sf.Name, name))
		}
		names[name] = true
		var pre canonEncoder
		pre.b = append(pre.b, ',')
		pre.string(name)
		pre.b = append(pre.b, ':')
		ms = append(ms, canonMember{prefix: pre.b, off: sf.Offset, enc: compileType(sf.Type)})
	}
	slices.SortFunc(ms, func(a, b canonMember) int { return compareUTF16(memberName(a), memberName(b)) })
	return func(e *canonEncoder, p unsafe.Pointer) {
		e.b = append(e.b, '{')
		for i, m := range ms {
			if i == 0 {
				e.b = append(e.b, m.prefix[1:]...)
			} else {
				e.b = append(e.b, m.prefix...)
			}
			m.enc(e, unsafe.Add(p, m.off))
		}
		e.b = append(e.b, '}')
	}
}

// memberName is the member's name as written (between the quotes).
func memberName(m canonMember) string {
	return string(m.prefix[2 : len(m.prefix)-2])
}

// compareUTF16 orders strings by their UTF-16 code units (RFC 8785 §3.2.3).
func compareUTF16(a, b string) int {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	return slices.Compare(ua, ub)
}

func encodeTime(e *canonEncoder, p unsafe.Pointer) {
	t := *(*Time)(p)
	if t == 0 {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '"')
	e.b = t.appendLayout(e.b)
	e.b = append(e.b, '"')
}

// maxFastTime is 10000-01-01T00:00:00Z in Unix milliseconds: appendLayout
// writes the times after 1970-01-01T00:00:00Z and before it without
// time.Format.
const maxFastTime = 253402300800000

// appendLayout appends t.Std().Format(timeLayout): for 1970 to 9999 from
// the civil date computed directly (a record has a dozen times, and the
// layout-driven formatter was a quarter of the canonical encode),
// otherwise by time.Format. TestAppendLayout compares the two.
func (t Time) appendLayout(b []byte) []byte {
	if t <= 0 || t >= maxFastTime {
		return t.Std().AppendFormat(b, timeLayout)
	}
	ms := int64(t)
	days, rem := ms/86400000, ms%86400000
	y, m, d := civil(days)
	hh, rem := rem/3600000, rem%3600000
	mm, rem := rem/60000, rem%60000
	ss, frac := rem/1000, rem%1000
	b = append(b,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10), ':',
		byte('0'+ss/10), byte('0'+ss%10), '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10), 'Z')
	return b
}

// civil returns the proleptic Gregorian date of a day count since
// 1970-01-01 (days >= 0), by Howard Hinnant's days-to-civil algorithm
// (http://howardhinnant.github.io/date_algorithms.html#civil_from_days).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100) // [0, 365]
	mp := (5*doy + 2) / 153                  // [0, 11], from March
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// maxExact is 2^53: integers up to it are exact as doubles.
const maxExact = 1 << 53

func (e *canonEncoder) int(v int64) {
	if v >= -maxExact && v <= maxExact {
		e.b = strconv.AppendInt(e.b, v, 10)
		return
	}
	e.float(float64(v))
}

// float appends f in the ECMAScript Number.prototype.toString form (RFC 8785
// §3.2.2.3), which is also encoding/json's.
func (e *canonEncoder) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		if e.err == nil {
			e.err = errNotFinite
		}
		e.b = append(e.b, "null"...)
		return
	}
	e.b = appendFinite(e.b, f)
}

// appendFinite appends f, which is finite, as float does. DecodeCanonical
// compares a number with it.
func appendFinite(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0') // also -0
	}
	abs := math.Abs(f)
	fmtByte := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		fmtByte = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, fmtByte, -1, 64)
	if fmtByte == 'e' {
		// clean up e-09 to e-9
		n := len(b) - start
		if n >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// string appends s as a JSON string with RFC 8785's minimal escaping.
func (e *canonEncoder) string(s string) {
	e.b = append(e.b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip the bytes written as they are, eight at a time (ids and
		// hashes are most of a record's strings).
		for i+8 <= len(s) {
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			if special(x) != 0 {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			e.b = append(e.b, s[start:i]...)
			switch c {
			case '"', '\\':
				e.b = append(e.b, '\\', c)
			case '\b':
				e.b = append(e.b, '\\', 'b')
			case '\f':
				e.b = append(e.b, '\\', 'f')
			case '\n':
				e.b = append(e.b, '\\', 'n')
			case '\r':
				e.b = append(e.b, '\\', 'r')
			case '\t':
				e.b = append(e.b, '\\', 't')
			default:
				e.b = append(e.b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.b = append(e.b, s[start:i]...)
			e.b = append(e.b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	e.b = append(e.b, s[start:]...)
	e.b = append(e.b, '"')
}

// special flags (in each byte's high bit) the bytes of x, eight string
// bytes loaded little-endian, that string does not copy as they are: '"',
// '\\', a control character or a byte >= 0x80 (a rune to check). Borrows
// can flag bytes above a flagged one, never below, so x is plain exactly
// when nothing is flagged.
func special(x uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return ((x-ones*0x20)&^x | (q-ones)&^q | (bs-ones)&^bs | x) & highs
}
