package auth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Errors of Login.
var (
	ErrBadCredentials = errors.New("unknown user or wrong password")
	ErrThrottled      = errors.New("too many failed logins; try again later")
)

// Throttling of failed logins, per user name.
const (
	maxFailures   = 10
	failureWindow = 15 * time.Minute
	maxThrottled  = 10000
)

type user struct {
	hash      string
	principal Principal
}

// Authenticator checks passwords and trusted proxy headers. It is safe for
// concurrent use.
type Authenticator struct {
	users   map[string]user
	sso     SSOConfig
	proxies []netip.Prefix
	dummy   string // hash checked for unknown names, so they cost the same

	mu       sync.Mutex
	failures map[string]failure
	now      func() time.Time
}

type failure struct {
	n     int
	first time.Time
}

// New builds an Authenticator from a validated Config.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{users: map[string]user{}, sso: cfg.SSO, failures: map[string]failure{}, now: time.Now}
	for _, u := range cfg.Users {
		r, err := ParseRole(u.Role)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		a.users[u.Name] = user{hash: u.PasswordHash, principal: Principal{Name: u.Name, Role: r, Tenants: normTenants(u.Tenants)}}
	}
	var err error
	if a.proxies, err = parsePrefixes(cfg.SSO.TrustedProxies); err != nil {
		return nil, fmt.Errorf("sso.trusted_proxies: %w", err)
	}
	if a.dummy, err = HashPassword("auditline-dummy"); err != nil {
		return nil, err
	}
	return a, nil
}

// Login checks name and password. Every failure returns ErrBadCredentials or
// ErrThrottled, and takes one hash computation whether or not the name exists.
func (a *Authenticator) Login(name, password string) (Principal, error) {
	if a.throttled(name) {
		return Principal{}, ErrThrottled
	}
	u, ok := a.users[name]
	hash := u.hash
	if !ok || hash == "" {
		hash = a.dummy
	}
	err := CheckPassword(hash, password)
	if !ok || u.hash == "" || err != nil {
		a.fail(name)
		return Principal{}, ErrBadCredentials
	}
	a.mu.Lock()
	delete(a.failures, name)
	a.mu.Unlock()
	p := u.principal
	p.Via = "password"
	return p, nil
}

func (a *Authenticator) throttled(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.failures[name]
	if !ok {
		return false
	}
	if a.now().Sub(f.first) > failureWindow {
		delete(a.failures, name)
		return false
	}
	return f.n >= maxFailures
}

func (a *Authenticator) fail(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.failures) >= maxThrottled {
		clear(a.failures) // bounded memory beats perfect throttling under a flood of names
	}
	f := a.failures[name]
	if f.n == 0 {
		f.first = a.now()
	}
	f.n++
	a.failures[name] = f
}

// SSO reports whether trusted-proxy login is configured.
func (a *Authenticator) SSO() bool { return a.sso.Enabled() }

// Proxy returns the principal named by the trusted user header. ok is false
// when SSO is off, the header is absent, or the peer is not a trusted proxy
// (the header is then ignored). err is set when a trusted proxy names a user
// that cannot be given a role and tenants.
func (a *Authenticator) Proxy(r *http.Request) (p Principal, ok bool, err error) {
	if !a.sso.Enabled() {
		return Principal{}, false, nil
	}
	name := strings.TrimSpace(r.Header.Get(a.sso.UserHeader))
	if name == "" || !a.trusted(r.RemoteAddr) {
		return Principal{}, false, nil
	}
	if a.sso.RoleHeader != "" {
		role, err := ParseRole(strings.TrimSpace(r.Header.Get(a.sso.RoleHeader)))
		if err != nil {
			return Principal{}, false, fmt.Errorf("sso user %q: header %s: %w", name, a.sso.RoleHeader, err)
		}
		var tenants []string
		for t := range strings.SplitSeq(r.Header.Get(a.sso.TenantsHeader), ",") {
			if t = strings.TrimSpace(t); t != "" {
				tenants = append(tenants, t)
			}
		}
		if len(tenants) == 0 {
			return Principal{}, false, fmt.Errorf("sso user %q: header %s names no tenant", name, a.sso.TenantsHeader)
		}
		return Principal{Name: name, Role: role, Tenants: normTenants(tenants), Via: "sso"}, true, nil
	}
	u, known := a.users[name]
	if !known {
		return Principal{}, false, fmt.Errorf("sso user %q is not in dashboard.auth.users", name)
	}
	p = u.principal
	p.Via = "sso"
	return p, true, nil
}

func (a *Authenticator) trusted(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range a.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
