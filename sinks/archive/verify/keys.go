package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
)

// TrustedKeys returns the keys an auditor's command may open statements
// with: given (their own copies), plus the keys published in the bucket only
// when trustBucket is set. It fails when the result is empty. source says
// where the keys came from, for the report.
func TrustedKeys(ctx context.Context, b *bucket.Bucket, lay layout.Layout, given *keys.Ring, trustBucket bool) (ring *keys.Ring, source string, err error) {
	ring, source = keys.NewRing(), "given"
	if given != nil {
		for _, id := range given.IDs() {
			k, _ := given.Key(id)
			ring.Add(k)
		}
	}
	if trustBucket {
		published, err := LoadBucketKeys(ctx, b, lay)
		if err != nil {
			return nil, "", err
		}
		for _, id := range published.IDs() {
			k, _ := published.Key(id)
			ring.Add(k)
		}
		source = "the bucket (--trust-bucket-keys: anyone who can write to the bucket can publish a key; confirm these ids out of band)"
		if given != nil && given.Len() > 0 {
			source = "given, and the bucket (--trust-bucket-keys)"
		}
	}
	if ring.Len() == 0 {
		return nil, "", ErrNoKeys
	}
	return ring, source, nil
}

// LoadBucketKeys returns a ring of every public key published in the bucket
// (keys/<id>.pem). A published key that does not parse, or whose file name is
// not its id, is an error: what is published under keys/ is evidence too.
func LoadBucketKeys(ctx context.Context, b *bucket.Bucket, lay layout.Layout) (*keys.Ring, error) {
	ring := keys.NewRing()
	err := b.List(ctx, lay.KeysPrefix(), "", func(in bucket.Info) error {
		if !strings.HasSuffix(in.Key, ".pem") {
			return nil
		}
		data, _, err := b.Get(ctx, in.Key)
		if err != nil {
			return err
		}
		pub, err := keys.ParsePublic(data)
		if err != nil {
			return fmt.Errorf("published key %s: %w", in.Key, err)
		}
		if want := lay.PublicKey(keys.ID(pub)); want != in.Key {
			return fmt.Errorf("published key %s holds key id %s", in.Key, keys.ID(pub))
		}
		ring.Add(pub)
		return nil
	})
	return ring, err
}
