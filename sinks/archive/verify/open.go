package verify

import (
	"crypto/ed25519"
	"fmt"

	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
)

// Archive is an archive as the auditor's tools open it: its bucket, its
// layout and the keys to trust.
type Archive struct {
	Bucket *bucket.Bucket
	Layout layout.Layout
	// Keys are the trusted public keys; nil when no key source was named —
	// then only TrustedKeys with trustBucket (--trust-bucket-keys) can give
	// any: the keys published in the bucket are never a silent fall-back.
	Keys *keys.Ring
	// KeySource says where Keys came from, for the report: "--key",
	// "archive.signing_key_file", or "".
	KeySource string
}

// OpenOptions say where an archive is and which keys to trust.
type OpenOptions struct {
	Bucket bucket.Config
	Prefix string
	// TrustedKeys are public key files or directories of *.pem (see
	// keys.LoadRing). When set, they are the keys trusted.
	TrustedKeys []string
	// SigningKeyFile is the archive's private key; without TrustedKeys its
	// public half is trusted. It must be readable when set.
	SigningKeyFile string
}

// Open prepares read access to an archive (it connects nothing yet). Keys are
// trusted in this order: TrustedKeys, else SigningKeyFile's public half, else
// none (Keys nil: Run, Prove and evidence.Export then refuse to start with
// ErrNoKeys). A key source that is named but cannot be read, or yields no
// key, is an error — never a fall-back to the keys in the bucket, which
// TrustedKeys adds only when the caller asks for it.
func Open(o OpenOptions) (*Archive, error) {
	b, err := bucket.New(o.Bucket)
	if err != nil {
		return nil, err
	}
	a := &Archive{Bucket: b, Layout: layout.New(o.Prefix)}
	switch {
	case len(o.TrustedKeys) > 0:
		ring, err := keys.LoadRing(o.TrustedKeys...)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		a.Keys, a.KeySource = ring, "--key"
	case o.SigningKeyFile != "":
		priv, err := keys.Load(o.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("archive.signing_key_file: %w (give the public key with --key FILE, or set archive.audit.keys)", err)
		}
		a.Keys, a.KeySource = keys.NewRing(priv.Public().(ed25519.PublicKey)), "archive.signing_key_file"
	}
	return a, nil
}
