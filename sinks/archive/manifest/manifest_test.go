package manifest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/merkletree"
	"github.com/auditline/auditline/sinks/archive/tlog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func testSigner(t testing.TB) *keys.Signer {
	t.Helper()
	s, err := keys.NewSigner("auditline.example/archive", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleManifest(s *keys.Signer) *Manifest {
	return &Manifest{
		Type: ManifestType, Origin: "auditline.example/archive", Topic: "auditline.decisions",
		Partition: 3, Seq: 1, From: 1000, To: 2000, Count: 998,
		MinTime: 1763807445118, MaxTime: 1763807505000,
		ObjectKey:     "batches/p0000000003/00000000000000001000-00000000000000002000.parquet",
		ObjectSize:    123456,
		ObjectSHA256:  strings.Repeat("ab", 32),
		MerkleRoot:    strings.Repeat("cd", 32),
		PrevSHA256:    strings.Repeat("ef", 32),
		SchemaVersion: 1, KeyID: s.KeyID(), SealedAt: 1763807506000,
		LeafRule: merkletree.LeafRuleV2,
	}
}

func sampleCheckpoint(s *keys.Signer) *Checkpoint {
	c := &Checkpoint{
		Type: CheckpointType, Origin: "auditline.example/archive", Seq: 7, Time: 1763807510000,
		PrevSHA256: strings.Repeat("01", 32), KeyID: s.KeyID(),
		Heads: []Head{
			{Partition: 0, Seq: 4, To: 5000, Manifest: "manifests/p0000000000/00000000000000004000.manifest", SHA256: strings.Repeat("02", 32)},
			{Partition: 3, Seq: 1, To: 2000, Manifest: "manifests/p0000000003/00000000000000001000.manifest", SHA256: strings.Repeat("03", 32)},
		},
		LogSize: 5998, LogRoot: strings.Repeat("04", 32),
		LogFrontier: []string{strings.Repeat("05", 32), strings.Repeat("06", 32), strings.Repeat("07", 32), strings.Repeat("08", 32),
			strings.Repeat("09", 32), strings.Repeat("0a", 32), strings.Repeat("0b", 32), strings.Repeat("0c", 32), strings.Repeat("0d", 32)},
	}
	if err := c.SignLog(s); err != nil {
		panic(err)
	}
	return c
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (go test -update to accept):\n got: %s\nwant: %s", name, got, want)
	}
}

// TestGolden pins the exact bytes of a signed manifest and checkpoint
// (Ed25519 is deterministic, so a fixed key gives fixed signatures).
func TestGolden(t *testing.T) {
	s := testSigner(t)
	m, err := sampleManifest(s).Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "manifest.golden", m)
	cp := sampleCheckpoint(s)
	c, err := cp.Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "checkpoint.golden", c)
	ln, err := cp.LogNote()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "checkpoint-log.golden", ln)
	// The rebuilt note is a C2SP checkpoint signed by the archive key.
	lc, n, err := tlog.Open(ln, keys.NewRing(s.Public()))
	if err != nil || lc.Size != cp.LogSize || len(n.Sigs) != 1 {
		t.Fatalf("tlog.Open(LogNote) = %+v, %v", lc, err)
	}
}

// TestV1StillOpens opens the v1 statements written before leaves bound their
// position and checkpoints carried the global log: an archive sealed then
// must keep verifying under its own rules.
func TestV1StillOpens(t *testing.T) {
	s := testSigner(t)
	ring := keys.NewRing(s.Public())
	mb, err := os.ReadFile("testdata/manifest-v1.golden")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := Open(mb, ring)
	if err != nil || m.Type != ManifestTypeV1 || m.Rule() != merkletree.LeafRuleV1 {
		t.Fatalf("v1 manifest: %+v, %v", m, err)
	}
	cb, err := os.ReadFile("testdata/checkpoint-v1.golden")
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := OpenCheckpoint(cb, ring)
	if err != nil || c.Type != CheckpointTypeV1 || c.LogSize != 0 {
		t.Fatalf("v1 checkpoint: %+v, %v", c, err)
	}
}

func TestRoundTrip(t *testing.T) {
	s := testSigner(t)
	ring := keys.NewRing(s.Public())
	want := sampleManifest(s)
	b, err := want.Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := Open(b, ring)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *want || len(n.Sigs) != 1 {
		t.Fatalf("Open = %+v, want %+v", got, want)
	}
	cb, err := sampleCheckpoint(s).Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := OpenCheckpoint(cb, ring)
	if err != nil || c.Seq != 7 || len(c.Heads) != 2 {
		t.Fatalf("OpenCheckpoint = %+v, %v", c, err)
	}
}

// TestRejects lists damaged manifests that Open must refuse, and whether the
// refusal is a signature failure.
func TestRejects(t *testing.T) {
	s := testSigner(t)
	ring := keys.NewRing(s.Public())
	good, _ := sampleManifest(s).Sign(s)
	resign := func(mut func(*Manifest)) []byte {
		m := sampleManifest(s)
		mut(m)
		text, err := canonical(m)
		if err != nil {
			t.Fatal(err)
		}
		b, err := note.Sign(&note.Note{Text: string(text)}, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signText := func(text string) []byte {
		b, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other, _ := keys.NewSigner("auditline.example/archive", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
	otherSigned, _ := sampleManifest(s).Sign(other)
	for _, tc := range []struct {
		name      string
		msg       []byte
		signature bool
	}{
		{"one byte of the body flipped", bytes.Replace(good, []byte(`"count":998`), []byte(`"count":999`), 1), true},
		{"signature byte flipped", flipInSig(good), true},
		{"signed by an untrusted key", otherSigned, true},
		{"empty", nil, false},
		{"not a note", []byte("hello\n"), false},
		{"non-canonical JSON", signText(strings.Replace(strings.SplitN(string(good), "\n", 2)[0], `{"count"`, `{ "count"`, 1) + "\n"), false},
		{"unknown member", signText(strings.Replace(strings.SplitN(string(good), "\n", 2)[0], `{"count"`, `{"a":1,"count"`, 1) + "\n"), false},
		{"two lines", signText(strings.SplitN(string(good), "\n", 2)[0] + "\n{}\n"), false},
		{"wrong type", resign(func(m *Manifest) { m.Type = CheckpointType }), false},
		{"count beyond range", resign(func(m *Manifest) { m.Count = 1001 }), false},
		{"empty range", resign(func(m *Manifest) { m.To = m.From }), false},
		{"bad root", resign(func(m *Manifest) { m.MerkleRoot = "zz" }), false},
		{"upper-case hex", resign(func(m *Manifest) { m.ObjectSHA256 = strings.Repeat("AB", 32) }), false},
		{"seq 0 with prev", resign(func(m *Manifest) { m.Seq = 0 }), false},
		{"seq 1 without prev", resign(func(m *Manifest) { m.PrevSHA256 = "" }), false},
		{"v2 without leaf_rule", resign(func(m *Manifest) { m.LeafRule = "" }), false},
		{"unknown leaf_rule", resign(func(m *Manifest) { m.LeafRule = "auditline.leaf/v9" }), false},
		{"v1 with a leaf_rule", resign(func(m *Manifest) { m.Type = ManifestTypeV1 }), false},
	} {
		_, _, err := Open(tc.msg, ring)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		var me *Error
		if !errors.As(err, &me) {
			t.Errorf("%s: error %v is not a *manifest.Error", tc.name, err)
			continue
		}
		if me.Signature != tc.signature {
			t.Errorf("%s: Signature = %v, want %v (%v)", tc.name, me.Signature, tc.signature, err)
		}
	}
}

func flipInSig(b []byte) []byte {
	out := bytes.Clone(b)
	i := bytes.LastIndexByte(out, ' ') + 10
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

func TestCheckpointRejects(t *testing.T) {
	s := testSigner(t)
	for _, tc := range []struct {
		name string
		mut  func(*Checkpoint)
	}{
		{"unsorted heads", func(c *Checkpoint) { c.Heads[0], c.Heads[1] = c.Heads[1], c.Heads[0] }},
		{"duplicate partition", func(c *Checkpoint) { c.Heads[1].Partition = 0 }},
		{"bad head hash", func(c *Checkpoint) { c.Heads[0].SHA256 = "x" }},
		{"seq 0 with prev", func(c *Checkpoint) { c.Seq = 0 }},
		{"v2 without a log", func(c *Checkpoint) { c.LogSize, c.LogRoot, c.LogFrontier = 0, "", nil }},
		{"frontier too short", func(c *Checkpoint) { c.LogFrontier = c.LogFrontier[1:] }},
		{"frontier not hex", func(c *Checkpoint) { c.LogFrontier[2] = "xyz" }},
		{"v1 with a log", func(c *Checkpoint) { c.Type = CheckpointTypeV1 }},
		{"v2 without log_signature", func(c *Checkpoint) { c.LogSignature = "" }},
		{"log_signature too short", func(c *Checkpoint) { c.LogSignature = "AAAA" }},
	} {
		c := sampleCheckpoint(s)
		tc.mut(c)
		if _, err := c.Sign(s); err == nil {
			t.Errorf("%s: signed", tc.name)
		}
	}
}

func FuzzOpenManifest(f *testing.F) {
	s := testSigner(f)
	ring := keys.NewRing(s.Public())
	good, _ := sampleManifest(s).Sign(s)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("{}\n\n— x AAAA\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, n, err := Open(msg, ring)
		if err != nil {
			return
		}
		// Whatever opens is canonical: signing it again gives the same text.
		text, err := canonical(m)
		if err != nil || string(text) != n.Text {
			t.Fatalf("opened a non-canonical manifest: %q", n.Text)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	s := testSigner(f)
	ring := keys.NewRing(s.Public())
	good, _ := sampleCheckpoint(s).Sign(s)
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, n, err := OpenCheckpoint(msg, ring)
		if err != nil {
			return
		}
		text, err := canonical(c)
		if err != nil || string(text) != n.Text {
			t.Fatalf("opened a non-canonical checkpoint: %q", n.Text)
		}
	})
}

func TestAppended(t *testing.T) {
	h := func(p int32, seq uint64, to int64) Head {
		return Head{Partition: p, Seq: seq, To: to, Manifest: fmt.Sprintf("m/%d/%d", p, seq), SHA256: strings.Repeat("0", 63) + fmt.Sprint(seq%10)}
	}
	got, err := Appended(nil, []Head{h(0, 2, 30), h(3, 0, 5)})
	if err != nil || len(got) != 2 || got[0].FromSeq != 0 || got[0].ToSeq != 2 || got[1].Partition != 3 {
		t.Fatalf("first = %+v, %v", got, err)
	}
	got, err = Appended([]Head{h(0, 2, 30), h(3, 0, 5)}, []Head{h(0, 2, 30), h(1, 0, 9), h(3, 4, 50)})
	if err != nil || len(got) != 2 || got[0].Partition != 1 || got[1].FromSeq != 1 || got[1].ToSeq != 4 {
		t.Fatalf("next = %+v, %v", got, err)
	}
	for name, next := range map[string][]Head{
		"backwards":      {h(0, 1, 20), h(3, 0, 5)},
		"partition gone": {h(0, 2, 30)},
		"head replaced":  {{Partition: 0, Seq: 2, To: 30, Manifest: "other", SHA256: strings.Repeat("0", 64)}, h(3, 0, 5)},
	} {
		if _, err := Appended([]Head{h(0, 2, 30), h(3, 0, 5)}, next); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
