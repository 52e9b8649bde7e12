// Package rawlog reads the archive's raw logs (docs/archive.md "Raw
// evidence"): it finds the sealed raw source event at a (topic, partition,
// offset) that a decision record names as evidence, checked against the
// signed manifest of its batch, and keeps the erasure statements
// `auditline erase` writes.
package rawlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/privacy/envelope"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
)

// ErrNotArchived means no sealed batch of the raw log covers the offset.
var ErrNotArchived = errors.New("not in the archive's raw log")

// Found is one sealed raw event and where it is.
type Found struct {
	Sealed      *envelope.Sealed
	Canonical   []byte // archive_canonical: the leaf's record bytes
	ManifestKey string
	ObjectKey   string
	Timestamp   int64 // Kafka, Unix ms
}

// Fetch returns the sealed event at (topic, partition, offset) of the raw
// log under lay. Everything is checked before it is returned: the batch's
// manifest opens with keys and is for this topic, the batch object has the
// signed size and SHA-256, every leaf recomputes from its row and the leaves
// give the signed root.
func Fetch(ctx context.Context, b *bucket.Bucket, lay layout.Layout, keys note.Verifiers, topic string, partition int32, offset int64) (*Found, error) {
	mkey, err := findManifest(ctx, b, lay, partition, offset)
	if err != nil {
		return nil, err
	}
	if mkey == "" {
		return nil, ErrNotArchived
	}
	mdata, _, err := b.Get(ctx, mkey)
	if err != nil {
		return nil, err
	}
	m, _, err := manifest.Open(mdata, keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mkey, err)
	}
	if m.Topic != topic || m.Partition != partition {
		return nil, fmt.Errorf("%s: a manifest of %s partition %d, not %s partition %d", mkey, m.Topic, m.Partition, topic, partition)
	}
	if offset >= m.To {
		return nil, ErrNotArchived
	}
	data, _, err := b.Get(ctx, m.ObjectKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != m.ObjectSHA256 || int64(len(data)) != m.ObjectSize {
		return nil, fmt.Errorf("%s: size or SHA-256 differ from its signed manifest %s", m.ObjectKey, mkey)
	}
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.ObjectKey, err)
	}
	defer f.Close()
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return nil, err
	}
	tss, err := f.Times(ctx, batch.ColTimestamp)
	if err != nil {
		return nil, err
	}
	canon, err := f.Binaries(ctx, batch.ColCanonical)
	if err != nil {
		return nil, err
	}
	if len(offs) != len(canon) || len(offs) != len(tss) {
		return nil, fmt.Errorf("%s: columns of different lengths", m.ObjectKey)
	}
	leaves := make([][]byte, len(offs))
	row := -1
	for i := range offs {
		l := merkletree.LeafV2(topic, partition, offs[i], int64(tss[i]), canon[i])
		leaves[i] = l[:]
		if offs[i] == offset {
			row = i
		}
	}
	root, err := merkletree.Root(leaves)
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(root) != m.MerkleRoot {
		return nil, fmt.Errorf("%s: its leaves do not give the signed root of %s", m.ObjectKey, mkey)
	}
	if row < 0 {
		return nil, fmt.Errorf("%w: offset %d is inside [%d, %d) of %s but has no row (a Kafka control record)", ErrNotArchived, offset, m.From, m.To, m.ObjectKey)
	}
	s, err := envelope.Parse(canon[row])
	if err != nil {
		return nil, fmt.Errorf("%s offset %d: %w", m.ObjectKey, offset, err)
	}
	return &Found{Sealed: s, Canonical: canon[row], ManifestKey: mkey, ObjectKey: m.ObjectKey, Timestamp: int64(tss[row])}, nil
}

// findManifest returns the key of the manifest of partition p with the
// greatest from ≤ offset, or "" when there is none: a binary search with
// one-key listings (about log2(offset) requests, however long the chain).
func findManifest(ctx context.Context, b *bucket.Bucket, lay layout.Layout, p int32, offset int64) (string, error) {
	if offset < 0 {
		return "", nil
	}
	// at(n): the first manifest with from ≥ n, if its from ≤ offset.
	at := func(n int64) (string, bool, error) {
		k, err := b.First(ctx, lay.ManifestPrefix(p), lay.ManifestAfter(p, n))
		if err != nil || k == "" {
			return "", false, err
		}
		_, from, err := lay.ParseManifest(k)
		if err != nil {
			return "", false, err
		}
		return k, from <= offset, nil
	}
	best, ok, err := at(0)
	if err != nil || !ok {
		return "", err
	}
	// Invariant: a manifest has lo ≤ from ≤ offset (best is the first such);
	// none has hi ≤ from ≤ offset.
	lo, hi := int64(0), offset+1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		k, ok, err := at(mid)
		if err != nil {
			return "", err
		}
		if ok {
			lo, best = mid, k
		} else {
			hi = mid
		}
	}
	return best, nil
}

// ErasureType is the "type" of an erasure statement.
const ErasureType = "auditline.erasure/v1"

// Erasure states that a data subject's key was destroyed: every raw event
// sealed under KeyID is unreadable from ErasedAt on. It names the key, never
// the subject. Stored as <prefix>erasures/<key id>.json (canonical JSON,
// Object Lock like every archive object).
type Erasure struct {
	Type     string `json:"type"`
	KeyID    string `json:"key_id"`
	ErasedAt string `json:"erased_at"` // RFC 3339 UTC
	Reason   string `json:"reason,omitempty"`
}

// ErasuresPrefix is where erasure statements are.
func ErasuresPrefix(lay layout.Layout) string { return lay.Prefix + "erasures/" }

// PutErasure writes the erasure statement of keyID.
func PutErasure(ctx context.Context, b *bucket.Bucket, lay layout.Layout, keyID, reason string, at time.Time, lock bucket.Lock) (string, error) {
	e := Erasure{Type: ErasureType, KeyID: keyID, ErasedAt: at.UTC().Format(time.RFC3339), Reason: reason}
	data, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	key := ErasuresPrefix(lay) + keyID + ".json"
	err = b.Put(ctx, key, append(data, '\n'), "application/json", lock)
	if errors.Is(err, bucket.ErrExists) {
		return key, nil // erased before: the first statement stands
	}
	return key, err
}

// Erasures lists the erasure statements, by key id.
func Erasures(ctx context.Context, b *bucket.Bucket, lay layout.Layout) (map[string]Erasure, error) {
	out := map[string]Erasure{}
	var keys []string
	if err := b.List(ctx, ErasuresPrefix(lay), "", func(in bucket.Info) error {
		if strings.HasSuffix(in.Key, ".json") {
			keys = append(keys, in.Key)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	sort.Strings(keys)
	for _, k := range keys {
		data, _, err := b.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		var e Erasure
		if err := json.Unmarshal(data, &e); err != nil || e.Type != ErasureType || k != ErasuresPrefix(lay)+e.KeyID+".json" {
			return nil, fmt.Errorf("%s: not an erasure statement", k)
		}
		out[e.KeyID] = e
	}
	return out, nil
}
