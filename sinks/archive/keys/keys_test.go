package keys

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// seed is a fixed key so that the vectors below are stable.
var seed = bytes.Repeat([]byte{7}, ed25519.SeedSize)

func TestKeyIDVector(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	// openssl pkey -pubin -in pub.pem -outform DER | sha256sum | cut -c1-16
	// (checked by TestOpenSSLAgrees below when openssl is installed)
	id := ID(pub)
	if len(id) != 16 {
		t.Fatalf("ID = %q", id)
	}
	pem, err := MarshalPublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePublic(pem)
	if err != nil || !back.Equal(pub) {
		t.Fatalf("ParsePublic = %v, %v", back, err)
	}
}

func TestFilesAndOpenSSL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "archive.key")
	priv := ed25519.NewKeyFromSeed(seed)
	if err := WriteNew(path, priv); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(path, priv); err == nil {
		t.Fatal("WriteNew replaced an existing key file")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("Load = %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil {
		t.Fatal("Load accepted a world-readable key")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	pub := priv.Public().(ed25519.PublicKey)
	pubPEM, _ := MarshalPublic(pub)
	pubPath := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pubPath, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	// The id recomputed by standard tools.
	out, err := exec.Command("sh", "-c", "openssl pkey -pubin -in "+pubPath+" -outform DER | sha256sum | cut -c1-16").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(out)) != ID(pub) {
		t.Fatalf("openssl key id %q, ours %q", out, ID(pub))
	}
	// openssl reads our private key and derives the same public key.
	os.Chmod(path, 0o600)
	out, err = exec.Command("openssl", "pkey", "-in", path, "-pubout").Output()
	if err != nil || !bytes.Equal(out, pubPEM) {
		t.Fatalf("openssl pkey -pubout = %s, %v; want %s", out, err, pubPEM)
	}
	// A raw Ed25519 signature verifies with openssl pkeyutl -rawin.
	msg := []byte("hello auditor\n")
	msgPath, sigPath := filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
	os.WriteFile(msgPath, msg, 0o644)
	os.WriteFile(sigPath, ed25519.Sign(priv, msg), 0o644)
	if out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin", "-in", msgPath, "-sigfile", sigPath).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
}

func TestNoteSignerAndRing(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(seed)
	s, err := NewSigner("auditline.example/archive", priv)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	// The library's own verifier, built from the published verifier key, accepts it.
	vkey, _ := VerifierKey(s.Name(), s.Public())
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("note.Open with the library verifier: %v", err)
	}
	// And so does a Ring holding the public key.
	ring := NewRing(s.Public())
	n, err := note.Open(msg, ring)
	if err != nil {
		t.Fatalf("note.Open with a ring: %v", err)
	}
	if id := ring.SignerKeyID(n.Sigs[0].Name, n.Sigs[0].Hash); id != s.KeyID() {
		t.Fatalf("SignerKeyID = %q, want %q", id, s.KeyID())
	}
	// Another key is not trusted.
	other := NewRing(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey))
	if _, err := note.Open(msg, other); err == nil {
		t.Fatal("a ring without the key opened the note")
	}
	if _, err := NewSigner("bad name", priv); err == nil {
		t.Fatal("NewSigner accepted a name with a space")
	}
}
