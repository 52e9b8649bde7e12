package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Errors of Login.
var (
	ErrBadCredentials = errors.New("unknown user or wrong password")
	// ErrThrottled is matched by every *ThrottledError (errors.Is).
	ErrThrottled = errors.New("too many login attempts; try again later")
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
	login   LoginConfig
	guard   *guard
	key     []byte // signs device cookies and login-form tokens
	now     func() time.Time
}

// New builds an Authenticator from a validated Config.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{users: map[string]user{}, sso: cfg.SSO, login: cfg.Login, guard: newGuard(cfg.Login), now: time.Now}
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
	if a.key, err = loadKey(cfg.KeyFile); err != nil {
		return nil, err
	}
	// The dummy hash costs what the users' hashes cost: the same parameters
	// as the first argon2id user (else the default), so that an unknown
	// name takes as long as a known one.
	dummy := ""
	for _, u := range cfg.Users {
		if strings.HasPrefix(u.PasswordHash, "$argon2id$") || isBcrypt(u.PasswordHash) {
			dummy = u.PasswordHash
			break
		}
	}
	if a.dummy, err = dummyLike(dummy); err != nil {
		return nil, err
	}
	return a, nil
}

// Login checks one password attempt under the login guard (see login.go).
// On success it returns the principal and a fresh device cookie for the
// browser. Every failure is ErrBadCredentials or a *ThrottledError; a
// checked attempt takes one hash computation whether or not the name
// exists.
func (a *Authenticator) Login(ctx context.Context, at Attempt) (Principal, string, error) {
	now := a.now()
	trusted := at.Device != "" && a.deviceFor(at.Device, at.Name)
	if err := a.guard.admit(now, at, trusted); err != nil {
		return Principal{}, "", err
	}
	u, ok := a.users[at.Name]
	hash := u.hash
	if !ok || hash == "" {
		hash = a.dummy
	}
	var err error
	if herr := a.guard.hash(ctx, func() { err = CheckPassword(hash, at.Password) }); herr != nil {
		return Principal{}, "", herr
	}
	if !ok || u.hash == "" || err != nil {
		a.guard.result(a.now(), at, trusted, false)
		return Principal{}, "", ErrBadCredentials
	}
	a.guard.result(a.now(), at, trusted, true)
	p := u.principal
	p.Via = "password"
	return p, a.DeviceCookie(at.Name), nil
}

// ClientAddr is the browser's address: the TCP peer, or — when the peer is
// a trusted proxy (sso.trusted_proxies) — the last address of its
// X-Forwarded-For that is not itself a trusted proxy.
func (a *Authenticator) ClientAddr(r *http.Request) netip.Addr {
	peer := parseHostAddr(r.RemoteAddr)
	if !a.trustedAddr(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if h = h.Unmap(); !a.trustedAddr(h) {
			return h
		}
	}
	return peer
}

func parseHostAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
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
	return a.trustedAddr(parseHostAddr(remoteAddr))
}

func (a *Authenticator) trustedAddr(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	for _, p := range a.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
