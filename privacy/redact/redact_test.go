package redact

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	r := New()
	for _, tc := range []struct{ name, in, want string }{
		{"email", "write to dana.kim@acme.example today", "write to [EMAIL] today"},
		{"email subdomain", "a.b+tag@mail.eu.acme.co.uk", "[EMAIL]"},
		{"aws key", "Use key AKIAIOSFODNN7EXAMPLE to pull", "Use key [SECRET] to pull"},
		{"openai key", "token sk-proj-abcdefghijklmnop1234", "token [SECRET]"},
		{"bearer", "Authorization: Bearer abcdefghijklmnopqrstuvwx", "Authorization: [SECRET]"},
		{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "[SECRET]"},
		{"card spaced", "card 4111 1111 1111 1111 exp", "card [CARD] exp"},
		{"card dashed", "4111-1111-1111-1111", "[CARD]"},
		{"not luhn", "order 4111111111111112", "order 4111111111111112"},
		{"iban", "pay DE89 3704 0044 0532 0130 00 now", "pay [IBAN] now"},
		{"iban compact", "GB82WEST12345698765432", "[IBAN]"},
		{"bad iban checksum", "DE00370400440532013000", "DE00370400440532013000"},
		{"ssn", "ssn 123-45-6789.", "ssn [SSN]."},
		{"phone intl", "call +49 30 1234 5678 now", "call [PHONE] now"},
		{"phone us", "(415) 555-0134", "[PHONE]"},
		{"ip", "from 10.12.4.31:443", "from [IP]:443"},
		{"invoice id kept", "Why did invoice INV-20931 go up this month?", "Why did invoice INV-20931 go up this month?"},
		{"short numbers kept", "3rd reminder, 45 days, 2025-11-22", "3rd reminder, 45 days, 2025-11-22"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	r := New()
	in := `[{"role": "user", "content": "mail dana@acme.example", "n": 1.50}]`
	want := `[{"content":"mail [EMAIL]","n":1.50,"role":"user"}]`
	if got := string(r.JSON([]byte(in))); got != want {
		t.Fatalf("JSON = %s, want %s", got, want)
	}
	if got := string(r.JSON([]byte("not json dana@acme.example"))); got != "not json [EMAIL]" {
		t.Fatalf("JSON(text) = %s", got)
	}
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(`[{"role":"user","content":"AKIAIOSFODNN7EXAMPLE 4111 1111 1111 1111"}]`))
	f.Add([]byte(`"DE89 3704 0044 0532 0130 00"`))
	r := New()
	f.Fuzz(func(t *testing.T, b []byte) {
		out := r.JSON(b)
		if string(r.JSON(b)) != string(out) {
			t.Fatal("not deterministic")
		}
	})
}

// unfiltered runs every pattern on every text: the redactor before the
// prefilters, which must not change any output.
func unfiltered() *Redactor {
	r := New()
	for i := range r.rules {
		r.rules[i].may = nil
	}
	return r
}

// TestPrefilterChangesNothing: with and without the may conditions the
// output is the same, on the table's texts and on texts built from the
// patterns' pieces.
func TestPrefilterChangesNothing(t *testing.T) {
	r, ref := New(), unfiltered()
	pieces := []string{"", " ", "AKIAIOSFODNN7EXAMPLE", "ASIA", "sk-", "sk-proj-abcdefghijklmnop1234", "BeArEr ", "bearer\t",
		"abcdefghijklmnopqrstuvwx", "eyJhbGciOiJIUzI1NiJ9", ".", "-", "@", "dana.kim@acme.example", "4111", "1111", "0", "9",
		"DE89", "3704", "GB82WEST12345698765432", "(415) 555-0134", "+49", "00", "10.12.4.31", "123-45-6789", "é", "\xff", "x", "Z",
		"AA00", "QQ83", "+", "(", ")", "_", "415.555.0134", "0049301234567", "x00", "4111111111111111", "1796270400014",
		"DE8937040044053201300", "chatcmpl-AwWJL3QQ83hE1gOacXCfvslE3AeuM", "edfb287e6d5fea3f446f5c91e449000ed708021da1cd9c0e7b6148e01eb6ea0f/14"}
	check := func(s string) {
		if got, want := r.String(s), ref.String(s); got != want {
			t.Fatalf("String(%q) = %q with the prefilter, %q without", s, got, want)
		}
	}
	for _, p := range pieces {
		check(p)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		var sb strings.Builder
		for range rng.IntN(8) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		check(sb.String())
	}
	// Strings over the patterns' own bytes, where near misses are dense.
	const alphabet = "0123456789012345678900 .-()+_@AZSKaz:/\t"
	for range 50000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
	// Digit groups and separators: the shapes of cards, phones, SSNs, IPs.
	all := []string{" ", ".", "-", "(", ")", "+", "/", ":", "A", "x", "_", "00", "DE", " 0"}
	for i := range 100000 {
		seps := all
		if i%2 == 1 {
			seps = all[:3] // only [ .-], shorter groups: SSNs and IPs
		}
		var sb strings.Builder
		for range 1 + rng.IntN(12) {
			if rng.IntN(2) == 0 {
				for range 1 + rng.IntN(5-i%2) {
					sb.WriteByte(byte('0' + rng.IntN(10)))
				}
			} else {
				sb.WriteString(seps[rng.IntN(len(seps))])
			}
		}
		check(sb.String())
	}
}

func FuzzString(f *testing.F) {
	f.Add("call +49 30 1234 5678 or mail dana@acme.example, key AKIAIOSFODNN7EXAMPLE")
	f.Add("Bearer abcdefghijklmnopqrstuvwx 10.12.4.31 123-45-6789 DE89 3704 0044 0532 0130 00")
	r, ref := New(), unfiltered()
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := r.String(s), ref.String(s); got != want {
			t.Fatalf("String(%q) = %q with the prefilter, %q without", s, got, want)
		}
	})
}
