// Package envelope seals raw source events for the archive with envelope
// encryption: each event's bytes are encrypted (AES-256-GCM) under a data key,
// and the data key is wrapped by the key-encryption key (KEK) of the event's
// data subject (a team, an end user, or the whole archive: archive.raw.key_by)
// held in a KeyStore. Destroying a subject's KEK (`auditline erase`) makes
// every event sealed under it unreadable, while the sealed bytes — and so the
// archive's leaves, roots, proofs and signatures — stay as they were.
//
// A KeyStore is what a KMS provides (create a key per subject, encrypt and
// decrypt a data key, schedule the key's deletion); FileStore is a local
// directory for the demo and tests.
package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrErased means the key was destroyed: what it sealed is unreadable.
var ErrErased = errors.New("erased: the data subject's key was destroyed")

// ErrNoKey means the key store has no key for the subject.
var ErrNoKey = errors.New("no key for this subject")

// KeyStore holds one key-encryption key per data subject. Key ids are opaque
// and carry nothing of the subject (they are written in clear in the archive).
type KeyStore interface {
	// KeyFor returns the id of subject's current key, creating one when the
	// subject has none (or only a destroyed one).
	KeyFor(ctx context.Context, subject string) (keyID string, err error)
	// Wrap encrypts a data key under key keyID (a KMS's Encrypt).
	Wrap(ctx context.Context, keyID string, dataKey []byte) ([]byte, error)
	// Unwrap decrypts a wrapped data key (a KMS's Decrypt); ErrErased when
	// the key was destroyed.
	Unwrap(ctx context.Context, keyID string, wrapped []byte) ([]byte, error)
	// Destroy destroys subject's current key and returns its id; ErrNoKey
	// when the subject has none.
	Destroy(ctx context.Context, subject string) (keyID string, err error)
}

// FileStore is a KeyStore in a local directory (mode 0700):
//
//	subjects/<sha256 hex of subject>   the id of the subject's current key
//	keys/<key id>.key                  the 32-byte KEK, hex (mode 0600)
//	erased/<key id>                    the time the key was destroyed (RFC 3339)
//
// Several processes may share it: keys are created with O_EXCL. Destroy
// removes the key file; it is gone from this machine (back-ups of the
// directory must be handled like the keys themselves).
type FileStore struct {
	dir string

	mu   sync.Mutex
	keks map[string][]byte // by key id
}

// OpenFileStore opens (creating it if needed) a key directory.
func OpenFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("key store: no directory")
	}
	for _, sub := range []string{"subjects", "keys", "erased"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("key store: %w", err)
		}
	}
	return &FileStore{dir: dir, keks: map[string][]byte{}}, nil
}

func (s *FileStore) subjectFile(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return filepath.Join(s.dir, "subjects", hex.EncodeToString(sum[:]))
}

func (s *FileStore) keyFile(id string) string { return filepath.Join(s.dir, "keys", id+".key") }

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// KeyFor implements KeyStore.
func (s *FileStore) KeyFor(_ context.Context, subject string) (string, error) {
	for range 5 {
		data, err := os.ReadFile(s.subjectFile(subject))
		if err == nil {
			id := strings.TrimSpace(string(data))
			if !validID(id) {
				return "", fmt.Errorf("key store: %s: not a key id", s.subjectFile(subject))
			}
			if _, err := os.Stat(s.keyFile(id)); err == nil {
				return id, nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
			// Being destroyed (Destroy removes the subject's file first,
			// then the key): look again.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		id, err := s.create()
		if err != nil {
			return "", err
		}
		// Written whole to a temporary file, then linked in place: link
		// fails when the name exists (another goroutine or process was
		// first), and a reader never sees a half-written file.
		tmp := s.subjectFile(subject) + "." + id + ".tmp"
		if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
			return "", err
		}
		err = os.Link(tmp, s.subjectFile(subject))
		_ = os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) { // another one was first
			_ = os.Remove(s.keyFile(id))
			continue
		}
		if err != nil {
			return "", err
		}
		return id, nil
	}
	return "", errors.New("key store: the subject's key file names a key that does not exist")
}

// create writes a new random KEK and returns its id.
func (s *FileStore) create() (string, error) {
	var id [16]byte
	kek := make([]byte, 32)
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	if _, err := rand.Read(kek); err != nil {
		return "", err
	}
	hid := hex.EncodeToString(id[:])
	f, err := os.OpenFile(s.keyFile(hid), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, werr := f.WriteString(hex.EncodeToString(kek) + "\n")
	if err := f.Sync(); werr == nil {
		werr = err
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	return hid, werr
}

func (s *FileStore) kek(id string) (cipher.AEAD, error) {
	if !validID(id) {
		return nil, fmt.Errorf("key store: %q is not a key id", id)
	}
	s.mu.Lock()
	k := s.keks[id]
	s.mu.Unlock()
	// A cached key is used only while its file exists: Destroy in another
	// process takes effect at once.
	data, err := os.ReadFile(s.keyFile(id))
	if errors.Is(err, fs.ErrNotExist) {
		s.mu.Lock()
		delete(s.keks, id)
		s.mu.Unlock()
		if _, err := os.Stat(filepath.Join(s.dir, "erased", id)); err == nil {
			return nil, ErrErased
		}
		return nil, fmt.Errorf("key store %s: no key %s (another store's key, or lost)", s.dir, id)
	}
	if err != nil {
		return nil, err
	}
	if k == nil {
		if k, err = hex.DecodeString(strings.TrimSpace(string(data))); err != nil || len(k) != 32 {
			return nil, fmt.Errorf("key store: %s is not a 32-byte hex key", s.keyFile(id))
		}
		s.mu.Lock()
		s.keks[id] = k
		s.mu.Unlock()
	}
	return newGCM(k)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// Wrap implements KeyStore: AES-256-GCM under the KEK, nonce ‖ ciphertext,
// the key id as additional data.
func (s *FileStore) Wrap(_ context.Context, keyID string, dataKey []byte) ([]byte, error) {
	g, err := s.kek(keyID)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(dataKey)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, dataKey, []byte(keyID)), nil
}

// Unwrap implements KeyStore.
func (s *FileStore) Unwrap(_ context.Context, keyID string, wrapped []byte) ([]byte, error) {
	if _, err := os.Stat(filepath.Join(s.dir, "erased", keyID)); err == nil && validID(keyID) {
		return nil, ErrErased
	}
	g, err := s.kek(keyID)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < g.NonceSize() {
		return nil, errors.New("wrapped key too short")
	}
	return g.Open(nil, wrapped[:g.NonceSize()], wrapped[g.NonceSize():], []byte(keyID))
}

// Destroy implements KeyStore: erased/<id> records when, the subject's file
// is removed (new events get a new key), then the key file is overwritten,
// synced and removed.
func (s *FileStore) Destroy(_ context.Context, subject string) (string, error) {
	data, err := os.ReadFile(s.subjectFile(subject))
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrNoKey
	}
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(data))
	if !validID(id) {
		return "", fmt.Errorf("key store: %s: not a key id", s.subjectFile(subject))
	}
	if err := os.WriteFile(filepath.Join(s.dir, "erased", id), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return "", err
	}
	// The subject's file first: from now on KeyFor creates a new key.
	if err := os.Remove(s.subjectFile(subject)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if f, err := os.OpenFile(s.keyFile(id), os.O_WRONLY, 0); err == nil {
		_, _ = f.Write(make([]byte, 65))
		_ = f.Sync()
		_ = f.Close()
	}
	if err := os.Remove(s.keyFile(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	s.mu.Lock()
	delete(s.keks, id)
	s.mu.Unlock()
	return id, nil
}
