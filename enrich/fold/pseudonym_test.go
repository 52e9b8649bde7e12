package fold

import (
	"strings"
	"testing"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/privacy/pseudonym"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// TestPseudonymisedIdentity: the configured identity fields of a record are
// pseudonyms, the others stay in clear; rules were judged on clear values.
func TestPseudonymisedIdentity(t *testing.T) {
	ev := lite("a", "success", "chat", 1000, func(l *event.LiteLLM) {
		l.Identity = event.Identity{KeyHash: "88dc", KeyAlias: "svc", UserID: "u-4821", UserEmail: "dana.kim@acme.example",
			TeamID: "team-1", EndUser: "customer-8812", RequesterIP: "10.12.4.31", UserAgent: "OpenAI/Python", Route: "/chat/completions"}
	})
	cfg := pseudonym.Config{Fields: []string{"identity.user_email", "identity.end_user", "identity.requester_ip", "identity.user_id"}, KeyID: "k1", Secret: testSecret}
	rules := NewDefaultRules()
	rules.Content.Pseudonymise = cfg
	if err := rules.Validate(""); err != nil {
		t.Fatal(err)
	}
	d := NewBuilder(rules).Build([]*event.Event{ev}, Context{})
	p := pseudonym.New(cfg)
	id := d.Identity
	for _, tc := range []struct{ field, got, want string }{
		{"user_email", id.UserEmail, p.Of("dana.kim@acme.example")},
		{"end_user", id.EndUser, p.Of("customer-8812")},
		{"requester_ip", id.RequesterIP, p.Of("10.12.4.31")},
		{"user_id", id.UserID, p.Of("u-4821")},
		{"key_hash (not configured)", id.KeyHash, "88dc"},
		{"key_alias (not configured)", id.KeyAlias, "svc"},
		{"team_id (never)", id.TeamID, "team-1"},
		{"user_agent (not configured)", id.UserAgent, "OpenAI/Python"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.field, tc.got, tc.want)
		}
	}
	if !strings.HasPrefix(id.UserEmail, "ps:k1:") {
		t.Errorf("user_email %q: want a ps:k1: pseudonym", id.UserEmail)
	}
	clear := NewBuilder(NewDefaultRules()).Build([]*event.Event{ev}, Context{})
	if clear.Identity.UserEmail != "dana.kim@acme.example" || clear.RulesHash == d.RulesHash {
		t.Errorf("without pseudonymisation: e-mail %q, rules hash %s (with: %s)", clear.Identity.UserEmail, clear.RulesHash, d.RulesHash)
	}
	// An access record: its actor and client.
	acc := &event.Event{ID: "access:a1", Source: "access", Key: "access:a1", Access: &event.Access{EventID: "a1", Action: "record_view", Actor: "lee", Client: "192.0.2.10"}}
	rules.Content.Pseudonymise.Fields = []string{"access.actor", "access.client"}
	da := NewBuilder(rules).Build([]*event.Event{acc}, Context{})
	if da.Access.Actor != p.Of("lee") || da.Access.Client != p.Of("192.0.2.10") {
		t.Errorf("access actor %q client %q: want pseudonyms", da.Access.Actor, da.Access.Client)
	}
}

// TestPseudonymRulesHash: the rules hash changes with the pseudonymised
// fields and the key id, not with the secret, which is never in the rules.
func TestPseudonymRulesHash(t *testing.T) {
	on := func(mod func(*pseudonym.Config)) (string, string) {
		r := NewDefaultRules()
		r.Content.Pseudonymise = pseudonym.Config{Fields: []string{"identity.user_email"}, KeyID: "k1", Secret: testSecret}
		if mod != nil {
			mod(&r.Content.Pseudonymise)
		}
		c, h, err := r.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		return string(c), h
	}
	_, hOff, _ := NewDefaultRules().Canonical()
	c1, h1 := on(nil)
	if h1 == hOff {
		t.Error("switching pseudonymisation on did not change the hash")
	}
	if !strings.Contains(c1, `"pseudonymise":{"fields":["identity.user_email"],"key_id":"k1"}`) {
		t.Errorf("canonical rules: %s", c1)
	}
	for name, mod := range map[string]func(*pseudonym.Config){
		"fields": func(c *pseudonym.Config) { c.Fields = append(c.Fields, "identity.end_user") },
		"key id": func(c *pseudonym.Config) { c.KeyID = "k2" },
	} {
		if _, h := on(mod); h == h1 {
			t.Errorf("%s changed, the hash did not", name)
		}
	}
	c2, h2 := on(func(c *pseudonym.Config) { c.Secret = strings.Repeat("z", 40) })
	if h2 != h1 {
		t.Error("the secret changed the hash: it must not be in the rules")
	}
	for _, c := range []string{c1, c2} {
		if strings.Contains(c, testSecret) || strings.Contains(c, "zzzz") || strings.Contains(c, "secret") {
			t.Errorf("the secret is in the canonical rules: %s", c)
		}
	}
	// A secret set while nothing is pseudonymised changes nothing.
	r := NewDefaultRules()
	r.Content.Pseudonymise.Secret = testSecret
	if _, h, _ := r.Canonical(); h != hOff {
		t.Error("a secret alone changed the hash")
	}
}
