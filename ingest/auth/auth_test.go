package auth

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthorize(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(file, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Tokens: []Token{
		{Name: "litellm-old", SHA256: Hash("old-token"), Scopes: []Scope{ScopeLiteLLM}},
		{Name: "litellm-new", Env: "TOK", Scopes: []Scope{ScopeLiteLLM, ScopeAlerts}},
		{Name: "dashboard", File: file, Scopes: []Scope{ScopeOversight}},
	}, QueryToken: true}
	if err := cfg.Validate("ingest.auth"); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, func(k string) string { return map[string]string{"TOK": "new-token"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, header, query string
		scope               Scope
		status              int
		reason, token       string
	}{
		{"old token during rotation", "Bearer old-token", "", ScopeLiteLLM, 0, "", "litellm-old"},
		{"new token", "Bearer new-token", "", ScopeLiteLLM, 0, "", "litellm-new"},
		{"scheme case", "bearer new-token", "", ScopeAlerts, 0, "", "litellm-new"},
		{"file token", "Bearer file-token", "", ScopeOversight, 0, "", "dashboard"},
		{"query token", "", "access_token=new-token", ScopeAlerts, 0, "", "litellm-new"},
		{"no token", "", "", ScopeLiteLLM, 401, "missing_token", ""},
		{"basic auth", "Basic dXNlcjpwYXNz", "", ScopeLiteLLM, 401, "missing_token", ""},
		{"empty bearer", "Bearer ", "", ScopeLiteLLM, 401, "missing_token", ""},
		{"bad token", "Bearer nope", "", ScopeLiteLLM, 401, "invalid_token", ""},
		{"hash as token", "Bearer " + Hash("old-token"), "", ScopeLiteLLM, 401, "invalid_token", ""},
		{"wrong scope", "Bearer file-token", "", ScopeLiteLLM, 403, "insufficient_scope", "dashboard"},
		{"old token lacks alerts", "Bearer old-token", "", ScopeAlerts, 403, "insufficient_scope", "litellm-old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/x?"+tt.query, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			name, err := a.Authorize(r, tt.scope)
			if name != tt.token {
				t.Errorf("token name %q, want %q", name, tt.token)
			}
			if tt.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != tt.status || ae.Reason != tt.reason {
				t.Fatalf("error %v, want %d %s", err, tt.status, tt.reason)
			}
			for _, secret := range []string{"old-token", "new-token", "file-token"} {
				if strings.Contains(ae.Msg, secret) {
					t.Fatalf("message %q leaks a token", ae.Msg)
				}
			}
		})
	}
	off, _ := New(Config{Tokens: cfg.Tokens[:1]}, nil)
	if _, err := off.Authorize(httptest.NewRequest("POST", "/v1/x?access_token=old-token", nil), ScopeLiteLLM); err == nil {
		t.Error("query token accepted although query_token is off")
	}
}

func TestVerifyBody(t *testing.T) {
	body := []byte(`[{"id": "x"}]`)
	tests := []struct {
		name     string
		required bool
		sig      string
		reason   string
	}{
		{"good, first secret", true, Sign([]byte("secret-number-one"), body), ""},
		{"good, rotated secret", true, Sign([]byte("secret-number-two"), body), ""},
		{"bare hex", true, strings.TrimPrefix(Sign([]byte("secret-number-two"), body), "sha256="), ""},
		{"missing, required", true, "", "missing_signature"},
		{"missing, optional", false, "", ""},
		{"wrong key", false, Sign([]byte("another-secret-xx"), body), "bad_signature"},
		{"other body", true, Sign([]byte("secret-number-one"), []byte("[]")), "bad_signature"},
		{"garbage", true, "sha256=zz", "bad_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(Config{HMAC: HMACConfig{Required: tt.required, Secrets: []string{"secret-number-one", "secret-number-two"}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", "/v1/litellm", nil)
			if tt.sig != "" {
				r.Header.Set(DefaultSignatureHeader, tt.sig)
			}
			err = a.VerifyBody(r, body)
			var ae *Error
			switch {
			case tt.reason == "" && err != nil:
				t.Fatal(err)
			case tt.reason != "" && (!errors.As(err, &ae) || ae.Reason != tt.reason || ae.Status != 401):
				t.Fatalf("error %v, want 401 %s", err, tt.reason)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no tokens", Config{}, []string{"ingest.auth.tokens: empty"}},
		{"two sources", Config{Tokens: []Token{{Name: "a", SHA256: Hash("x"), Env: "X", Scopes: []Scope{ScopeLiteLLM}}}}, []string{"tokens[0]: set exactly one"}},
		{"bad hash", Config{Tokens: []Token{{Name: "a", SHA256: "abc", Scopes: []Scope{ScopeLiteLLM}}}}, []string{"tokens[0].sha256: want 64 hex"}},
		{"no scopes, no name", Config{Tokens: []Token{{SHA256: Hash("x")}}}, []string{"tokens[0].name: empty", "tokens[0].scopes: empty"}},
		{"unknown scope", Config{Tokens: []Token{{Name: "a", SHA256: Hash("x"), Scopes: []Scope{"admin"}}}}, []string{`unknown scope "admin"`}},
		{"dup names", Config{Tokens: []Token{{Name: "a", SHA256: Hash("x"), Scopes: []Scope{ScopeLiteLLM}}, {Name: "a", SHA256: Hash("y"), Scopes: []Scope{ScopeLiteLLM}}}}, []string{`tokens[1].name: "a" used twice`}},
		{"hmac required without secrets", Config{Tokens: []Token{{Name: "a", SHA256: Hash("x"), Scopes: []Scope{ScopeLiteLLM}}}, HMAC: HMACConfig{Required: true}}, []string{"hmac.secrets: empty"}},
		{"short secret", Config{Tokens: []Token{{Name: "a", SHA256: Hash("x"), Scopes: []Scope{ScopeLiteLLM}}}, HMAC: HMACConfig{Secrets: []string{"short"}}}, []string{"hmac.secrets[0]: shorter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate("ingest.auth")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := New(Config{Tokens: []Token{{Name: "a", Env: "UNSET_FOR_TEST", Scopes: []Scope{ScopeLiteLLM}}}}, func(string) string { return "" }); err == nil {
		t.Error("unset env token accepted")
	}
}
