package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// Session is one logged-in browser.
type Session struct {
	Principal Principal
	// CSRF is the token every POST of this session must carry.
	CSRF    string
	Created time.Time
	seen    time.Time
	key     [32]byte
}

// CheckCSRF reports whether token is this session's CSRF token, in constant
// time.
func (s *Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

// Sessions is the in-memory session store. It is safe for concurrent use.
type Sessions struct {
	idle, max time.Duration
	limit     int
	now       func() time.Time

	mu   sync.Mutex
	byID map[[32]byte]*Session
}

// NewSessions returns an empty store with cfg's timeouts and bound.
func NewSessions(cfg Config) *Sessions {
	return &Sessions{idle: cfg.SessionIdle, max: cfg.SessionMax, limit: cfg.MaxSessions, now: time.Now, byID: map[[32]byte]*Session{}}
}

// Create starts a session for p and returns its secret id (the cookie value).
func (s *Sessions) Create(p Principal) (id string, sess *Session, err error) {
	raw, err := token()
	if err != nil {
		return "", nil, err
	}
	csrf, err := token()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	sess = &Session{Principal: p, CSRF: csrf, Created: now, seen: now, key: sha256.Sum256([]byte(raw))}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= s.limit {
		s.sweepLocked(now)
	}
	for len(s.byID) >= s.limit {
		s.evictOldestLocked()
	}
	s.byID[sess.key] = sess
	return raw, sess, nil
}

// Get returns the live session with this id, refreshing its idle timer, or
// nil.
func (s *Sessions) Get(id string) *Session {
	if id == "" {
		return nil
	}
	key := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.byID[key]
	if sess == nil {
		return nil
	}
	if s.expired(sess, now) {
		delete(s.byID, key)
		return nil
	}
	sess.seen = now
	return sess
}

// Delete ends the session with this id (logout).
func (s *Sessions) Delete(id string) {
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.byID, key)
	s.mu.Unlock()
}

// Len returns the number of sessions held (live or not yet swept).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

func (s *Sessions) expired(sess *Session, now time.Time) bool {
	return now.Sub(sess.seen) > s.idle || now.Sub(sess.Created) > s.max
}

func (s *Sessions) sweepLocked(now time.Time) {
	for k, sess := range s.byID {
		if s.expired(sess, now) {
			delete(s.byID, k)
		}
	}
}

func (s *Sessions) evictOldestLocked() {
	var oldest *Session
	for _, sess := range s.byID {
		if oldest == nil || sess.seen.Before(oldest.seen) {
			oldest = sess
		}
	}
	if oldest != nil {
		delete(s.byID, oldest.key)
	}
}

func token() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
