package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"time"
)

// Config is the "dashboard.auth" section.
type Config struct {
	// Users are the local accounts. A user named here is also how an SSO user
	// gets a role and tenants when the proxy sends no role/tenant headers.
	Users []UserConfig `yaml:"users"`
	// SSO trusts a user header from an authenticating proxy. Off when
	// user_header is empty.
	SSO SSOConfig `yaml:"sso"`
	// SessionIdle ends a session after this long without a request.
	SessionIdle time.Duration `yaml:"session_idle"`
	// SessionMax ends a session this long after login, however active.
	SessionMax time.Duration `yaml:"session_max"`
	// MaxSessions bounds the sessions kept in memory; the oldest is dropped
	// first.
	MaxSessions int `yaml:"max_sessions"`
	// Login guards password logins: concurrent hashes, rate limits, back-off.
	Login LoginConfig `yaml:"login"`
	// KeyFile holds the key (at least 32 bytes) that signs device cookies and
	// login-form tokens. Empty: a random key per process (a restart then
	// forgets every device; several replicas need one shared file).
	KeyFile string `yaml:"key_file"`
}

// UserConfig is one local account.
type UserConfig struct {
	Name string `yaml:"name"`
	// PasswordHash is argon2id (PHC form) or bcrypt; generate one with
	// 'auditline passwd'. Empty: the user can only come in by SSO.
	PasswordHash string   `yaml:"password_hash" secret:"true"`
	Role         string   `yaml:"role"`    // viewer, reviewer or admin
	Tenants      []string `yaml:"tenants"` // tenant ids, or "*" for every tenant
}

// SSOConfig configures the trusted proxy header.
type SSOConfig struct {
	// UserHeader carries the authenticated user name (e.g. X-Forwarded-User).
	UserHeader string `yaml:"user_header"`
	// RoleHeader and TenantsHeader, when set, carry the role and a
	// comma-separated tenant list; otherwise the users entry of the same name
	// supplies them, and a user without one is refused.
	RoleHeader    string `yaml:"role_header"`
	TenantsHeader string `yaml:"tenants_header"`
	// TrustedProxies are the networks (CIDR or single addresses) whose
	// requests may carry these headers. Required when user_header is set.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Enabled reports whether SSO is configured.
func (c SSOConfig) Enabled() bool { return c.UserHeader != "" }

// Defaults.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
	DefaultMaxSessions = 10000
)

// NewDefaultConfig returns the defaults: no users, no SSO.
func NewDefaultConfig() Config {
	return Config{SessionIdle: DefaultSessionIdle, SessionMax: DefaultSessionMax, MaxSessions: DefaultMaxSessions,
		Login: NewDefaultLoginConfig()}
}

// Validate reports every problem, each prefixed with prefix (the YAML path of
// this section, e.g. "dashboard.auth").
func (c *Config) Validate(prefix string) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(prefix+"."+format, a...)) }
	if len(c.Users) == 0 && !c.SSO.Enabled() {
		add("users: no users and no sso.user_header: nobody could log in")
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		switch {
		case u.Name == "":
			add("users[%d].name: must not be empty", i)
		case seen[u.Name]:
			add("users[%d].name: %q appears twice", i, u.Name)
		}
		seen[u.Name] = true
		if u.PasswordHash != "" {
			if err := CheckHash(u.PasswordHash); err != nil {
				add("users[%d].password_hash: %v", i, err)
			}
		} else if !c.SSO.Enabled() {
			add("users[%d].password_hash: empty, and sso is off: %q could never log in", i, u.Name)
		}
		if _, err := ParseRole(u.Role); err != nil {
			add("users[%d].role: %v", i, err)
		}
		if len(u.Tenants) == 0 {
			add("users[%d].tenants: empty (list tenant ids, or \"*\" for every tenant)", i)
		}
		for j, t := range u.Tenants {
			if t == "" {
				add("users[%d].tenants[%d]: must not be empty", i, j)
			}
		}
	}
	if c.SSO.Enabled() {
		if len(c.SSO.TrustedProxies) == 0 {
			add("sso.trusted_proxies: required with sso.user_header (the addresses of the SSO proxy)")
		}
		if _, err := parsePrefixes(c.SSO.TrustedProxies); err != nil {
			add("sso.trusted_proxies: %v", err)
		}
		for key, h := range map[string]string{"user_header": c.SSO.UserHeader, "role_header": c.SSO.RoleHeader, "tenants_header": c.SSO.TenantsHeader} {
			if h != "" && textproto.CanonicalMIMEHeaderKey(h) == "" {
				add("sso.%s: %q is not a header name", key, h)
			}
		}
		if (c.SSO.RoleHeader == "") != (c.SSO.TenantsHeader == "") {
			add("sso: set both role_header and tenants_header, or neither (then users supplies role and tenants)")
		}
	}
	if c.SessionIdle <= 0 {
		add("session_idle: must be positive")
	}
	if c.SessionMax < c.SessionIdle {
		add("session_max: must be at least session_idle")
	}
	if c.MaxSessions <= 0 {
		add("max_sessions: must be positive")
	}
	c.Login.validate(add)
	if c.KeyFile != "" {
		if _, err := loadKey(c.KeyFile); err != nil {
			add("%v", err)
		}
	}
	return errors.Join(errs...)
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
