package record

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestAppendLayout: Time's direct formatter writes what time.Format writes,
// at the edges of its range, of years, leap days and centuries, and on
// random instants across the whole int64 range.
func TestAppendLayout(t *testing.T) {
	check := func(v Time) {
		t.Helper()
		got := string(v.appendLayout(nil))
		if want := v.Std().Format(timeLayout); got != want {
			t.Fatalf("Time(%d): %s, want %s", int64(v), got, want)
		}
	}
	for _, v := range []int64{1, 999, 1000, 59999, 86399999, 86400000, 951782400000, 951868799999, 4107542399999,
		4107542400000, 946684799999, 946684800000, 1763805600020, maxFastTime - 1, maxFastTime, maxFastTime + 1,
		-1, -86400000, -62135596800000, math.MaxInt64 / 1000, math.MinInt64 / 1000} {
		check(Time(v))
	}
	// The first and last milliseconds of every day from 1970 to 2500, and
	// of the last days before 10000.
	for day := int64(0); day < 194000; day++ {
		check(Time(day * 86400000))
		check(Time(day*86400000 + 86399999))
	}
	for day := int64(maxFastTime/86400000 - 800); day < maxFastTime/86400000; day++ {
		check(Time(day*86400000 + 43210987))
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		check(Time(rng.Int64N(maxFastTime + 1000)))
		check(Time(rng.Int64() / 1000))
	}
}

// referenceString is canonEncoder.string before the eight-byte skip (main
// ec0032a), the reference the new one must agree with.
func referenceString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// TestCanonicalString: every byte value at every position of strings of 1
// to 24 bytes (and pairs of them, so that a multi-byte rune spans an
// eight-byte word), and random strings, encode as the reference encodes.
func TestCanonicalString(t *testing.T) {
	check := func(s string) {
		t.Helper()
		e := canonEncoder{b: []byte("x")}
		e.string(s)
		if want := referenceString([]byte("x"), s); !bytes.Equal(e.b, want) {
			t.Fatalf("string(%q) = %s, want %s", s, e.b, want)
		}
	}
	for n := 1; n <= 24; n++ {
		for pos := range n {
			for c := range 256 {
				for _, fill := range []byte{'a', ' ', 0x7f} {
					b := bytes.Repeat([]byte{fill}, n)
					b[pos] = byte(c)
					check(string(b))
					if pos+1 < n {
						for _, c2 := range []byte{0x80, 0xbf, 0xa9, '"', 0} {
							b[pos+1] = c2
							check(string(b))
						}
					}
				}
			}
		}
	}
	for _, s := range specialStrings {
		check(s)
		check(strings.Repeat(s, 5))
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100000 {
		check(randString(rng) + strings.Repeat("0123456789abcdef", rng.IntN(5)) + randString(rng))
	}
}
