package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// Type is the "type" member of a sealed raw event.
const Type = "auditline.raw-event/v1"

// Alg is the only content algorithm.
const Alg = "A256GCM"

// Sealed is a raw source event as the archive holds it (archive_canonical of
// a raw batch row): RFC 8785 canonical JSON of these members. Everything but
// Ciphertext is clear metadata; the event's bytes are only in Ciphertext.
type Sealed struct {
	Type string `json:"type"`
	Alg  string `json:"alg"`
	// KeyID names the data subject's KEK in the key store (opaque).
	KeyID string `json:"key_id"`
	// WrappedKey is the data key wrapped by the KEK (base64 in JSON).
	WrappedKey []byte `json:"wrapped_key"`
	// Nonce and Ciphertext: AES-256-GCM of the event's bytes under the data
	// key, with additional data AAD(KeyID, SHA256).
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
	// SHA256 is the hex SHA-256 of the event's bytes (the value decision
	// records name in evidence.sources[].sha256); Size their length.
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
	// Headers are the ingest headers of the Kafka record (auditline-*).
	Headers map[string]string `json:"headers,omitempty"`
}

// AAD is the additional authenticated data of the content encryption.
func AAD(keyID, sha string) []byte { return []byte(Type + "\n" + keyID + "\n" + sha) }

// Sealer seals events. It keeps one data key per KEK for its lifetime (one
// Wrap call per subject, as a KMS wants), and asks the key store for the
// subject's key on every event, so a key destroyed meanwhile is never used.
type Sealer struct {
	KS KeyStore

	mu   sync.Mutex
	deks map[string][2][]byte // key id → data key, wrapped data key
}

// NewSealer returns a Sealer over ks.
func NewSealer(ks KeyStore) *Sealer { return &Sealer{KS: ks, deks: map[string][2][]byte{}} }

// Seal encrypts value for subject and returns the canonical JSON of its
// Sealed form.
func (s *Sealer) Seal(ctx context.Context, subject string, value []byte, headers map[string]string) ([]byte, error) {
	id, dk, err := s.dataKey(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	g, err := newGCM(dk[0])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(value)
	sha := hex.EncodeToString(sum[:])
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	e := Sealed{Type: Type, Alg: Alg, KeyID: id, WrappedKey: dk[1], Nonce: nonce,
		Ciphertext: g.Seal(nil, nonce, value, AAD(id, sha)), SHA256: sha, Size: len(value), Headers: headers}
	return e.Canonical()
}

// dataKey returns subject's current key id and the data key (clear and
// wrapped) sealed under it. A key destroyed between KeyFor and Wrap is asked
// for again.
func (s *Sealer) dataKey(ctx context.Context, subject string) (string, [2][]byte, error) {
	for attempt := 0; ; attempt++ {
		id, err := s.KS.KeyFor(ctx, subject)
		if err != nil {
			return "", [2][]byte{}, err
		}
		s.mu.Lock()
		dk, ok := s.deks[id]
		s.mu.Unlock()
		if ok {
			return id, dk, nil
		}
		dek := make([]byte, 32)
		if _, err := rand.Read(dek); err != nil {
			return "", dk, err
		}
		w, err := s.KS.Wrap(ctx, id, dek)
		if errors.Is(err, ErrErased) && attempt < 3 {
			continue
		}
		if err != nil {
			return "", dk, err
		}
		dk = [2][]byte{dek, w}
		s.mu.Lock()
		s.deks[id] = dk
		s.mu.Unlock()
		return id, dk, nil
	}
}

// Canonical returns the RFC 8785 bytes of e.
func (e *Sealed) Canonical() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	v := jsontext.Value(b)
	if err := v.Canonicalize(); err != nil {
		return nil, err
	}
	return v, nil
}

// Parse reads a sealed event (clear members only: nothing is decrypted).
func Parse(data []byte) (*Sealed, error) {
	var e Sealed
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("not a sealed raw event: %w", err)
	}
	if e.Type != Type || e.Alg != Alg {
		return nil, fmt.Errorf("not a sealed raw event: type %q alg %q", e.Type, e.Alg)
	}
	return &e, nil
}

// Open decrypts a sealed event and checks its bytes against its SHA-256.
// ErrErased when its key was destroyed.
func Open(ctx context.Context, ks KeyStore, e *Sealed) ([]byte, error) {
	dek, err := ks.Unwrap(ctx, e.KeyID, e.WrappedKey)
	if err != nil {
		if errors.Is(err, ErrErased) {
			return nil, err
		}
		return nil, fmt.Errorf("unwrap the data key (key %s): %w", e.KeyID, err)
	}
	g, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	if len(e.Nonce) != g.NonceSize() {
		return nil, errors.New("sealed raw event: bad nonce")
	}
	pt, err := g.Open(nil, e.Nonce, e.Ciphertext, AAD(e.KeyID, e.SHA256))
	if err != nil {
		return nil, fmt.Errorf("sealed raw event does not decrypt: %w", err)
	}
	sum := sha256.Sum256(pt)
	if hex.EncodeToString(sum[:]) != e.SHA256 || len(pt) != e.Size {
		return nil, errors.New("sealed raw event: the decrypted bytes do not match its sha256")
	}
	return pt, nil
}
