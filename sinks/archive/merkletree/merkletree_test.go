package merkletree

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

func hx(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestVectors pins leaf, node and root hashes from RFC 6962 §2.1 with the
// shell one-liner that reproduces each one.
func TestVectors(t *testing.T) {
	leafEmpty := LeafHash(nil)
	leaf00 := LeafHash([]byte{0x00})
	leaf10 := LeafHash([]byte{0x10})
	root2 := rfc6962.DefaultHasher.HashChildren(leafEmpty[:], leaf00[:])
	root3, err := Root([][]byte{leafEmpty[:], leaf00[:], leaf10[:]})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := Root(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, oneLiner string
		got            []byte
		want           string
	}{
		{"empty tree", `printf '' | sha256sum`, empty, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"leaf of empty input", `printf '\0' | sha256sum`, leafEmpty[:], "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"},
		{"leaf of 0x10", `printf '\0\x10' | sha256sum`, leaf10[:], "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"},
		{"node (size 2)", `{ printf '\1'; printf '\0' | openssl dgst -sha256 -binary; printf '\0\0' | openssl dgst -sha256 -binary; } | sha256sum`, root2, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"},
		{"root, size 3 (odd node promoted, not duplicated)", `{ printf '\1'; echo fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125 | xxd -r -p; printf '\0\x10' | openssl dgst -sha256 -binary; } | sha256sum`, root3, "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"},
	} {
		if !bytes.Equal(tc.got, hx(tc.want)) {
			t.Errorf("%s = %x, want %s\n  reproduce: %s", tc.name, tc.got, tc.want, tc.oneLiner)
		}
	}
}

// TestReferenceRoots checks every root of the RFC 6962 test tree (the leaf
// inputs and roots published with Certificate Transparency, as kept in
// transparency-dev/merkle/testonly) and every perfect node.
func TestReferenceRoots(t *testing.T) {
	inputs := testonly.LeafInputs()
	roots := testonly.RootHashes()
	for size := 0; size <= len(inputs); size++ {
		leaves := make([][]byte, size)
		for i := range leaves {
			h := LeafHash(inputs[i])
			leaves[i] = h[:]
		}
		got, err := Root(leaves)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, roots[size]) {
			t.Errorf("Root(size %d) = %x, want %x", size, got, roots[size])
		}
		tr, err := New(leaves)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tr.Root(), roots[size]) {
			t.Errorf("Tree(size %d).Root = %x, want %x", size, tr.Root(), roots[size])
		}
		if size == len(inputs) {
			for l, level := range testonly.NodeHashes() {
				for i, want := range level {
					if !bytes.Equal(tr.levels[l][i], want) {
						t.Errorf("node level %d index %d = %x, want %x", l, i, tr.levels[l][i], want)
					}
				}
			}
		}
	}
}

func leavesOf(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := LeafHash([]byte(fmt.Sprintf("record %d", i)))
		out[i] = h[:]
	}
	return out
}

// TestInclusionVerifies checks every proof of every tree up to 70 leaves with
// transparency-dev/merkle's verifier and against its reference tree, and that
// damaged proofs are rejected.
func TestInclusionVerifies(t *testing.T) {
	for n := 1; n <= 70; n++ {
		leaves := leavesOf(n)
		tr, err := New(leaves)
		if err != nil {
			t.Fatal(err)
		}
		ref := testonly.New(rfc6962.DefaultHasher)
		ref.Append(leaves...)
		if !bytes.Equal(ref.Hash(), tr.Root()) {
			t.Fatalf("size %d: root %x, reference %x", n, tr.Root(), ref.Hash())
		}
		for i := range uint64(n) {
			path, err := tr.Inclusion(i)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, uint64(n), leaves[i], path, tr.Root()); err != nil {
				t.Fatalf("size %d index %d: %v", n, i, err)
			}
			refPath, err := ref.InclusionProof(i, uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if len(refPath) != len(path) {
				t.Fatalf("size %d index %d: path length %d, reference %d", n, i, len(path), len(refPath))
			}
			for k := range path {
				if !bytes.Equal(path[k], refPath[k]) {
					t.Fatalf("size %d index %d: path[%d] differs from the reference", n, i, k)
				}
			}
			// Damaged proofs must fail.
			for _, bad := range damaged(path) {
				if proof.VerifyInclusion(rfc6962.DefaultHasher, i, uint64(n), leaves[i], bad, tr.Root()) == nil {
					t.Fatalf("size %d index %d: a damaged proof verified", n, i)
				}
			}
			if n > 1 && proof.VerifyInclusion(rfc6962.DefaultHasher, (i+1)%uint64(n), uint64(n), leaves[i], path, tr.Root()) == nil {
				t.Fatalf("size %d index %d: proof verified at another index", n, i)
			}
		}
	}
}

func damaged(path [][]byte) [][][]byte {
	var out [][][]byte
	extra := sha256.Sum256([]byte("extra"))
	out = append(out, append(clonePath(path), extra[:]))
	if len(path) > 0 {
		out = append(out, clonePath(path)[:len(path)-1])
		flipped := clonePath(path)
		flipped[0][7] ^= 0x10
		out = append(out, flipped)
	}
	return out
}

func clonePath(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i])
	}
	return out
}

func TestBadLeafSize(t *testing.T) {
	if _, err := Root([][]byte{{1, 2}}); err == nil {
		t.Fatal("Root accepted a short leaf")
	}
	if _, err := New([][]byte{{1, 2}}); err == nil {
		t.Fatal("New accepted a short leaf")
	}
	tr, _ := New(leavesOf(3))
	if _, err := tr.Inclusion(3); err == nil {
		t.Fatal("Inclusion accepted an index out of range")
	}
}

// BenchmarkTree reports tree building beside raw SHA-256 of the same leaves.
func BenchmarkTree(b *testing.B) {
	leaves := leavesOf(20_000)
	b.Run("sha256-baseline", func(b *testing.B) {
		for b.Loop() {
			for _, l := range leaves {
				sha256.Sum256(l)
			}
		}
		b.ReportMetric(float64(len(leaves))*float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	})
	b.Run("tree", func(b *testing.B) {
		for b.Loop() {
			if _, err := New(leaves); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(leaves))*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
	})
}

// TestLeafV2Vector pins the auditline.leaf/v2 rule. Reproduce with:
//
//	{ printf '\0auditline.leaf/v2\nauditline.decisions\n3\n1000\n1763807445118\n'; printf '%s' '{"record_id":"r1","version":1}'; } | sha256sum
func TestLeafV2Vector(t *testing.T) {
	rec := []byte(`{"record_id":"r1","version":1}`)
	got := LeafV2("auditline.decisions", 3, 1000, 1763807445118, rec)
	if want := "d28e12470b9522001214bf9e4b15f3b7498f040d348280cef1ab971418e8607d"; hex.EncodeToString(got[:]) != want {
		t.Fatalf("LeafV2 = %x, want %s", got, want)
	}
	// Every position field is bound: changing any one changes the leaf.
	for name, other := range map[string][Size]byte{
		"topic":     LeafV2("auditline.decisionz", 3, 1000, 1763807445118, rec),
		"partition": LeafV2("auditline.decisions", 4, 1000, 1763807445118, rec),
		"offset":    LeafV2("auditline.decisions", 3, 1001, 1763807445118, rec),
		"timestamp": LeafV2("auditline.decisions", 3, 1000, 1763807445119, rec),
		"record":    LeafV2("auditline.decisions", 3, 1000, 1763807445118, append(rec, ' ')),
		"v1 rule":   LeafHash(rec),
	} {
		if other == got {
			t.Errorf("changing the %s does not change the leaf", name)
		}
	}
}
