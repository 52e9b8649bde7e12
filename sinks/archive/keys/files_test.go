package keys

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadRing: files and directories of *.pem are read; a directory
// without any, a missing file or a non-key is an error, never an empty
// ring in disguise.
func TestLoadRing(t *testing.T) {
	dir := t.TempDir()
	var ids []string
	for i, name := range []string{"a.pem", "b.pem"} {
		priv, err := Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		pub := priv.Public().(ed25519.PublicKey)
		b, err := MarshalPublic(pub)
		if err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(dir, "keys")
		if i == 0 {
			sub = dir
		}
		os.MkdirAll(sub, 0o755)
		if err := os.WriteFile(filepath.Join(sub, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ID(pub))
	}
	ring, err := LoadRing(filepath.Join(dir, "a.pem"), filepath.Join(dir, "keys"))
	if err != nil || ring.Len() != 2 {
		t.Fatalf("LoadRing = %v, %v", ring, err)
	}
	for _, id := range ids {
		if _, ok := ring.Key(id); !ok {
			t.Errorf("key %s not in the ring", id)
		}
	}
	if r, err := LoadRing(); err != nil || r.Len() != 0 {
		t.Errorf("no paths: %v %v", r, err)
	}
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a key"), 0o644)
	for path, want := range map[string]string{empty: "no *.pem", filepath.Join(dir, "missing.pem"): "no such file", filepath.Join(dir, "junk.pem"): "junk.pem"} {
		if _, err := LoadRing(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadRing(%s) = %v, want an error with %q", path, err, want)
		}
	}
}
