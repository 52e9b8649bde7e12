// Package auth authenticates ingest's webhook senders: bearer tokens with
// scopes, and an optional HMAC-SHA256 signature of the body.
//
// Tokens are configured by their SHA-256 (or read at start from an
// environment variable or a file), so no secret needs to sit in the YAML, and
// several may be valid at once so that a sender's token can be rotated
// without downtime. A presented token is hashed and compared with every
// configured hash in constant time, without an early exit. Each token carries
// scopes that name the endpoints it may post to: the dashboards' token gets
// only "oversight", so a leaked dashboard token cannot forge LiteLLM traffic.
//
// Failures map to HTTP as RFC 6750 says: no token → 401, unknown token → 401
// (invalid_token), a token without the endpoint's scope → 403
// (insufficient_scope). A bad or missing required signature is 401. Tokens and
// secrets are never logged and never echoed; a token is named by its
// configured Name only.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
)

// Scope names what a token may post.
type Scope string

// Scopes, one per endpoint family.
const (
	ScopeLiteLLM   Scope = "litellm"   // POST /v1/litellm (generic_api callbacks)
	ScopeAlerts    Scope = "alerts"    // POST /v1/litellm/alerts (budget alert webhooks)
	ScopeAudit     Scope = "audit"     // POST /v1/litellm/audit (audit_log_callbacks)
	ScopeGateway   Scope = "gateway"   // POST /v1/gateway
	ScopeOversight Scope = "oversight" // POST /v1/oversight
	ScopeAccess    Scope = "access"    // POST /v1/access (the access log of tools that read the audit trail)
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeLiteLLM, ScopeAlerts, ScopeAudit, ScopeGateway, ScopeOversight, ScopeAccess}

// AnyReviewer as Token.Reviewer lets a token name any reviewer: for a tool
// that authenticates its own users and names the one logged in (the
// dashboards), never for a person's token.
const AnyReviewer = "*"

// DefaultSignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>".
const DefaultSignatureHeader = "X-Auditline-Signature"

// Token is one accepted bearer token. Exactly one of SHA256, Env and File
// gives the token.
type Token struct {
	// Name identifies the token in logs and metrics (never the token itself).
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token: printf %s "$TOKEN" | sha256sum.
	SHA256 string `yaml:"sha256"`
	// Env names an environment variable that holds the token, read at start.
	Env string `yaml:"env"`
	// File names a file that holds the token (surrounding whitespace ignored),
	// read at start.
	File string `yaml:"file"`
	// Scopes the token may post to: litellm, alerts, audit, gateway,
	// oversight, access.
	Scopes []Scope `yaml:"scopes"`
	// Reviewer is the only reviewer (oversight events' reviewer.id, access
	// events' actor.id) this token may name; any other is refused 403
	// reviewer_mismatch. Empty means the token's name. "*" lets it name any
	// reviewer: only for a tool that authenticates its users itself (the
	// dashboards' token).
	Reviewer string `yaml:"reviewer"`
}

// HMACConfig is the optional body signature.
type HMACConfig struct {
	// Header is the request header with "sha256=<hex>" (or just the hex).
	// Empty means X-Auditline-Signature.
	Header string `yaml:"header"`
	// Required makes a missing signature a 401. When false a request without
	// the header passes, and one with a wrong signature still fails.
	Required bool `yaml:"required"`
	// Secrets are the HMAC keys; any one of them may have signed (rotation).
	// Prefer the environment: AUDITLINE_INGEST_AUTH_HMAC_SECRETS=k1,k2.
	Secrets []string `yaml:"secrets" secret:"true"`
}

// Config is the "ingest.auth" YAML section.
type Config struct {
	Tokens []Token `yaml:"tokens"`
	// QueryToken also accepts the token as the access_token query parameter
	// (RFC 6750 §2.3), for senders that cannot set headers: LiteLLM's alerting
	// webhook posts to WEBHOOK_URL with no Authorization header. Off by
	// default: URLs end up in proxies' access logs. Give such a token only the
	// alerts scope.
	QueryToken bool       `yaml:"query_token"`
	HMAC       HMACConfig `yaml:"hmac"`
}

// Validate reports every problem, each prefixed with its YAML key (below
// prefix, e.g. "ingest.auth").
func (c *Config) Validate(prefix string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(prefix+"."+format, args...)) }
	if len(c.Tokens) == 0 {
		add("tokens: empty: every request would be refused; add at least one token (name, sha256 or env or file, scopes)")
	}
	names := map[string]bool{}
	for i, t := range c.Tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			add("%s.name: empty", at)
		} else if names[t.Name] {
			add("%s.name: %q used twice", at, t.Name)
		}
		names[t.Name] = true
		n := 0
		for _, s := range []string{t.SHA256, t.Env, t.File} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			add("%s: set exactly one of sha256, env, file (got %d)", at, n)
		}
		if t.SHA256 != "" {
			if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
				add("%s.sha256: want 64 hex digits (printf %%s \"$TOKEN\" | sha256sum)", at)
			}
		}
		if len(t.Scopes) == 0 {
			add("%s.scopes: empty: the token could post nowhere (want some of %v)", at, Scopes)
		}
		for _, s := range t.Scopes {
			if !slices.Contains(Scopes, s) {
				add("%s.scopes: unknown scope %q (want some of %v)", at, s, Scopes)
			}
		}
		if len(t.Reviewer) > 256 || strings.ContainsFunc(t.Reviewer, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			add("%s.reviewer: want at most 256 printable characters (a reviewer id, or \"*\")", at)
		}
	}
	if c.HMAC.Required && len(c.HMAC.Secrets) == 0 {
		add("hmac.secrets: empty but hmac.required is true")
	}
	for i, s := range c.HMAC.Secrets {
		if len(s) < 16 {
			add("hmac.secrets[%d]: shorter than 16 bytes", i)
		}
	}
	return errors.Join(errs...)
}

// Error is an authentication failure. Reason is a short label for metrics.
type Error struct {
	Status int    // 401 or 403
	Reason string // missing_token, invalid_token, insufficient_scope, missing_signature, bad_signature
	Msg    string // safe to send to the client
}

func (e *Error) Error() string { return e.Msg }

type entry struct {
	name     string
	sum      [sha256.Size]byte
	scopes   []Scope
	reviewer string // "" for any (AnyReviewer), else the one reviewer id
}

// Sender is who authenticated a request: the token's configured name, and
// the reviewer id it is bound to ("" when it may name any).
type Sender struct {
	Name     string
	Reviewer string
}

// Authenticator checks requests. Safe for concurrent use.
type Authenticator struct {
	tokens     []entry
	queryToken bool
	header     string
	required   bool
	secrets    [][]byte
}

// New resolves the configured tokens (reading Env and File entries now) and
// returns an Authenticator. getenv is os.Getenv in production.
func New(c Config, getenv func(string) string) (*Authenticator, error) {
	a := &Authenticator{queryToken: c.QueryToken, header: c.HMAC.Header, required: c.HMAC.Required}
	if a.header == "" {
		a.header = DefaultSignatureHeader
	}
	for i, t := range c.Tokens {
		e := entry{name: t.Name, scopes: slices.Clone(t.Scopes), reviewer: t.Reviewer}
		switch t.Reviewer {
		case "":
			e.reviewer = t.Name
		case AnyReviewer:
			e.reviewer = ""
		}
		switch {
		case t.SHA256 != "":
			b, err := hex.DecodeString(t.SHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("ingest.auth.tokens[%d].sha256: want 64 hex digits", i)
			}
			copy(e.sum[:], b)
		case t.Env != "":
			v := strings.TrimSpace(getenv(t.Env))
			if v == "" {
				return nil, fmt.Errorf("ingest.auth.tokens[%d].env: %s is empty or unset", i, t.Env)
			}
			e.sum = sha256.Sum256([]byte(v))
		case t.File != "":
			b, err := os.ReadFile(t.File)
			if err != nil {
				return nil, fmt.Errorf("ingest.auth.tokens[%d].file: %w", i, err)
			}
			v := strings.TrimSpace(string(b))
			if v == "" {
				return nil, fmt.Errorf("ingest.auth.tokens[%d].file: %s is empty", i, t.File)
			}
			e.sum = sha256.Sum256([]byte(v))
		default:
			return nil, fmt.Errorf("ingest.auth.tokens[%d]: no sha256, env or file", i)
		}
		a.tokens = append(a.tokens, e)
	}
	for _, s := range c.HMAC.Secrets {
		a.secrets = append(a.secrets, []byte(s))
	}
	return a, nil
}

// Authorize checks the request's bearer token for scope need and returns the
// token's configured name.
func (a *Authenticator) Authorize(r *http.Request, need Scope) (string, error) {
	s, err := a.AuthorizeSender(r, need)
	return s.Name, err
}

// AuthorizeSender is Authorize returning the token's reviewer binding too.
func (a *Authenticator) AuthorizeSender(r *http.Request, need Scope) (Sender, error) {
	tok, ok := bearer(r)
	if !ok && a.queryToken {
		tok = r.URL.Query().Get("access_token")
		ok = tok != ""
	}
	if !ok {
		return Sender{}, &Error{Status: http.StatusUnauthorized, Reason: "missing_token", Msg: "missing bearer token (Authorization: Bearer <token>)"}
	}
	sum := sha256.Sum256([]byte(tok))
	match := -1
	for i := range a.tokens {
		// Every entry is compared, so the time taken does not depend on which
		// one (if any) matches.
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return Sender{}, &Error{Status: http.StatusUnauthorized, Reason: "invalid_token", Msg: "invalid bearer token"}
	}
	e := a.tokens[match]
	s := Sender{Name: e.name, Reviewer: e.reviewer}
	if !slices.Contains(e.scopes, need) {
		return s, &Error{Status: http.StatusForbidden, Reason: "insufficient_scope",
			Msg: fmt.Sprintf("token %q lacks scope %q", e.name, need)}
	}
	return s, nil
}

// Challenge returns the WWW-Authenticate value for a failure (RFC 6750 §3).
func Challenge(e *Error) string {
	switch e.Reason {
	case "invalid_token":
		return `Bearer realm="auditline-ingest", error="invalid_token"`
	case "insufficient_scope":
		return `Bearer realm="auditline-ingest", error="insufficient_scope"`
	}
	return `Bearer realm="auditline-ingest"`
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Signs reports whether the HMAC check applies: secrets are configured.
func (a *Authenticator) Signs() bool { return len(a.secrets) > 0 }

// VerifyBody checks the body signature, when secrets are configured.
func (a *Authenticator) VerifyBody(r *http.Request, body []byte) error {
	if len(a.secrets) == 0 {
		return nil
	}
	v := strings.TrimSpace(r.Header.Get(a.header))
	if v == "" {
		if a.required {
			return &Error{Status: http.StatusUnauthorized, Reason: "missing_signature",
				Msg: fmt.Sprintf("missing body signature header %s: sha256=<hex HMAC-SHA256 of the body>", a.header)}
		}
		return nil
	}
	v = strings.TrimPrefix(v, "sha256=")
	got, err := hex.DecodeString(v)
	if err != nil || len(got) != sha256.Size {
		return &Error{Status: http.StatusUnauthorized, Reason: "bad_signature", Msg: "malformed body signature (want sha256=<64 hex digits>)"}
	}
	ok := false
	for _, s := range a.secrets {
		m := hmac.New(sha256.New, s)
		m.Write(body)
		if hmac.Equal(m.Sum(nil), got) {
			ok = true
		}
	}
	if !ok {
		return &Error{Status: http.StatusUnauthorized, Reason: "bad_signature", Msg: "body signature does not match"}
	}
	return nil
}

// Sign returns the signature header value for body under secret (for senders
// and tests).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Hash returns the hex SHA-256 of a token, the form Token.SHA256 takes.
func Hash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}
