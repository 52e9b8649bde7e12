package tlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/auditline/auditline/sinks/archive/keys"
)

func leaf(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return rfc6962.DefaultHasher.HashLeaf(b[:])
}

// logOf returns the log [0, n) of the test leaves.
func logOf(t testing.TB, n uint64) *Segment {
	s := NewSegment(0)
	for i := range n {
		if err := s.Append(leaf(i)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func segmentOf(t testing.TB, m, n uint64) *Segment {
	s := NewSegment(m)
	for i := m; i < n; i++ {
		if err := s.Append(leaf(i)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// hashReader serves x/mod/sumdb/tlog's stored-hash layout over the test leaves,
// so that its independent proof code can be compared with ours.
type hashReader map[int64]xtlog.Hash

func (h hashReader) ReadHashes(idx []int64) ([]xtlog.Hash, error) {
	out := make([]xtlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = h[x]
	}
	return out, nil
}

// TestConsistencyNodes checks, for every 0 < m ≤ n < 160, that the proof
// built from the frontier at m and the segment [m, n) verifies with
// transparency-dev/merkle, is byte for byte the proof x/mod/sumdb/tlog (which
// litewitness uses) builds from the whole tree, and is accepted by
// tlog.CheckTree.
func TestConsistencyNodes(t *testing.T) {
	const max = 160
	stored := hashReader{}
	for i := int64(0); i < max; i++ {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		hs, err := xtlog.StoredHashes(i, b[:], stored)
		if err != nil {
			t.Fatal(err)
		}
		base := xtlog.StoredHashIndex(0, i)
		for j, h := range hs {
			stored[base+int64(j)] = h
		}
	}
	roots := make([][]byte, max)
	fronts := make([][][]byte, max)
	for n := uint64(0); n < max; n++ {
		l := logOf(t, n)
		r, err := l.Root()
		if err != nil {
			t.Fatal(err)
		}
		roots[n], fronts[n] = r, l.Frontier()
	}
	for m := uint64(1); m < max; m++ {
		for n := m; n < max; n++ {
			p, err := Consistency(m, fronts[m], segmentOf(t, m, n))
			if err != nil {
				t.Fatalf("%d→%d: %v", m, n, err)
			}
			if err := VerifyConsistency(m, n, p, roots[m], roots[n]); err != nil {
				t.Fatalf("%d→%d: does not verify: %v", m, n, err)
			}
			want, err := xtlog.ProveTree(int64(n), int64(m), stored)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != len(p) {
				t.Fatalf("%d→%d: %d hashes, x/mod/sumdb/tlog has %d", m, n, len(p), len(want))
			}
			var xp xtlog.TreeProof
			for i := range p {
				if !bytes.Equal(p[i], want[i][:]) {
					t.Fatalf("%d→%d: hash %d differs from x/mod/sumdb/tlog's", m, n, i)
				}
				xp = append(xp, xtlog.Hash(p[i]))
			}
			if err := xtlog.CheckTree(xp, int64(n), xtlog.Hash(roots[n]), int64(m), xtlog.Hash(roots[m])); err != nil {
				t.Fatalf("%d→%d: x/mod/sumdb/tlog.CheckTree: %v", m, n, err)
			}
		}
	}
}

func TestFrontierRoundTrip(t *testing.T) {
	for _, n := range []uint64{0, 1, 2, 3, 7, 8, 100, 1023} {
		l := logOf(t, n)
		back, err := FromFrontier(n, l.Frontier())
		if err != nil {
			t.Fatal(err)
		}
		// Continuing from the frontier gives the same log as appending to the original.
		for i := n; i < n+37; i++ {
			back.Append(leaf(i))
		}
		want, _ := logOf(t, n+37).Root()
		got, _ := back.Root()
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d: continued root differs", n)
		}
		// Merging a segment is the same as appending its leaves.
		whole := logOf(t, n)
		if err := whole.AppendSegment(segmentOf(t, n, n+37)); err != nil {
			t.Fatal(err)
		}
		if got, _ := whole.Root(); !bytes.Equal(got, want) {
			t.Fatalf("n=%d: merged root differs", n)
		}
	}
	if _, err := FromFrontier(5, [][]byte{leaf(0)}); err == nil {
		t.Fatal("a frontier of the wrong length was accepted")
	}
	if r, _ := NewSegment(0).Root(); !bytes.Equal(r, sha256.New().Sum(nil)) {
		t.Fatalf("empty root = %x", r)
	}
}

func TestCheckpointNote(t *testing.T) {
	signer, err := keys.NewSigner("example.com/audit", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := logOf(t, 10).Root()
	c := Checkpoint{Origin: "example.com/audit", Size: 10, Root: root}
	msg, err := c.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(msg), "example.com/audit\n10\n"+c.RootBase64()+"\n\n— example.com/audit ") {
		t.Fatalf("note = %q", msg)
	}
	got, n, err := Open(msg, keys.NewRing(signer.Public()))
	if err != nil || got.Size != 10 || !bytes.Equal(got.Root, root) || len(n.Sigs) != 1 {
		t.Fatalf("Open = %+v, %v", got, err)
	}
	other, _ := keys.NewSigner("example.com/audit", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)))
	if _, _, err := Open(msg, keys.NewRing(other.Public())); err == nil {
		t.Fatal("opened with an untrusted key")
	}
	for _, text := range []string{
		"example.com/audit\n10\n" + c.RootBase64() + "\nextension\n",
		"example.com/audit\n010\n" + c.RootBase64() + "\n",
		"example.com/audit\n10\nAAAA\n",
		"\n10\n" + c.RootBase64() + "\n",
		"example.com/audit\n-1\n" + c.RootBase64() + "\n",
	} {
		bad, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			continue // not even a note text
		}
		if _, _, err := Open(bad, keys.NewRing(signer.Public())); err == nil {
			t.Errorf("accepted %q", text)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("example.com/audit\n10\n" + strings.Repeat("A", 43) + "=\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			return
		}
		if c.Text() != text {
			t.Fatalf("parsed a non-canonical checkpoint %q", text)
		}
	})
}
