package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters of HashPassword (RFC 9106 §4, second recommended
// option: 64 MiB, 3 passes), with 2 lanes for small servers.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 2
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Limits on hashes read from the config, so that a typo cannot make every
// login allocate gigabytes or spin for minutes.
const (
	maxArgonMemory = 1 << 20 // KiB (1 GiB)
	maxArgonTime   = 20
)

// ErrMismatch is returned by CheckPassword for a wrong password.
var ErrMismatch = errors.New("password does not match")

// HashPassword returns an argon2id hash of password in PHC string form:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<key> (unpadded base64).
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckHash reports whether hash is a supported, well-formed password hash.
func CheckHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, err := parseArgon2id(hash)
		return err
	case isBcrypt(hash):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("bcrypt hash: %w", err)
		}
		return nil
	}
	return errors.New("not a password hash: want argon2id ($argon2id$…) or bcrypt ($2a$/$2b$/$2y$…); run 'auditline passwd'")
}

// CheckPassword returns nil if password matches hash, ErrMismatch if it does
// not, and another error if hash is malformed.
func CheckPassword(hash, password string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, err := parseArgon2id(hash)
		if err != nil {
			return err
		}
		got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
		if subtle.ConstantTimeCompare(got, p.key) != 1 {
			return ErrMismatch
		}
		return nil
	case isBcrypt(hash):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return ErrMismatch
		}
		if err != nil {
			return fmt.Errorf("bcrypt: %w", err)
		}
		return nil
	}
	return errors.New("unsupported password hash")
}

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

type argonParams struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parseArgon2id(h string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(h, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	if len(parts) != 6 {
		return p, errors.New("argon2id hash: want $argon2id$v=19$m=…,t=…,p=…$salt$key")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("argon2id hash: unsupported version %q", parts[2])
	}
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, fmt.Errorf("argon2id hash: parameter %q: %w", kv, err)
		}
		switch k {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > 255 {
				return p, fmt.Errorf("argon2id hash: p=%d out of range", n)
			}
			p.threads = uint8(n)
		default:
			return p, fmt.Errorf("argon2id hash: unknown parameter %q", k)
		}
	}
	if p.memory == 0 || p.time == 0 || p.threads == 0 {
		return p, errors.New("argon2id hash: m, t and p must all be set and positive")
	}
	if p.memory > maxArgonMemory || p.time > maxArgonTime {
		return p, fmt.Errorf("argon2id hash: m=%d t=%d exceed the limits m≤%d t≤%d", p.memory, p.time, maxArgonMemory, maxArgonTime)
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return p, errors.New("argon2id hash: bad salt (want ≥ 8 bytes, unpadded base64)")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 {
		return p, errors.New("argon2id hash: bad key (want ≥ 16 bytes, unpadded base64)")
	}
	return p, nil
}

// dummyLike returns a hash of a random password with the parameters of like
// (argon2id or bcrypt), or the default argon2id parameters when like is "":
// checking it costs what checking like costs.
func dummyLike(like string) (string, error) {
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return "", fmt.Errorf("dummy password: %w", err)
	}
	switch {
	case strings.HasPrefix(like, "$argon2id$"):
		p, err := parseArgon2id(like)
		if err != nil {
			return HashPassword(string(pw))
		}
		salt := make([]byte, len(p.salt))
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("salt: %w", err)
		}
		key := argon2.IDKey(pw, salt, p.time, p.memory, p.threads, uint32(len(p.key)))
		b64 := base64.RawStdEncoding
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
			b64.EncodeToString(salt), b64.EncodeToString(key)), nil
	case isBcrypt(like):
		cost, err := bcrypt.Cost([]byte(like))
		if err != nil {
			return HashPassword(string(pw))
		}
		h, err := bcrypt.GenerateFromPassword(pw[:12], cost)
		return string(h), err
	}
	return HashPassword(string(pw))
}
