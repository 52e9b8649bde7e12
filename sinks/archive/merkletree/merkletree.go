// Package merkletree computes the RFC 6962 (§2.1) / RFC 9162 (§2.1) Merkle tree
// of one archive batch: leaf hashes, the root, and inclusion proofs.
//
//	leaf = SHA-256(0x00 ‖ leaf input)        (the leaf rule names the input)
//	node = SHA-256(0x01 ‖ left ‖ right)
//
// Leaf rules (a manifest names the rule of its batch in "leaf_rule"; a v1
// manifest has no such member and means auditline.leaf/v1):
//
//	auditline.leaf/v1  input = record                        (batches sealed before leaves bound their position)
//	auditline.leaf/v2  input = "auditline.leaf/v2\n" ‖ topic ‖ "\n" ‖ partition ‖ "\n" ‖
//	                           offset ‖ "\n" ‖ timestamp ‖ "\n" ‖ record
//
// where record is the archive_canonical bytes, partition, offset and
// timestamp (the Kafka timestamp in Unix milliseconds) are ASCII decimal
// without leading zeros, and topic is the Kafka topic name (which cannot hold
// a newline, so the input splits unambiguously). A v2 leaf binds the record to
// its place in the log: the same record bytes sealed at another offset, in
// another partition or with another publish time hash to another leaf, so a
// copied record cannot pass for the original. LeafV2 is the only code that
// builds a v2 leaf input.
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
	"strconv"

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

// Leaf rules.
const (
	LeafRuleV1 = "auditline.leaf/v1"
	LeafRuleV2 = "auditline.leaf/v2"
)

// LeafV2 returns the auditline.leaf/v2 hash of a record sealed at (topic,
// partition, offset) with Kafka timestamp tsMillis (see the package doc).
func LeafV2(topic string, partition int32, offset, tsMillis int64, record []byte) [Size]byte {
	var hdr [96]byte
	h := sha256.New()
	h.Write(AppendLeafV2Header(hdr[:0], topic, partition, offset, tsMillis))
	h.Write(record)
	var out [Size]byte
	h.Sum(out[:0])
	return out
}

// AppendLeafV2Header appends to b what an auditline.leaf/v2 hash covers
// before the record's bytes: LeafV2 is SHA-256(header ‖ record). Callers
// hashing many leaves reuse one buffer and one hash state with it.
func AppendLeafV2Header(b []byte, topic string, partition int32, offset, tsMillis int64) []byte {
	b = append(b, rfc6962.RFC6962LeafHashPrefix)
	b = append(b, LeafRuleV2...)
	b = append(b, '\n')
	b = append(b, topic...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, offset, 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, tsMillis, 10)
	return append(b, '\n')
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
