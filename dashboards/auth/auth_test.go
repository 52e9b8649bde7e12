package auth

import (
	"errors"
	"net/http/httptest"
	"strings"
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
	p, err := a.Login("rita", "pw")
	if err != nil || p.Role != Reviewer || strings.Join(p.Tenants, ",") != "a,b" || p.Via != "password" {
		t.Fatalf("login: %+v %v", p, err)
	}
	if _, err := a.Login("nobody", "pw"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	for range maxFailures {
		if _, err := a.Login("rita", "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := a.Login("rita", "pw"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("after %d failures the right password must still be refused: %v", maxFailures, err)
	}
	now = now.Add(failureWindow + time.Second)
	if _, err := a.Login("rita", "pw"); err != nil {
		t.Fatalf("after the window: %v", err)
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
