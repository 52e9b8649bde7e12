package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Password logins are guarded so that guessing is slow, the process stays
// within bounded memory, and nobody can lock the real user out:
//
//   - Hashing is bounded: at most LoginConfig.MaxConcurrentHashes password
//     checks run at once (an argon2id check of the default parameters
//     allocates 64 MiB, so 50 parallel logins would otherwise allocate
//     3.2 GiB); an attempt waits up to HashWait for a slot, then is answered
//     "busy" (503) without hashing.
//   - Rate limits, before any hash work: a token bucket per client address
//     (IPv6 by /64) and one global bucket. Both apply only to attempts that
//     do not carry a device cookie for the name (below).
//   - Back-off, never a lock: after BackoffAfter failures for a name from
//     browsers without its device cookie, each further such attempt waits
//     1 s, 2 s, 4 s … up to MaxBackoff. A successful login sets a signed,
//     long-lived device cookie naming the user; attempts that present it
//     skip the name's back-off and both rate limits (they have a back-off of
//     their own, per device). A stranger hammering a name therefore slows
//     down strangers only: the user at a browser they logged in from before
//     is never refused because of someone else's failures (OWASP, "Slow
//     Down Online Guessing Attacks with Device Cookies").
//
// The login form carries a signed token (HMAC-SHA256 under the dashboard's
// key) bound to the client address and an expiry, echoed in a cookie: a
// token fetched by someone else (from another address) or forged does not
// pass, so login CSRF needs more than planting a cookie.

// LoginConfig is the "dashboard.auth.login" section.
type LoginConfig struct {
	// MaxConcurrentHashes bounds the password checks running at once.
	MaxConcurrentHashes int `yaml:"max_concurrent_hashes"`
	// HashWait is how long an attempt waits for a hash slot before it is
	// answered 503 (busy).
	HashWait time.Duration `yaml:"hash_wait"`
	// PerIPPerMinute is the attempts per client address (IPv6 /64) per
	// minute, for browsers without a device cookie.
	PerIPPerMinute int `yaml:"per_ip_per_minute"`
	// GlobalPerMinute is the attempts per minute of all browsers without a
	// device cookie together.
	GlobalPerMinute int `yaml:"global_per_minute"`
	// BackoffAfter is the failures of one name (without its device cookie)
	// before each further attempt must wait.
	BackoffAfter int `yaml:"backoff_after"`
	// MaxBackoff caps the wait.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// DeviceTTL is how long a device cookie is honoured.
	DeviceTTL time.Duration `yaml:"device_ttl"`
	// FormTTL is how long a login form stays valid.
	FormTTL time.Duration `yaml:"form_ttl"`
}

// Login defaults.
const (
	DefaultMaxConcurrentHashes = 2
	DefaultHashWait            = 5 * time.Second
	DefaultPerIPPerMinute      = 10
	DefaultGlobalPerMinute     = 120
	DefaultBackoffAfter        = 5
	DefaultMaxBackoff          = 5 * time.Minute
	DefaultDeviceTTL           = 90 * 24 * time.Hour
	DefaultFormTTL             = 10 * time.Minute
)

// NewDefaultLoginConfig returns the defaults.
func NewDefaultLoginConfig() LoginConfig {
	return LoginConfig{
		MaxConcurrentHashes: DefaultMaxConcurrentHashes, HashWait: DefaultHashWait,
		PerIPPerMinute: DefaultPerIPPerMinute, GlobalPerMinute: DefaultGlobalPerMinute,
		BackoffAfter: DefaultBackoffAfter, MaxBackoff: DefaultMaxBackoff,
		DeviceTTL: DefaultDeviceTTL, FormTTL: DefaultFormTTL,
	}
}

func (c LoginConfig) validate(add func(string, ...any)) {
	if c.MaxConcurrentHashes < 1 || c.MaxConcurrentHashes > 64 {
		add("login.max_concurrent_hashes: %d, want 1…64", c.MaxConcurrentHashes)
	}
	if c.HashWait <= 0 {
		add("login.hash_wait: must be positive")
	}
	if c.PerIPPerMinute < 1 {
		add("login.per_ip_per_minute: %d, want at least 1", c.PerIPPerMinute)
	}
	if c.GlobalPerMinute < c.PerIPPerMinute {
		add("login.global_per_minute: %d is below per_ip_per_minute (%d)", c.GlobalPerMinute, c.PerIPPerMinute)
	}
	if c.BackoffAfter < 1 {
		add("login.backoff_after: %d, want at least 1", c.BackoffAfter)
	}
	if c.MaxBackoff < time.Second {
		add("login.max_backoff: %s, want at least 1s", c.MaxBackoff)
	}
	if c.DeviceTTL < time.Hour {
		add("login.device_ttl: %s, want at least 1h", c.DeviceTTL)
	}
	if c.FormTTL < time.Minute {
		add("login.form_ttl: %s, want at least 1m", c.FormTTL)
	}
}

// ThrottledError refuses an attempt before any password check. It matches
// ErrThrottled with errors.Is.
type ThrottledError struct {
	Reason     string        // per_ip, global, backoff, busy
	RetryAfter time.Duration // when the same attempt may succeed
}

func (e *ThrottledError) Error() string {
	secs := max(1, int((e.RetryAfter+time.Second-1)/time.Second))
	switch e.Reason {
	case "busy":
		return fmt.Sprintf("the server is busy checking other logins; try again in %d s", secs)
	case "backoff":
		return fmt.Sprintf("too many failed logins for this name; try again in %d s (a browser you logged in from before is not held back)", secs)
	}
	return fmt.Sprintf("too many login attempts; try again in %d s", secs)
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Attempt is one password login as the guard sees it.
type Attempt struct {
	Name, Password string
	Client         netip.Addr // the browser's address (the TCP peer, or the trusted proxy's X-Forwarded-For)
	Device         string     // the device cookie, "" if none
}

// bucket is a token bucket refilled continuously.
type bucket struct {
	tokens float64
	last   time.Time
}

// take removes one token if there is one; else it says when there will be.
func (b *bucket) take(now time.Time, perMinute int) (bool, time.Duration) {
	rate := float64(perMinute) / 60 // tokens per second
	burst := float64(perMinute)
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// backoff counts failures and holds the next attempt back.
type backoff struct {
	n    int
	next time.Time // no attempt before
	last time.Time
}

// forgetAfter: a failure counter untouched this long is dropped.
const forgetAfter = 15 * time.Minute

// maxTracked bounds every map of the guard; past it the stale entries go,
// then (a flood of names or addresses) all of them: bounded memory beats
// perfect accounting under a flood.
const maxTracked = 10000

type guard struct {
	cfg   LoginConfig
	slots chan struct{}

	mu      sync.Mutex
	global  bucket
	perIP   map[netip.Prefix]*bucket
	names   map[string]*backoff // failures without the name's device cookie
	devices map[string]*backoff // failures with a device cookie, by cookie
	// hashing counts checks in progress; peak is its high-water mark (tests).
	hashing, peak int
}

func newGuard(cfg LoginConfig) *guard {
	return &guard{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrentHashes),
		perIP: map[netip.Prefix]*bucket{}, names: map[string]*backoff{}, devices: map[string]*backoff{}}
}

func clientPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// admit checks the rate limits and back-offs of one attempt.
func (g *guard) admit(now time.Time, at Attempt, trusted bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if trusted {
		if b := g.devices[at.Device]; b != nil && now.Before(b.next) {
			return &ThrottledError{Reason: "backoff", RetryAfter: b.next.Sub(now)}
		}
		return nil
	}
	if b := g.names[at.Name]; b != nil && now.Before(b.next) {
		return &ThrottledError{Reason: "backoff", RetryAfter: b.next.Sub(now)}
	}
	p := clientPrefix(at.Client)
	ib := g.perIP[p]
	if ib == nil {
		if len(g.perIP) >= maxTracked {
			g.sweepIPs(now)
		}
		ib = &bucket{}
		g.perIP[p] = ib
	}
	if ok, wait := ib.take(now, g.cfg.PerIPPerMinute); !ok {
		return &ThrottledError{Reason: "per_ip", RetryAfter: wait}
	}
	if ok, wait := g.global.take(now, g.cfg.GlobalPerMinute); !ok {
		ib.tokens = min(float64(g.cfg.PerIPPerMinute), ib.tokens+1) // not this address's fault
		return &ThrottledError{Reason: "global", RetryAfter: wait}
	}
	return nil
}

func (g *guard) sweepIPs(now time.Time) {
	for p, b := range g.perIP {
		if now.Sub(b.last) > time.Minute { // refilled by now
			delete(g.perIP, p)
		}
	}
	if len(g.perIP) >= maxTracked {
		clear(g.perIP)
	}
}

func sweepBackoffs(m map[string]*backoff, now time.Time) {
	for k, b := range m {
		if now.Sub(b.last) > forgetAfter && !now.Before(b.next) {
			delete(m, k)
		}
	}
	if len(m) >= maxTracked {
		clear(m)
	}
}

// result records the outcome of a checked attempt.
func (g *guard) result(now time.Time, at Attempt, trusted, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, key := g.names, at.Name
	if trusted {
		m, key = g.devices, at.Device
	}
	if ok {
		delete(m, key)
		if !trusted {
			delete(g.names, at.Name)
		}
		return
	}
	b := m[key]
	if b == nil || now.Sub(b.last) > forgetAfter {
		if len(m) >= maxTracked {
			sweepBackoffs(m, now)
		}
		b = &backoff{}
		m[key] = b
	}
	b.n++
	b.last = now
	if over := b.n - g.cfg.BackoffAfter; over >= 0 {
		wait := g.cfg.MaxBackoff
		if over < 30 {
			wait = min(wait, time.Second<<over)
		}
		b.next = now.Add(wait)
	}
}

// hash runs check in a hash slot, waiting at most HashWait for one.
func (g *guard) hash(ctx context.Context, check func()) error {
	t := time.NewTimer(g.cfg.HashWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-t.C:
		return &ThrottledError{Reason: "busy", RetryAfter: time.Second}
	case <-ctx.Done():
		return &ThrottledError{Reason: "busy", RetryAfter: time.Second}
	}
	g.mu.Lock()
	g.hashing++
	g.peak = max(g.peak, g.hashing)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.hashing--
		g.mu.Unlock()
		<-g.slots
	}()
	check()
	return nil
}

// PeakHashes returns the most password checks that ran at once.
func (a *Authenticator) PeakHashes() int {
	a.guard.mu.Lock()
	defer a.guard.mu.Unlock()
	return a.guard.peak
}

// ---- signed values: device cookies and login-form tokens ----

// keyLen is the length of the dashboard's signing key.
const keyLen = 32

// loadKey reads the signing key file, or makes a random key (valid until
// the process ends: device cookies and open login forms then lapse).
func loadKey(file string) ([]byte, error) {
	if file == "" {
		k := make([]byte, keyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		return k, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) < keyLen {
		return nil, fmt.Errorf("key_file %s: %d bytes, want at least %d (head -c 48 /dev/urandom | base64 > FILE)", file, len(b), keyLen)
	}
	return b, nil
}

var b64 = base64.RawURLEncoding

func (a *Authenticator) mac(purpose string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("auditline.dashboard." + purpose))
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)[:24]
}

// DeviceCookie returns a device cookie for name, valid for DeviceTTL.
func (a *Authenticator) DeviceCookie(name string) string {
	exp := strconv.FormatInt(a.now().Add(a.login.DeviceTTL).Unix(), 10)
	return b64.EncodeToString([]byte(name)) + "." + exp + "." + b64.EncodeToString(a.mac("device", []byte(name), []byte(exp)))
}

// deviceFor reports whether dev is a valid, unexpired device cookie of name.
func (a *Authenticator) deviceFor(dev, name string) bool {
	parts := strings.Split(dev, ".")
	if len(parts) != 3 || len(dev) > 1024 {
		return false
	}
	n, err := b64.DecodeString(parts[0])
	if err != nil || string(n) != name {
		return false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || a.now().Unix() >= exp {
		return false
	}
	sig, err := b64.DecodeString(parts[2])
	return err == nil && hmac.Equal(sig, a.mac("device", n, []byte(parts[1])))
}

// LoginToken returns a login-form token for a browser at client, valid for
// FormTTL: 16 random bytes, the expiry and an HMAC over both and the
// client's address prefix.
func (a *Authenticator) LoginToken(client netip.Addr) (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("login token: %w", err)
	}
	exp := strconv.FormatInt(a.now().Add(a.login.FormTTL).Unix(), 10)
	p := clientPrefix(client).String()
	return b64.EncodeToString(nonce) + "." + exp + "." + b64.EncodeToString(a.mac("login", nonce, []byte(exp), []byte(p))), nil
}

// Login-token failures.
var (
	ErrLoginTokenMissing = errors.New("login form token missing")
	ErrLoginTokenInvalid = errors.New("login form token invalid, expired or issued to another address")
)

// CheckLoginToken checks the form's token against the cookie's (double
// submit) and its signature, expiry and address.
func (a *Authenticator) CheckLoginToken(form, cookie string, client netip.Addr) error {
	if form == "" || cookie == "" {
		return ErrLoginTokenMissing
	}
	if !hmac.Equal([]byte(form), []byte(cookie)) {
		return ErrLoginTokenInvalid
	}
	parts := strings.Split(form, ".")
	if len(parts) != 3 {
		return ErrLoginTokenInvalid
	}
	nonce, err := b64.DecodeString(parts[0])
	if err != nil || len(nonce) != 16 {
		return ErrLoginTokenInvalid
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || a.now().Unix() >= exp {
		return ErrLoginTokenInvalid
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, a.mac("login", nonce, []byte(parts[1]), []byte(clientPrefix(client).String()))) {
		return ErrLoginTokenInvalid
	}
	return nil
}
