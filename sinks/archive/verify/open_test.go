package verify

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
)

// TestOpen: keys are trusted from --key, else the signing key, else none (the
// keys published in the bucket only when TrustedKeys is told to add them); a
// named source that cannot be read or holds no key is an error, never a
// silent fall-back to the keys published in the bucket.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	priv, err := keys.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "archive.key")
	if err := keys.WriteNew(keyFile, priv); err != nil {
		t.Fatal(err)
	}
	pub, _ := keys.MarshalPublic(priv.Public().(ed25519.PublicKey))
	pubFile := filepath.Join(dir, "archive.pub")
	os.WriteFile(pubFile, pub, 0o644)
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	bc := bucket.Config{Endpoint: "127.0.0.1:1", Bucket: "b", AccessKey: "a", SecretKey: "s"}
	id := keys.ID(priv.Public().(ed25519.PublicKey))
	for _, c := range []struct {
		name   string
		o      OpenOptions
		source string // "" with keys nil: the bucket's
		err    string
	}{
		{"bucket keys", OpenOptions{}, "", ""},
		{"--key", OpenOptions{TrustedKeys: []string{pubFile}, SigningKeyFile: filepath.Join(dir, "missing")}, "--key", ""},
		{"signing key", OpenOptions{SigningKeyFile: keyFile}, "archive.signing_key_file", ""},
		{"unreadable signing key", OpenOptions{SigningKeyFile: filepath.Join(dir, "missing")}, "", "archive.signing_key_file:"},
		{"--key dir without keys", OpenOptions{TrustedKeys: []string{empty}, SigningKeyFile: keyFile}, "", "no *.pem"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			o.Bucket, o.Prefix = bc, "p/"
			a, err := Open(o)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Open = %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.KeySource != c.source || (c.source == "") != (a.Keys == nil) {
				t.Fatalf("source %q keys %v, want %q", a.KeySource, a.Keys, c.source)
			}
			if a.Keys != nil {
				if _, ok := a.Keys.Key(id); !ok {
					t.Errorf("the archive key is not trusted")
				}
			}
			if a.Layout.Prefix != "p/" {
				t.Errorf("layout %+v", a.Layout)
			}
		})
	}
}

// TestNoKeysNoBucketFallback: with no key given and the bucket's not asked
// for, the auditor's operations refuse to start.
func TestNoKeysNoBucketFallback(t *testing.T) {
	b, _ := bucket.New(bucket.Config{Endpoint: "127.0.0.1:1", Bucket: "b", AccessKey: "a", SecretKey: "s"})
	if _, _, err := TrustedKeys(t.Context(), b, layout.New("p/"), nil, false); err != ErrNoKeys {
		t.Fatalf("TrustedKeys without keys = %v, want ErrNoKeys", err)
	}
	if _, err := Run(t.Context(), Options{Bucket: b, Layout: layout.New("p/")}); err != ErrNoKeys {
		t.Fatalf("Run without keys = %v, want ErrNoKeys", err)
	}
	if _, err := Prove(t.Context(), "x", ProveOptions{Bucket: b, Layout: layout.New("p/")}); err != ErrNoKeys {
		t.Fatalf("Prove without keys = %v, want ErrNoKeys", err)
	}
}
