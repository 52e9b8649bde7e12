package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswordHashes(t *testing.T) {
	argon, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	for _, tc := range []struct {
		name, hash, pw string
		want           error // nil, ErrMismatch, or any error (errMalformed)
	}{
		{"argon2id ok", argon, "s3cret", nil},
		{"argon2id wrong", argon, "S3cret", ErrMismatch},
		{"bcrypt ok", string(bc), "s3cret", nil},
		{"bcrypt wrong", string(bc), "", ErrMismatch},
		{"plain text is not a hash", "s3cret", "s3cret", errMalformed},
		{"argon2i is refused", strings.Replace(argon, "argon2id", "argon2i", 1), "s3cret", errMalformed},
		{"huge memory refused", "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "x", errMalformed},
		{"missing parameter", "$argon2id$v=19$m=65536,t=3$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "x", errMalformed},
		{"bad base64", "$argon2id$v=19$m=65536,t=3,p=2$!!!$" + strings.Repeat("A", 43), "x", errMalformed},
		{"wrong version", "$argon2id$v=16$m=65536,t=3,p=2$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "x", errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword(tc.hash, tc.pw)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("got %v", err)
			case tc.want == ErrMismatch && !errors.Is(err, ErrMismatch):
				t.Fatalf("got %v, want mismatch", err)
			case tc.want == errMalformed && (err == nil || errors.Is(err, ErrMismatch)):
				t.Fatalf("got %v, want a malformed-hash error", err)
			}
			if tc.want == errMalformed && CheckHash(tc.hash) == nil {
				t.Fatalf("CheckHash accepted %q", tc.hash)
			}
		})
	}
}

var errMalformed = errors.New("malformed")

func testAuth(t *testing.T, sso SSOConfig) *Authenticator {
	t.Helper()
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	cfg := NewDefaultConfig()
	cfg.Users = []UserConfig{{Name: "rita", PasswordHash: string(bc), Role: "reviewer", Tenants: []string{"b", "a", "a"}}}
	cfg.SSO = sso
	if err := cfg.Validate("dashboard.auth"); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoginAndThrottle(t *testing.T) {
	a := testAuth(t, SSOConfig{})
	now := time.Unix(1_800_000_000, 0)
	a.now = func() time.Time { return now }
	ctx := context.Background()
	home := netip.MustParseAddr("192.0.2.10")
	p, device, err := a.Login(ctx, Attempt{Name: "rita", Password: "pw", Client: home})
	if err != nil || p.Role != Reviewer || strings.Join(p.Tenants, ",") != "a,b" || p.Via != "password" || device == "" {
		t.Fatalf("login: %+v %q %v", p, device, err)
	}
	if _, _, err := a.Login(ctx, Attempt{Name: "nobody", Password: "pw", Client: home}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	// A stranger guesses rita's password from many addresses (so that the
	// per-address limit is not what stops them): after backoff_after
	// failures every further attempt for rita without her device cookie
	// waits, 1 s, 2 s, 4 s …, capped by max_backoff.
	n := 0
	guess := func() error {
		n++
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(n)})
		_, _, err := a.Login(ctx, Attempt{Name: "rita", Password: "wrong", Client: ip})
		return err
	}
	for range DefaultBackoffAfter {
		if err := guess(); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	var waits []time.Duration
	for range 12 {
		err := guess()
		var th *ThrottledError
		if !errors.As(err, &th) || th.Reason != "backoff" || !errors.Is(err, ErrThrottled) {
			t.Fatalf("during back-off: %v", err)
		}
		waits = append(waits, th.RetryAfter)
		now = now.Add(th.RetryAfter) // the stranger waits exactly as told, then fails again
		if err := guess(); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("after waiting: %v", err)
		}
	}
	if waits[0] != time.Second || waits[1] != 2*time.Second || waits[len(waits)-1] != DefaultMaxBackoff {
		t.Errorf("back-off waits %v: want 1s, 2s, … capped at %s", waits, DefaultMaxBackoff)
	}
	// The real user, at the browser she logged in from, is never held back
	// by the stranger's failures: not during the back-off, not with the
	// right password, not after a typo of her own.
	if _, _, err := a.Login(ctx, Attempt{Name: "rita", Password: "typo", Client: home, Device: device}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("her own typo: %v", err)
	}
	if _, dev2, err := a.Login(ctx, Attempt{Name: "rita", Password: "pw", Client: home, Device: device}); err != nil || dev2 == "" {
		t.Fatalf("the real user with her device cookie was refused during a stranger's back-off: %v", err)
	}
	// Without the device cookie (a new browser) she waits at most
	// max_backoff, then gets in: a delay, never a lock.
	_, _, err = a.Login(ctx, Attempt{Name: "rita", Password: "pw", Client: netip.MustParseAddr("198.51.100.7")})
	var th *ThrottledError
	if !errors.As(err, &th) || th.RetryAfter > DefaultMaxBackoff {
		t.Fatalf("new browser during back-off: %v", err)
	}
	now = now.Add(th.RetryAfter)
	if _, _, err := a.Login(ctx, Attempt{Name: "rita", Password: "pw", Client: netip.MustParseAddr("198.51.100.7")}); err != nil {
		t.Fatalf("after the back-off the right password must work: %v", err)
	}
	// A device cookie is bound to its user, its expiry and the key.
	for name, dev := range map[string]string{
		"another user's":   a.DeviceCookie("bob"),
		"tampered":         strings.Replace(device, ".", ".9", 1),
		"garbage":          "x.y.z",
		"from another key": testAuth(t, SSOConfig{}).DeviceCookie("rita"),
	} {
		if a.deviceFor(dev, "rita") {
			t.Errorf("%s device cookie accepted", name)
		}
	}
	now = now.Add(DefaultDeviceTTL)
	if a.deviceFor(device, "rita") {
		t.Error("expired device cookie accepted")
	}
}

func TestLoginRateLimits(t *testing.T) {
	a := testAuth(t, SSOConfig{})
	now := time.Unix(1_800_000_000, 0)
	a.now = func() time.Time { return now }
	ctx := context.Background()
	_, device, err := a.Login(ctx, Attempt{Name: "rita", Password: "pw", Client: netip.MustParseAddr("192.0.2.10")})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute) // buckets full again
	one := netip.MustParseAddr("203.0.113.5")
	for i := range DefaultPerIPPerMinute {
		if _, _, err := a.Login(ctx, Attempt{Name: fmt.Sprint("u", i), Password: "x", Client: one}); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	var th *ThrottledError
	if _, _, err := a.Login(ctx, Attempt{Name: "u", Password: "x", Client: one}); !errors.As(err, &th) || th.Reason != "per_ip" {
		t.Fatalf("over the per-address limit: %v", err)
	}
	// IPv6 addresses of one /64 share a bucket.
	v6 := func(last byte) netip.Addr {
		b := netip.MustParseAddr("2001:db8:1:2::").As16()
		b[15] = last
		return netip.AddrFrom16(b)
	}
	for i := range DefaultPerIPPerMinute {
		_, _, _ = a.Login(ctx, Attempt{Name: fmt.Sprint("v6-", i), Password: "x", Client: v6(byte(i))})
	}
	if _, _, err := a.Login(ctx, Attempt{Name: "v6", Password: "x", Client: v6(200)}); !errors.As(err, &th) || th.Reason != "per_ip" {
		t.Fatalf("another address of the same /64: %v", err)
	}
	// The global limit: attempts from many addresses together.
	now = now.Add(time.Minute)
	var global error
	for i := 0; i < 2*DefaultGlobalPerMinute && global == nil; i++ {
		_, _, err := a.Login(ctx, Attempt{Name: fmt.Sprint("g", i), Password: "x", Client: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})})
		if errors.As(err, &th) {
			global = err
		}
	}
	if global == nil || th.Reason != "global" {
		t.Fatalf("no global limit: %v", global)
	}
	// Neither limit holds back the user at her own browser.
	if _, _, err := a.Login(ctx, Attempt{Name: "rita", Password: "pw", Client: one, Device: device}); err != nil {
		t.Fatalf("device-cookie login refused while the limits are exhausted: %v", err)
	}
}

func TestHashConcurrencyBounded(t *testing.T) {
	cfg := NewDefaultConfig()
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = []UserConfig{{Name: "rita", PasswordHash: h, Role: "viewer", Tenants: []string{"a"}}}
	cfg.Login.PerIPPerMinute, cfg.Login.GlobalPerMinute = 1000, 1000
	cfg.Login.HashWait = 200 * time.Millisecond
	if err := cfg.Validate("dashboard.auth"); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var busy, bad atomic.Int32
	for i := range 50 {
		wg.Go(func() {
			_, _, err := a.Login(context.Background(), Attempt{Name: fmt.Sprint("n", i), Password: "x", Client: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})})
			var th *ThrottledError
			switch {
			case errors.As(err, &th) && th.Reason == "busy":
				busy.Add(1)
			case errors.Is(err, ErrBadCredentials):
				bad.Add(1)
			default:
				t.Errorf("login %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if p := a.PeakHashes(); p > DefaultMaxConcurrentHashes || p < 1 {
		t.Errorf("%d password checks ran at once, want at most %d", p, DefaultMaxConcurrentHashes)
	}
	if busy.Load() == 0 {
		t.Error("50 parallel argon2id checks with a 200 ms wait: some should have been answered busy")
	}
	t.Logf("50 parallel logins: %d checked, %d answered busy; peak %d checks at once", bad.Load(), busy.Load(), a.PeakHashes())
}

func TestLoginToken(t *testing.T) {
	a := testAuth(t, SSOConfig{})
	now := time.Unix(1_800_000_000, 0)
	a.now = func() time.Time { return now }
	me, other := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("198.51.100.9")
	tok, err := a.LoginToken(me)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CheckLoginToken(tok, tok, me); err != nil {
		t.Fatalf("own token: %v", err)
	}
	theirs, _ := a.LoginToken(other) // fetched by someone else, then planted
	forged := strings.Join(append(strings.Split(tok, ".")[:2], b64.EncodeToString(make([]byte, 24))), ".")
	for name, tc := range map[string]struct {
		form, cookie string
		want         error
	}{
		"no cookie":                 {tok, "", ErrLoginTokenMissing},
		"no form field":             {"", tok, ErrLoginTokenMissing},
		"form and cookie differ":    {tok, theirs, ErrLoginTokenInvalid},
		"issued to another address": {theirs, theirs, ErrLoginTokenInvalid},
		"forged signature":          {forged, forged, ErrLoginTokenInvalid},
		"not a token":               {"abc", "abc", ErrLoginTokenInvalid},
	} {
		if err := a.CheckLoginToken(tc.form, tc.cookie, me); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	now = now.Add(DefaultFormTTL)
	if err := a.CheckLoginToken(tok, tok, me); !errors.Is(err, ErrLoginTokenInvalid) {
		t.Errorf("expired token: %v", err)
	}
}

func TestProxy(t *testing.T) {
	headers := testAuth(t, SSOConfig{UserHeader: "X-User", RoleHeader: "X-Role", TenantsHeader: "X-Tenants", TrustedProxies: []string{"10.1.0.0/16", "::1"}})
	byUser := testAuth(t, SSOConfig{UserHeader: "X-User", TrustedProxies: []string{"10.1.2.3"}})
	for _, tc := range []struct {
		name   string
		a      *Authenticator
		remote string
		hdr    map[string]string
		ok     bool
		err    bool
		role   Role
	}{
		{"untrusted peer is ignored", headers, "192.168.1.1:5555", map[string]string{"X-User": "eve", "X-Role": "admin", "X-Tenants": "*"}, false, false, 0},
		{"trusted peer with headers", headers, "10.1.9.9:5555", map[string]string{"X-User": "eve", "X-Role": "admin", "X-Tenants": "x, y"}, true, false, Admin},
		{"trusted ipv6 peer", headers, "[::1]:5555", map[string]string{"X-User": "eve", "X-Role": "viewer", "X-Tenants": "x"}, true, false, Viewer},
		{"bad role header", headers, "10.1.9.9:5555", map[string]string{"X-User": "eve", "X-Role": "root", "X-Tenants": "x"}, false, true, 0},
		{"no tenants", headers, "10.1.9.9:5555", map[string]string{"X-User": "eve", "X-Role": "viewer", "X-Tenants": " , "}, false, true, 0},
		{"no user header", headers, "10.1.9.9:5555", map[string]string{}, false, false, 0},
		{"known user from config", byUser, "10.1.2.3:1", map[string]string{"X-User": "rita"}, true, false, Reviewer},
		{"unknown user", byUser, "10.1.2.3:1", map[string]string{"X-User": "eve"}, false, true, 0},
		{"single address, other peer", byUser, "10.1.2.4:1", map[string]string{"X-User": "rita"}, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			p, ok, err := tc.a.Proxy(r)
			if ok != tc.ok || (err != nil) != tc.err || (ok && (p.Role != tc.role || p.Via != "sso")) {
				t.Fatalf("got %+v ok=%v err=%v", p, ok, err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	good := "$2a$04$" + strings.Repeat("a", 53)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"nobody can log in", func(c *Config) {}, []string{"x.users: no users and no sso.user_header"}},
		{"user problems", func(c *Config) {
			c.Users = []UserConfig{{Name: "", PasswordHash: "plain", Role: "god"}, {Name: "a", PasswordHash: good, Role: "viewer", Tenants: []string{""}}, {Name: "a", PasswordHash: good, Role: "viewer", Tenants: []string{"t"}}}
		}, []string{"x.users[0].name: must not be empty", "x.users[0].password_hash: not a password hash", "x.users[0].role: unknown role \"god\"", "x.users[0].tenants: empty", "x.users[1].tenants[0]: must not be empty", "x.users[2].name: \"a\" appears twice"}},
		{"sso without proxies", func(c *Config) { c.SSO = SSOConfig{UserHeader: "X-User", RoleHeader: "X-Role"} }, []string{"x.sso.trusted_proxies: required", "x.sso: set both role_header and tenants_header"}},
		{"bad proxy", func(c *Config) { c.SSO = SSOConfig{UserHeader: "X-User", TrustedProxies: []string{"localhost"}} }, []string{"x.sso.trusted_proxies: \"localhost\" is neither"}},
		{"timeouts", func(c *Config) {
			c.Users = []UserConfig{{Name: "a", PasswordHash: good, Role: "viewer", Tenants: []string{"t"}}}
			c.SessionIdle, c.SessionMax, c.MaxSessions = 0, -1, 0
		}, []string{"x.session_idle: must be positive", "x.session_max: must be at least session_idle", "x.max_sessions: must be positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDefaultConfig()
			tc.edit(&c)
			err := c.Validate("x")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
}

func TestSessions(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.MaxSessions = 2
	s := NewSessions(cfg)
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }
	id1, s1, _ := s.Create(Principal{Name: "a"})
	if s.Get(id1) != s1 || s.Get("nope") != nil || s.Get("") != nil {
		t.Fatal("lookup")
	}
	if !s1.CheckCSRF(s1.CSRF) || s1.CheckCSRF("") || s1.CheckCSRF(s1.CSRF+"x") {
		t.Fatal("csrf check")
	}
	now = now.Add(time.Minute)
	id2, _, _ := s.Create(Principal{Name: "b"})
	now = now.Add(time.Minute)
	s.Get(id1) // a is now the most recently used
	id3, _, _ := s.Create(Principal{Name: "c"})
	if s.Get(id2) != nil || s.Get(id1) == nil || s.Get(id3) == nil || s.Len() != 2 {
		t.Fatal("the least recently used session should have been evicted")
	}
	now = now.Add(cfg.SessionIdle + time.Second)
	if s.Get(id1) != nil {
		t.Fatal("idle session still valid")
	}
	id4, _, _ := s.Create(Principal{Name: "d"})
	for range 30 { // 30 × 29 min > session_max (12 h)
		now = now.Add(cfg.SessionIdle - time.Minute)
		s.Get(id4)
	}
	if s.Get(id4) != nil {
		t.Fatal("session outlived session_max")
	}
	id5, _, _ := s.Create(Principal{Name: "e"})
	s.Delete(id5)
	if s.Get(id5) != nil {
		t.Fatal("deleted session still valid")
	}
}

// FuzzCheckPassword: a malformed hash from the config is an error, never a
// panic, a huge allocation or a match.
func FuzzCheckPassword(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "pw")
	f.Add("$2a$04$"+strings.Repeat("a", 53), "pw")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$$", "")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		if CheckHash(hash) != nil && CheckPassword(hash, pw) == nil {
			t.Fatalf("malformed hash %q matched", hash)
		}
	})
}
