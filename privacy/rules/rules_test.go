package rules

import (
	"bytes"
	"strings"
	"testing"
)

func TestHashOf(t *testing.T) {
	h := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, rec, want string
	}{
		{"carried", `{"record_id":"x","rules_hash":"` + h + `","schema_version":1}`, h},
		{"empty (before issue 19)", `{"rules_hash":"","schema_version":1}`, ""},
		{"absent", `{"schema_version":1}`, ""},
		{"quoted inside a string is not the member", `{"note":"x\"rules_hash\":\"sha256:00","schema_version":1}`, ""},
		{"cut", `{"rules_hash":"sha256:ab`, ""},
	} {
		if got := HashOf([]byte(tc.rec)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct{ hash, want string }{
		{h, "p/rules/" + strings.Repeat("ab", 32) + ".json"},
		{"sha256:zz", ""}, {strings.Repeat("ab", 32), ""},
	} {
		got, err := Key("p/", tc.hash)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("Key(%q) = %q, %v; want %q", tc.hash, got, err, tc.want)
		}
	}
}

// TestIndexAt: indexAt finds what bytes.Index finds, in every substring of
// inputs with the needle at the edges, repeated, overlapping, cut, and the
// anchor byte everywhere.
func TestIndexAt(t *testing.T) {
	for _, s := range []string{
		"", `"rules_hash":"`, `hhh"rules_hash":"x`, `"rules_hash":"rules_hash":"`, `"rules_has"rules_hash":"`,
		`{"a":"hash","rules_hash":"h","rules_hash":"hh"}`, `"rules_hash":`, `h"rules_hash"h:"rules_hash":"h`,
	} {
		b := []byte(s)
		for i := 0; i <= len(b); i++ {
			for j := i; j <= len(b); j++ {
				if got, want := indexAt(b[i:j], rulesMember, 7), bytes.Index(b[i:j], rulesMember); got != want {
					t.Fatalf("indexAt(%q) = %d, bytes.Index = %d", b[i:j], got, want)
				}
			}
		}
	}
}
