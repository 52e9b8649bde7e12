// Package tlog is the archive's global log: one append-only RFC 6962 / RFC
// 9162 Merkle tree over the leaves of every sealed batch of every partition,
// whose state is published in C2SP tlog-checkpoint form
// (https://c2sp.org/tlog-checkpoint) so that a witness can check it only
// grows (https://c2sp.org/tlog-witness).
//
// Log order. Partitions are sealed independently (by several archiver
// processes), so the order comes from the checkpoints: checkpoint k (v2)
// appends the batches that lie between the heads of the previous v2
// checkpoint (none for the first) and its own heads — partition by partition
// in ascending order, each partition's batches in chain order (seq), each
// batch's leaves in row order (archive_offset). A batch's leaves are those of
// its own tree (archive_leaf, under the batch's leaf rule), so batches sealed
// under any leaf rule join the same log.
//
// A checkpoint states the log's size, root and frontier: the roots of the
// perfect subtrees that make up [0, size) from left to right (its compact
// range, transparency-dev/merkle/compact). From the frontier the next
// checkpoint continues without re-reading old leaves, and a consistency
// proof from size m to n needs only the frontier at m and the leaves
// appended after m (Consistency): every node of an RFC 6962 consistency proof
// is either a frontier node at m or a node of the compact range [m, n) — an
// identity TestConsistencyNodes checks over every pair of sizes below 160.
//
// The hashing, compact ranges, proof shapes and proof verification are
// github.com/transparency-dev/merkle (the reference implementation behind
// Certificate Transparency and the tlog ecosystem); the checkpoint text is
// github.com/transparency-dev/formats/log and the signatures are
// golang.org/x/mod/sumdb/note (C2SP signed-note). This package only adds the
// frontier bookkeeping, which neither library offers for a log whose leaves
// live in other objects.
package tlog

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// HashSize is the size of every hash.
const HashSize = 32

var factory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Segment is a compact range [Begin, End) of the log, built at its global
// position: appending leaves to it computes exactly the nodes the whole log
// has over that range. A segment starting at 0 is the whole log up to End.
type Segment struct{ r *compact.Range }

// NewSegment returns an empty segment that starts at leaf index begin.
func NewSegment(begin uint64) *Segment { return &Segment{r: factory.NewEmptyRange(begin)} }

// FromFrontier returns the log [0, size) from its frontier.
func FromFrontier(size uint64, frontier [][]byte) (*Segment, error) {
	for i, h := range frontier {
		if len(h) != HashSize {
			return nil, fmt.Errorf("frontier[%d]: %d bytes, want %d", i, len(h), HashSize)
		}
	}
	r, err := factory.NewRange(0, size, cloneHashes(frontier))
	if err != nil {
		return nil, fmt.Errorf("frontier of a log of %d leaves: %w", size, err)
	}
	return &Segment{r: r}, nil
}

// Begin is the index of the segment's first leaf.
func (s *Segment) Begin() uint64 { return s.r.Begin() }

// End is the index after the segment's last leaf (the log size when Begin is 0).
func (s *Segment) End() uint64 { return s.r.End() }

// Append adds one leaf hash.
func (s *Segment) Append(leaf []byte) error {
	if len(leaf) != HashSize {
		return fmt.Errorf("leaf %d: %d bytes, want %d", s.r.End(), len(leaf), HashSize)
	}
	return s.r.Append(leaf, nil)
}

// AppendSegment merges o, which must begin where s ends.
func (s *Segment) AppendSegment(o *Segment) error { return s.r.AppendRange(o.r, nil) }

// Clone returns an independent copy.
func (s *Segment) Clone() *Segment {
	r, _ := factory.NewRange(s.r.Begin(), s.r.End(), cloneHashes(s.r.Hashes()))
	return &Segment{r: r}
}

// Frontier returns the segment's compact range hashes, left to right (for a
// segment starting at 0: the log's frontier).
func (s *Segment) Frontier() [][]byte { return cloneHashes(s.r.Hashes()) }

// Root returns the RFC 6962 root of the log [0, End) (the hash of the empty
// string for an empty log). The segment must start at 0.
func (s *Segment) Root() ([]byte, error) {
	if s.r.End() == s.r.Begin() && s.r.Begin() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return s.r.GetRootHash(nil)
}

func cloneHashes(hs [][]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = bytes.Clone(h)
	}
	return out
}

// Consistency returns the RFC 6962 §2.1.2 (RFC 9162 §2.1.4) consistency
// proof from the log of size m, whose frontier is given, to the log of size
// seg.End(); seg must be the segment [m, n). The proof is empty when m is 0
// or m equals n.
func Consistency(m uint64, frontier [][]byte, seg *Segment) ([][]byte, error) {
	if seg.Begin() != m {
		return nil, fmt.Errorf("consistency from %d: the segment starts at %d", m, seg.Begin())
	}
	n := seg.End()
	nodes, err := proof.Consistency(m, n)
	if err != nil {
		return nil, err
	}
	known := map[compact.NodeID][]byte{}
	left := compact.RangeNodes(0, m, nil)
	if len(left) != len(frontier) {
		return nil, fmt.Errorf("consistency from %d: the frontier has %d hashes, want %d", m, len(frontier), len(left))
	}
	for i, id := range left {
		known[id] = frontier[i]
	}
	right := compact.RangeNodes(m, n, nil)
	hs := seg.r.Hashes()
	if len(right) != len(hs) {
		return nil, fmt.Errorf("consistency to %d: the segment has %d hashes, want %d", n, len(hs), len(right))
	}
	for i, id := range right {
		known[id] = hs[i]
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, ok := known[id]
		if !ok { // cannot happen (TestConsistencyNodes); never return a wrong proof
			return nil, fmt.Errorf("consistency %d→%d: node %+v is neither in the frontier nor in the segment", m, n, id)
		}
		hashes[i] = bytes.Clone(h)
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// VerifyConsistency checks a consistency proof between two tree heads
// (transparency-dev/merkle's proof.VerifyConsistency).
func VerifyConsistency(m, n uint64, p [][]byte, rootM, rootN []byte) error {
	return proof.VerifyConsistency(rfc6962.DefaultHasher, m, n, p, rootM, rootN)
}

// EncodeHashes returns hashes as lowercase hex strings.
func EncodeHashes(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h)
	}
	return out
}

// DecodeHashes parses lowercase hex hashes.
func DecodeHashes(ss []string) ([][]byte, error) {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		h, err := hex.DecodeString(s)
		if err != nil || len(h) != HashSize {
			return nil, fmt.Errorf("hash %d: %q is not %d bytes of hex", i, s, HashSize)
		}
		out[i] = h
	}
	return out, nil
}

// Checkpoint is the log state as a C2SP tlog-checkpoint states it.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
}

// Text returns the checkpoint's note text: the origin, the size in decimal
// and the base64 root, each on its own line (no extension lines).
func (c Checkpoint) Text() string {
	return string(log.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Root}.Marshal())
}

// Sign returns the checkpoint as a signed note. The signer's key name should
// be the origin (C2SP tlog-checkpoint).
func (c Checkpoint) Sign(signers ...note.Signer) ([]byte, error) {
	if len(c.Root) != HashSize || c.Origin == "" {
		return nil, errors.New("tlog checkpoint: want an origin and a 32-byte root")
	}
	return note.Sign(&note.Note{Text: c.Text()}, signers...)
}

// ErrSignature means no trusted key signed a note.
var ErrSignature = errors.New("not signed by a trusted key")

// Open verifies a checkpoint note: at least one signature by a key of known
// (the log's keys, and any witnesses' cosignature verifiers) and the text is
// exactly a checkpoint without extension lines. The returned note lists the
// signatures that verified (Sigs) and those from unknown keys (UnverifiedSigs).
func Open(msg []byte, known note.Verifiers) (Checkpoint, *note.Note, error) {
	n, err := note.Open(msg, known)
	if err != nil {
		var uv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		if errors.As(err, &uv) || errors.As(err, &inv) {
			return Checkpoint{}, nil, fmt.Errorf("tlog checkpoint: %w: %v", ErrSignature, err)
		}
		return Checkpoint{}, nil, fmt.Errorf("tlog checkpoint: %w", err)
	}
	c, err := Parse(n.Text)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	return c, n, nil
}

// Parse reads a checkpoint note's text strictly: three lines, no extension
// lines, a size without leading zeros and a 32-byte base64 root.
func Parse(text string) (Checkpoint, error) {
	var lc log.Checkpoint
	rest, err := lc.Unmarshal([]byte(text))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("tlog checkpoint: %w", err)
	}
	if len(rest) != 0 {
		return Checkpoint{}, errors.New("tlog checkpoint: unexpected extension lines")
	}
	c := Checkpoint{Origin: lc.Origin, Size: lc.Size, Root: lc.Hash}
	if len(c.Root) != HashSize || c.Text() != text {
		return Checkpoint{}, errors.New("tlog checkpoint: not in canonical form (origin, decimal size, base64 of a 32-byte root)")
	}
	return c, nil
}

// RootBase64 returns the root as the checkpoint writes it.
func (c Checkpoint) RootBase64() string { return base64.StdEncoding.EncodeToString(c.Root) }
