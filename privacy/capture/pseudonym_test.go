package capture

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/auditline/auditline/privacy/pseudonym"
)

// TestBodyPseudonyms: with pseudonymisation on, every copy keeps the
// identity members of the configured fields as their pseudonyms — under
// every policy, full included — and the others as they were.
func TestBodyPseudonyms(t *testing.T) {
	p := pseudonym.New(pseudonym.Config{
		Fields: []string{"identity.user_email", "identity.end_user", "identity.requester_ip", "identity.subject", "access.actor"},
		KeyID:  "k1", Secret: strings.Repeat("s", 32),
	})
	lite := `{"id":"c1","messages":[{"role":"user","content":"hi dana@x.example"}],"end_user":"cust-1","user":"cust-1",` +
		`"requester_ip_address":"10.0.0.9","metadata":{"user_api_key_user_email":"dana@x.example","user_api_key_user_id":"u-1",` +
		`"requester_ip_address":"10.0.0.9","user_api_key_end_user_id":null}}`
	gw := `{"event_id":"g1","subject":{"id":"dana@x.example","tenant":"acme","roles":["a"]},"decision":"allow"}`
	acc := `{"event_id":"a1","actor":{"id":"lee","client":"192.0.2.10","role":"reviewer"}}`
	for _, tc := range []struct {
		name, body string
		policy     Policy
		gone       []string // clear values that must not remain
		kept       []string // substrings that must remain
		pseud      []string // values whose pseudonyms must appear
	}{
		{"litellm under hash", lite, Hash, []string{"dana@x.example", "cust-1", "10.0.0.9", "hi "}, []string{`"user_api_key_user_id":"u-1"`, `"user_api_key_end_user_id":null`, `"messages":"sha256:`}, []string{"dana@x.example", "cust-1", "10.0.0.9"}},
		{"litellm under full", lite, Full, []string{`"dana@x.example"`, "cust-1", "10.0.0.9"}, []string{`"content":"hi dana@x.example"`, `"user_api_key_user_id":"u-1"`}, []string{"dana@x.example", "cust-1"}},
		{"gateway subject", gw, Hash, []string{"dana@x.example"}, []string{`"tenant":"acme"`, `"roles":["a"]`}, []string{"dana@x.example"}},
		{"access actor (client not configured)", acc, Redacted, []string{`"lee"`}, []string{`"client":"192.0.2.10"`, `"role":"reviewer"`}, []string{"lee"}},
	} {
		c := New(tc.policy).WithPseudonyms(p)
		out := c.Body([]byte(tc.body))
		if !json.Valid(out) {
			t.Errorf("%s: not JSON: %s", tc.name, out)
			continue
		}
		for _, g := range tc.gone {
			if bytes.Contains(out, []byte(g)) {
				t.Errorf("%s: %q remains: %s", tc.name, g, out)
			}
		}
		for _, k := range tc.kept {
			if !bytes.Contains(out, []byte(k)) {
				t.Errorf("%s: %q lost: %s", tc.name, k, out)
			}
		}
		for _, v := range tc.pseud {
			if !bytes.Contains(out, []byte(p.Of(v))) {
				t.Errorf("%s: no pseudonym of %q: %s", tc.name, v, out)
			}
		}
		if again := c.Body(out); !bytes.Equal(again, out) {
			t.Errorf("%s: a copy of a copy changed:\n%s\n%s", tc.name, out, again)
		}
	}
	// Without pseudonyms, nothing changes for identities.
	if out := New(Full).WithPseudonyms(nil).Body([]byte(lite)); string(out) != lite {
		t.Errorf("full without pseudonyms changed the body: %s", out)
	}
	// A body that is not JSON under full stays as it is.
	if out := New(Full).WithPseudonyms(p).Body([]byte("end_user=x")); string(out) != "end_user=x" {
		t.Errorf("non-JSON under full: %s", out)
	}
}

// FuzzBodyPseudonyms: with pseudonyms, under hash and full, a body stays
// JSON, the transform is deterministic and a copy of a copy is unchanged.
func FuzzBodyPseudonyms(f *testing.F) {
	f.Add([]byte(`{"end_user":"a","metadata":{"user_api_key_user_email":"b@c.d"},"messages":[]}`))
	f.Add([]byte(`{"subject":{"id":"x","messages":"m"},"actor":{"client":"1.2.3.4","id":5}}`))
	f.Add([]byte(`{"user":null,"subject":"s","actor":[1]}`))
	p := pseudonym.New(pseudonym.Config{Fields: pseudonym.Fields, KeyID: "k1", Secret: strings.Repeat("s", 32)})
	cs := []*Capturer{New(Hash).WithPseudonyms(p), New(Full).WithPseudonyms(p)}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range cs {
			out := c.Body(b)
			if !bytes.Equal(out, c.Body(b)) {
				t.Fatal("not deterministic")
			}
			if again := c.Body(out); !bytes.Equal(again, out) {
				t.Fatalf("%s: a copy of a copy differs:\n%q\n%q", c.Policy(), out, again)
			}
			if json.Valid(b) && !json.Valid(out) {
				t.Fatalf("%s: valid JSON became invalid:\n%q\n%q", c.Policy(), b, out)
			}
		}
	})
}
