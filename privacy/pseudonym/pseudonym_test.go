package pseudonym

import (
	"strings"
	"testing"
)

const secret = "0123456789abcdef0123456789abcdef"

// TestKnownVectors: pseudonyms computed independently with
// printf 'auditline.pseudonym.v1\0VALUE' | openssl dgst -sha256 -hmac SECRET.
func TestKnownVectors(t *testing.T) {
	for _, tc := range []struct {
		secret, keyID, value, want string
	}{
		{secret, "k1", "dana.kim@acme.example", "ps:k1:82abd54b6e31842750d92e59e5981962a43ad630734425c6c1a83c28c04be24e"},
		{secret, "k1", "10.12.4.31", "ps:k1:61253d76925890a74dc23aa4d86cca42db81e87a0e459e048c8c592e61395955"},
		{secret, "2026-01", "customer-8812", "ps:2026-01:616b8b0929d8e9413feffa48e66d4aa4683b8cf94ced92dcfa90e831a0a9a81d"},
		{"fedcba9876543210fedcba9876543210", "k2", "dana.kim@acme.example", "ps:k2:fd50f37e741b91dea94cd7015006233a2d41e721e95a1c7f0e4635acef0099c6"},
		{secret, "k1", "", ""},
	} {
		p := New(Config{Fields: []string{"identity.user_email"}, KeyID: tc.keyID, Secret: tc.secret})
		if got := p.Of(tc.value); got != tc.want {
			t.Errorf("Of(%q) under %s = %q, want %q", tc.value, tc.keyID, got, tc.want)
		}
	}
}

func TestField(t *testing.T) {
	p := New(Config{Fields: []string{"identity.user_email", "identity.requester_ip"}, KeyID: "k1", Secret: secret})
	mail := "dana.kim@acme.example"
	ps := p.Field("identity.user_email", mail)
	for _, tc := range []struct {
		name, field, value, want string
	}{
		{"configured field", "identity.user_email", mail, ps},
		{"same value, other configured field: same pseudonym", "identity.requester_ip", mail, ps},
		{"field not configured stays clear", "identity.user_id", "u-4821", "u-4821"},
		{"empty stays empty", "identity.user_email", "", ""},
		{"idempotent", "identity.user_email", ps, ps},
		{"case matters", "identity.user_email", strings.ToUpper(mail), p.Of(strings.ToUpper(mail))},
	} {
		if got := p.Field(tc.field, tc.value); got != tc.want {
			t.Errorf("%s: Field(%s, %q) = %q, want %q", tc.name, tc.field, tc.value, got, tc.want)
		}
	}
	if p.Of(strings.ToUpper(mail)) == ps {
		t.Error("case folded")
	}
	var off *Pseudonymiser
	if New(Config{KeyID: "k1", Secret: secret}) != nil || off.Field("identity.user_email", mail) != mail || off.Has("identity.user_email") {
		t.Error("no fields: want a nil Pseudonymiser that changes nothing")
	}
	other := New(Config{Fields: []string{"identity.user_email"}, KeyID: "k2", Secret: secret})
	if other.Of(mail) == ps || other.Is(ps) || !p.Is(ps) {
		t.Error("key ids must tell pseudonyms apart")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want []string // substrings of the error; none: valid
	}{
		{"off", Config{}, nil},
		{"off, secret set", Config{Secret: "short"}, nil},
		{"valid", Config{Fields: Fields, KeyID: "2026-01.a_b", Secret: secret}, nil},
		{"unknown and twice", Config{Fields: []string{"identity.email", "identity.end_user", "identity.end_user"}, KeyID: "k1", Secret: secret},
			[]string{`p.fields: unknown field "identity.email"`, `"identity.end_user" listed twice`}},
		{"no key id", Config{Fields: []string{"identity.end_user"}, Secret: secret}, []string{"p.key_id:"}},
		{"bad key id", Config{Fields: []string{"identity.end_user"}, KeyID: "K:1", Secret: secret}, []string{"p.key_id:"}},
		{"short secret", Config{Fields: []string{"identity.end_user"}, KeyID: "k1", Secret: "s3cr3t-short"}, []string{"p.secret: 12 bytes, want at least 32"}},
	} {
		err := tc.c.Validate("p.")
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: valid, want %q", tc.name, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", tc.name, err, w)
			}
		}
		if tc.c.Secret != "" && strings.Contains(err.Error(), tc.c.Secret) {
			t.Errorf("%s: the error prints the secret: %v", tc.name, err)
		}
	}
}

func BenchmarkOf(b *testing.B) {
	p := New(Config{Fields: Fields, KeyID: "k1", Secret: secret})
	for b.Loop() {
		p.Of("dana.kim@acme.example")
	}
}
