// Package redact masks personal data and secrets in request and response
// content, for the capture policy "redacted" (docs/decision-record.md).
//
// Guarantee: the output is a pure function of the input (same bytes in, same
// bytes out), so a replay produces the same record; only JSON string values
// are rewritten, never keys, numbers or structure. The patterns are
// deliberately simple, documented and tested (redact_test.go): a redaction
// policy an auditor can read beats a clever one nobody can check. They err on
// the side of masking (a false positive costs a few characters of context; a
// false negative leaks data).
//
// Patterns, applied in this order (each match is replaced by its label):
//
//	[SECRET]  AWS access key ids (AKIA…/ASIA…), OpenAI-style keys (sk-…),
//	          bearer tokens, JSON Web Tokens
//	[EMAIL]   addresses like name@example.com
//	[IBAN]    IBANs (two letters, two check digits, 11–30 alphanumerics,
//	          optional single spaces) that pass the ISO 13616 mod-97 check
//	[CARD]    13–19 digits, optionally grouped by spaces or dashes, that pass
//	          the Luhn check
//	[SSN]     US social security numbers, ddd-dd-dddd
//	[PHONE]   international (+ or 00) or North-American numbers with
//	          separators, at least 8 digits
//	[IP]      IPv4 addresses
package redact

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

type rule struct {
	label string
	re    *regexp.Regexp
	check func(match string) bool // optional validator of a match
	// may is a necessary condition for a match, from counts of the text's
	// characters: when it is false the pattern cannot match and is not run.
	// Most texts (empty error messages, short words) skip every pattern:
	// Go's regexp engine was a tenth of enrich's CPU in the profile of
	// issue 17, running all seven patterns on every error message.
	may func(s string, c *counts) bool
}

// counts are what the rules' may functions look at.
type counts struct {
	digits, at, dots, dashes, upper int
	seps                            int // ' ', '.' and '-'
}

func count(s string) counts {
	var c counts
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= '0' && b <= '9':
			c.digits++
		case b >= 'A' && b <= 'Z':
			c.upper++
		case b == '@':
			c.at++
		case b == '.':
			c.dots++
			c.seps++
		case b == '-':
			c.dashes++
			c.seps++
		case b == ' ':
			c.seps++
		}
	}
	return c
}

// maySecret: every secret pattern starts with AKIA, ASIA, sk-, eyJ or
// "bearer" in any case (none of whose letters has a non-ASCII case fold).
func maySecret(s string, _ *counts) bool {
	if strings.Contains(s, "AKIA") || strings.Contains(s, "ASIA") || strings.Contains(s, "sk-") || strings.Contains(s, "eyJ") {
		return true
	}
	for i := 0; i+6 <= len(s); i++ {
		if (s[i] == 'b' || s[i] == 'B') && strings.EqualFold(s[i:i+6], "bearer") {
			return true
		}
	}
	return false
}

// digitRun reports whether s has n digits in a row, each two separated by
// at most one byte of seps: a necessary condition for [CARD] (13 digits,
// seps " -").
func digitRun(s, seps string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= '0' && b <= '9':
			if run++; run >= n {
				return true
			}
		case run > 0 && strings.IndexByte(seps, b) >= 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// one separator between two digits: the run goes on
		default:
			run = 0
		}
	}
	return false
}

// mayPhone: the international form starts with + or with 00 at a word
// boundary (after a byte that is not [0-9A-Za-z_], or at the start), and the
// North-American form has two separators from [ .-]; either has at least 8
// digits.
func mayPhone(s string, c *counts) bool {
	if c.digits < 8 {
		return false
	}
	if strings.IndexByte(s, '+') >= 0 {
		return true
	}
	// ddd[)]S ddd S dddd, S one of [ .-]: j is the first S.
	if c.seps >= 2 {
		for j := 3; j+9 <= len(s); j++ {
			if isSep(s[j]) && digitsAt(s, j+1, 3) && isSep(s[j+4]) && digitsAt(s, j+5, 4) &&
				(digitsAt(s, j-3, 3) || (j >= 4 && s[j-1] == ')' && digitsAt(s, j-4, 3))) {
				return true
			}
		}
	}
	for i := strings.Index(s, "00"); i >= 0; {
		if i == 0 || !isWord(s[i-1]) {
			return true
		}
		j := strings.Index(s[i+1:], "00")
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func isSep(b byte) bool { return b == ' ' || b == '.' || b == '-' }

// digitsAt reports whether s[i:i+n] are n digits.
func digitsAt(s string, i, n int) bool {
	if i < 0 || i+n > len(s) {
		return false
	}
	for _, b := range []byte(s[i : i+n]) {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// maySSN: ddd-dd-dddd somewhere.
func maySSN(s string, c *counts) bool {
	if c.digits < 9 || c.dashes < 2 {
		return false
	}
	for j := 3; j+8 <= len(s); j++ {
		if s[j] == '-' && s[j+3] == '-' && digitsAt(s, j-3, 3) && digitsAt(s, j+1, 2) && digitsAt(s, j+4, 4) {
			return true
		}
	}
	return false
}

// mayIP: four runs of 1 to 3 digits joined by single dots (an octet is 1
// to 3 digits between word boundaries, so a longer run is none).
func mayIP(s string, c *counts) bool {
	if c.digits < 4 || c.dots < 3 {
		return false
	}
	runs := 0
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' {
			runs, i = 0, i+1
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i <= 3 {
			runs++
		} else {
			runs = 0
		}
		if runs == 4 {
			return true
		}
		if j+1 < len(s) && s[j] == '.' && s[j+1] >= '0' && s[j+1] <= '9' {
			i = j + 1 // the chain goes on
			continue
		}
		runs, i = 0, j
	}
	return false
}

func isWord(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '_'
}

// mayIBAN: two capital letters, two digits, then at least 11 of [A-Z0-9],
// each after at most one space.
func mayIBAN(s string) bool {
	upperOrDigit := func(b byte) bool { return b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' }
	for i := 0; i+15 <= len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' || s[i+1] < 'A' || s[i+1] > 'Z' || s[i+2] < '0' || s[i+2] > '9' || s[i+3] < '0' || s[i+3] > '9' {
			continue
		}
		n := 0
		for j := i + 4; j < len(s); j++ {
			if upperOrDigit(s[j]) {
				if n++; n >= 11 {
					return true
				}
				continue
			}
			if s[j] == ' ' && j+1 < len(s) && upperOrDigit(s[j+1]) {
				continue
			}
			break
		}
	}
	return false
}

// rules is the ordered pattern set. It is built once per Redactor, never
// global, so that tests and callers cannot change each other's behaviour.
func rules() []rule {
	return []rule{
		{label: "[SECRET]", may: maySecret, re: regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bsk-[A-Za-z0-9_-]{16,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
		{label: "[EMAIL]", may: func(_ string, c *counts) bool { return c.at > 0 }, re: regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)},
		{label: "[IBAN]", may: func(s string, c *counts) bool { return c.upper >= 2 && c.digits >= 2 && len(s) >= 15 && mayIBAN(s) }, re: regexp.MustCompile(`\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b`), check: ibanValid},
		{label: "[CARD]", may: func(s string, c *counts) bool { return c.digits >= 13 && digitRun(s, " -", 13) }, re: regexp.MustCompile(`\b[0-9](?:[ -]?[0-9]){12,18}\b`), check: luhnValid},
		{label: "[SSN]", may: maySSN, re: regexp.MustCompile(`\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b`)},
		{label: "[PHONE]", may: mayPhone, re: regexp.MustCompile(`(?:\+|\b00)[0-9](?:[ .()-]?[0-9]){7,14}\b|\(?\b[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}\b`)},
		{label: "[IP]", may: mayIP, re: regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\b`)},
	}
}

// Redactor masks text. It is safe for concurrent use.
type Redactor struct{ rules []rule }

// New returns a Redactor with the documented pattern set.
func New() *Redactor { return &Redactor{rules: rules()} }

// String returns s with every match masked.
func (r *Redactor) String(s string) string {
	c := count(s)
	for _, ru := range r.rules {
		if ru.may != nil && !ru.may(s, &c) {
			continue
		}
		before := s
		if ru.check == nil {
			s = ru.re.ReplaceAllLiteralString(s, ru.label)
		} else {
			s = ru.re.ReplaceAllStringFunc(s, func(m string) string {
				if ru.check(m) {
					return ru.label
				}
				return m
			})
		}
		if s != before {
			c = count(s) // a label replaced part of the text
		}
	}
	return s
}

// JSON returns the JSON value b with every string value masked, re-encoded
// with sorted object keys. A b that is not valid JSON is masked as text.
func (r *Redactor) JSON(b []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []byte(r.String(string(b)))
	}
	out, err := json.Marshal(r.walk(v))
	if err != nil {
		return []byte(r.String(string(b)))
	}
	return out
}

func (r *Redactor) walk(v any) any {
	switch t := v.(type) {
	case string:
		return r.String(t)
	case []any:
		for i := range t {
			t[i] = r.walk(t[i])
		}
	case map[string]any:
		for k, e := range t {
			t[k] = r.walk(e)
		}
	}
	return v
}

func digits(s string) []int {
	var d []int
	for _, c := range s {
		if c >= '0' && c <= '9' {
			d = append(d, int(c-'0'))
		}
	}
	return d
}

func luhnValid(s string) bool {
	d := digits(s)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := range d {
		x := d[len(d)-1-i]
		if i%2 == 1 {
			if x *= 2; x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	return sum%10 == 0
}

func ibanValid(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	s = s[4:] + s[:4]
	rem := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}
