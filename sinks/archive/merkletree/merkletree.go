// Package merkletree computes the RFC 6962 (§2.1) / RFC 9162 (§2.1) Merkle tree
// of one archive batch: leaf hashes, the root, and inclusion proofs.
//
//	leaf = SHA-256(0x00 ‖ canonical record bytes)
//	node = SHA-256(0x01 ‖ left ‖ right)
//
// The tree over n leaves splits at the largest power of two below n; odd nodes
// are never duplicated (unlike Bitcoin's tree, which makes a second-preimage
// of the last leaf possible). The hashing and the proof shape come from
// github.com/transparency-dev/merkle (rfc6962.DefaultHasher, compact ranges and
// proof.Inclusion), the reference implementation behind Certificate
// Transparency and the tlog ecosystem, so a proof produced here verifies with
// proof.VerifyInclusion or any other RFC 6962 library. This package only keeps
// a batch's perfect subtrees in memory so that every proof is a lookup.
package merkletree

import (
	"crypto/sha256"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Size of every hash in bytes.
const Size = sha256.Size

// LeafHash returns SHA-256(0x00 ‖ data): the leaf hash of one record's
// canonical bytes.
func LeafHash(data []byte) [Size]byte {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	h.Write(data)
	var out [Size]byte
	h.Sum(out[:0])
	return out
}

// Root returns the RFC 6962 root of the given leaf hashes (the SHA-256 of the
// empty string when there are none).
func Root(leaves [][]byte) ([]byte, error) {
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for i, l := range leaves {
		if len(l) != Size {
			return nil, fmt.Errorf("leaf %d: %d bytes, want %d", i, len(l), Size)
		}
		if err := r.Append(l, nil); err != nil {
			return nil, fmt.Errorf("leaf %d: %w", i, err)
		}
	}
	if len(leaves) == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

// Tree holds every perfect subtree of a batch, so that Inclusion is a lookup.
// It costs one hash per leaf beyond the leaves themselves.
type Tree struct {
	levels [][][]byte // levels[0] = leaves; levels[l][i] covers leaves [i·2^l, (i+1)·2^l)
	root   []byte
}

// New builds the tree over leaf hashes (each Size bytes). The slice is kept,
// not copied: do not modify it afterwards.
func New(leaves [][]byte) (*Tree, error) {
	for i, l := range leaves {
		if len(l) != Size {
			return nil, fmt.Errorf("leaf %d: %d bytes, want %d", i, len(l), Size)
		}
	}
	t := &Tree{levels: [][][]byte{leaves}}
	for cur := leaves; len(cur) > 1; {
		next := make([][]byte, len(cur)/2)
		for i := range next {
			next[i] = rfc6962.DefaultHasher.HashChildren(cur[2*i], cur[2*i+1])
		}
		t.levels = append(t.levels, next)
		cur = next
	}
	n := uint64(len(leaves))
	if n == 0 {
		t.root = rfc6962.DefaultHasher.EmptyRoot()
		return t, nil
	}
	ids := compact.RangeNodes(0, n, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		hashes[i] = t.levels[id.Level][id.Index]
	}
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r, err := rf.NewRange(0, n, hashes)
	if err != nil {
		return nil, fmt.Errorf("compact range: %w", err)
	}
	if t.root, err = r.GetRootHash(nil); err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	return t, nil
}

// Size returns the number of leaves.
func (t *Tree) Size() uint64 { return uint64(len(t.levels[0])) }

// Root returns the tree's root hash.
func (t *Tree) Root() []byte { return t.root }

// Leaf returns the hash of leaf i.
func (t *Tree) Leaf(i uint64) []byte { return t.levels[0][i] }

// Inclusion returns the audit path of leaf index (RFC 6962 §2.1.1, RFC 9162
// §2.1.3.1), ordered from the leaf's sibling up to the root's child.
func (t *Tree) Inclusion(index uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, t.Size())
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		if int(id.Level) >= len(t.levels) || id.Index >= uint64(len(t.levels[id.Level])) {
			return nil, fmt.Errorf("inclusion proof: node %+v outside tree of size %d", id, t.Size())
		}
		hashes[i] = t.levels[id.Level][id.Index]
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}
