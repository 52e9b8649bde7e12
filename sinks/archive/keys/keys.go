// Package keys manages the archive's Ed25519 signing keys: files, key ids, and
// the adapters that let golang.org/x/mod/sumdb/note sign and open the archive's
// signed notes (C2SP signed-note) with them.
//
// Formats are the ones standard tools read, so that an auditor can check a
// signature with openssl alone:
//
//   - private key: PKCS #8 PEM ("PRIVATE KEY"), file mode 0600;
//   - public key: SubjectPublicKeyInfo PEM ("PUBLIC KEY"), as `openssl pkey
//     -pubout` writes it, published next to the archive under keys/<id>.pem;
//   - key id: the first 16 hex digits of SHA-256 over the public key's DER
//     (`openssl pkey -pubin -in key.pem -outform DER | sha256sum | cut -c1-16`).
//
// Rotation: generate a new key, point archive.signing_key_file at it and
// restart. New manifests name the new key id; the old public key stays in the
// bucket under Object Lock, so everything it signed remains verifiable.
package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"golang.org/x/mod/sumdb/note"
)

// Generate returns a new Ed25519 private key from r (crypto/rand when nil).
func Generate(r io.Reader) (ed25519.PrivateKey, error) {
	if r == nil {
		r = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return priv, nil
}

// ID returns the key id of pub: hex of the first 8 bytes of SHA-256(SPKI DER).
func ID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil { // only for a key of the wrong length
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

// MarshalPrivate returns priv as PKCS #8 PEM.
func MarshalPrivate(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublic returns pub as SubjectPublicKeyInfo PEM.
func MarshalPublic(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivate reads a PKCS #8 PEM Ed25519 private key.
func ParsePrivate(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("private key: want a PEM block of type PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key: %T, want Ed25519", k)
	}
	return priv, nil
}

// ParsePublic reads an Ed25519 public key from SubjectPublicKeyInfo PEM, or the
// public half of a PKCS #8 private key PEM.
func ParsePublic(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("public key: no PEM block")
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: %T, want Ed25519", k)
		}
		return pub, nil
	case "PRIVATE KEY":
		priv, err := ParsePrivate(b)
		if err != nil {
			return nil, err
		}
		return priv.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("public key: PEM block of type %q, want PUBLIC KEY", blk.Type)
}

// WriteNew writes priv to path as PKCS #8 PEM with mode 0600. It refuses to
// replace an existing file: losing a signing key is never an accident we help.
func WriteNew(path string, priv ed25519.PrivateKey) error {
	b, err := MarshalPrivate(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

// Load reads a private key file. It refuses a file that group or others can
// read, as ssh does.
func Load(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s: mode %v is readable by others, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	priv, err := ParsePrivate(b)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return priv, nil
}

// Signer signs notes with an Ed25519 key under a note key name (C2SP
// signed-note: the signature line names the key by name and a 4-byte hash).
type Signer struct {
	name string
	priv ed25519.PrivateKey
	hash uint32
	id   string
}

// NewSigner returns a note signer for priv. name must be a valid note key name
// (non-empty, no spaces, no '+').
func NewSigner(name string, priv ed25519.PrivateKey) (*Signer, error) {
	pub := priv.Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, fmt.Errorf("note key %q: %w", name, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("note key %q: %w", name, err)
	}
	return &Signer{name: name, priv: priv, hash: v.KeyHash(), id: ID(pub)}, nil
}

// Name implements note.Signer.
func (s *Signer) Name() string { return s.name }

// KeyHash implements note.Signer.
func (s *Signer) KeyHash() uint32 { return s.hash }

// Sign implements note.Signer: a plain Ed25519 signature over msg.
func (s *Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// KeyID returns the key id (see ID).
func (s *Signer) KeyID() string { return s.id }

// Public returns the public key.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// VerifierKey returns the note verifier key string (name+hash+base64) of pub.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(name, pub)
}

// Ring is a set of trusted public keys. It implements note.Verifiers for any
// key name: a signature line is accepted when its 4-byte key hash matches one
// of the trusted keys under the name it carries.
type Ring struct {
	mu    sync.Mutex
	keys  map[string]ed25519.PublicKey // by key id
	cache map[string]note.Verifier     // name + "\x00" + hash
}

// NewRing returns a ring of the given keys.
func NewRing(pubs ...ed25519.PublicKey) *Ring {
	r := &Ring{keys: map[string]ed25519.PublicKey{}, cache: map[string]note.Verifier{}}
	for _, p := range pubs {
		r.Add(p)
	}
	return r
}

// Add trusts pub.
func (r *Ring) Add(pub ed25519.PublicKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[ID(pub)] = pub
	clear(r.cache)
}

// Len returns the number of trusted keys.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// IDs returns the trusted key ids, sorted.
func (r *Ring) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.keys))
	for id := range r.keys {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Key returns the trusted key with the given id.
func (r *Ring) Key(id string) (ed25519.PublicKey, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[id]
	return k, ok
}

// Verifier implements note.Verifiers.
func (r *Ring) Verifier(name string, hash uint32) (note.Verifier, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ck := fmt.Sprintf("%s\x00%08x", name, hash)
	if v, ok := r.cache[ck]; ok {
		return v, nil
	}
	for _, pub := range r.keys {
		vkey, err := note.NewEd25519VerifierKey(name, pub)
		if err != nil {
			return nil, err
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, err
		}
		if v.KeyHash() == hash {
			r.cache[ck] = v
			return v, nil
		}
	}
	return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
}

// SignerKeyID returns the key id of the trusted key that matches a note
// signature (name, hash), or "".
func (r *Ring) SignerKeyID(name string, hash uint32) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, pub := range r.keys {
		vkey, err := note.NewEd25519VerifierKey(name, pub)
		if err != nil {
			continue
		}
		if v, err := note.NewVerifier(vkey); err == nil && v.KeyHash() == hash {
			return id
		}
	}
	return ""
}
