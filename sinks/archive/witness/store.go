package witness

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// state is the latest checkpoint the witness cosigned for one log.
type state struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   []byte `json:"root"` // base64 in JSON
}

// store keeps one small JSON file per log under dir/logs, replaced
// atomically (write to a temporary file, fsync, rename, fsync the
// directory), so the state on disk is always the old or the new checkpoint,
// never a torn one. A lock on dir/LOCK keeps a second process out.
type store struct {
	dir  string
	lock *os.File
}

func openStore(dir string) (*store, error) {
	if dir == "" {
		return nil, errors.New("witness: a state directory is required")
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("witness state %s is in use by another process: %w", dir, err)
	}
	return &store{dir: dir, lock: f}, nil
}

func (s *store) close() error { return s.lock.Close() }

func (s *store) path(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return filepath.Join(s.dir, "logs", hex.EncodeToString(sum[:16])+".json")
}

// get returns the log's state; a log never cosigned is at size 0.
func (s *store) get(origin string) (state, error) {
	b, err := os.ReadFile(s.path(origin))
	if errors.Is(err, os.ErrNotExist) {
		return state{Origin: origin}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("witness state of %s: %w", origin, err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil || st.Origin != origin {
		return state{}, fmt.Errorf("witness state of %s is corrupt (%s): refusing to cosign", origin, s.path(origin))
	}
	return st, nil
}

func (s *store) put(st state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	p := s.path(st.Origin)
	tmp, err := os.CreateTemp(filepath.Dir(p), ".state-*")
	if err != nil {
		return fmt.Errorf("witness state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("witness state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("witness state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("witness state: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("witness state: %w", err)
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return fmt.Errorf("witness state: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// NewSigner returns the cosignature/v1 note signer of an Ed25519 key under
// the witness name, and its verifier key (vkey, type 0x04).
func NewSigner(name string, key ed25519.PrivateKey) (note.Signer, string, error) {
	pub := key.Public().(ed25519.PublicKey)
	plain, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, "", fmt.Errorf("witness name %q: %w", name, err)
	}
	vkey, err := fnote.VKeyToCosignatureV1(plain)
	if err != nil {
		return nil, "", fmt.Errorf("witness key: %w", err)
	}
	// The signer key in C2SP signed-note form: PRIVATE+KEY+<name>+<hash>+base64(0x04 ‖ seed).
	_, hash, _ := cut3(vkey)
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{0x04}, key.Seed()...))
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, "", fmt.Errorf("witness key: %w", err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil || s.KeyHash() != v.KeyHash() {
		return nil, "", fmt.Errorf("witness key: signer and verifier key hashes differ (%v)", err)
	}
	return s, vkey, nil
}

// cut3 splits a vkey "name+hash+key" into name, hash and key.
func cut3(vkey string) (name, hash, key string) {
	var rest string
	name, rest, _ = cutPlus(vkey)
	hash, key, _ = cutPlus(rest)
	return name, hash, key
}

func cutPlus(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '+' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
