// Package hold places and lifts legal holds on archived objects: S3 Object
// Lock legal holds, which forbid deleting an object version for as long as
// they are on, independently of (and beyond) its retention. A litigation,
// an investigation or an authority's request can need records kept past
// their retention; a hold does that without touching the retention, and
// `auditline hold release` ends it.
//
// A hold names one object (its key) or a period: every object version under
// the archive prefix uploaded in [from, to), i.e. the batches, manifests and
// checkpoints sealed then. Every version of a matched key is held, so no
// older version can be removed either. Holding is idempotent.
package hold

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditline/auditline/sinks/archive/bucket"
)

// Scope selects objects: one key, or a period of upload times.
type Scope struct {
	Key      string    // a full object key; or
	From, To time.Time // uploads in [From, To); a zero bound is open
}

// Validate reports a scope that names neither or both.
func (s Scope) Validate() error {
	period := !s.From.IsZero() || !s.To.IsZero()
	switch {
	case s.Key == "" && !period:
		return errors.New("name an object (--key) or a period (--from/--to)")
	case s.Key != "" && period:
		return errors.New("name an object (--key) or a period (--from/--to), not both")
	case !s.From.IsZero() && !s.To.IsZero() && !s.From.Before(s.To):
		return fmt.Errorf("--from %s is not before --to %s", s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
	}
	return nil
}

func (s Scope) has(in bucket.Info) bool {
	if s.Key != "" {
		return in.Key == s.Key
	}
	return (s.From.IsZero() || !in.LastModified.Before(s.From)) && (s.To.IsZero() || in.LastModified.Before(s.To))
}

// Item is one object version and its hold.
type Item struct {
	Key       string
	VersionID string
	Uploaded  time.Time
	Held      bool
}

// Holds lists the object versions under prefix in scope (every one when
// scope is zero) with their legal hold, in key order.
func Holds(ctx context.Context, b *bucket.Bucket, prefix string, s Scope) ([]Item, error) {
	var out []Item
	listPrefix := prefix
	if s.Key != "" {
		if !strings.HasPrefix(s.Key, prefix) {
			return nil, fmt.Errorf("%s is not under the archive prefix %s", s.Key, prefix)
		}
		listPrefix = s.Key
	}
	err := b.ListVersions(ctx, listPrefix, func(in bucket.Info) error {
		if in.DeleteMarker || (s != Scope{} && !s.has(in)) {
			return nil
		}
		held, err := b.LegalHold(ctx, in.Key, in.VersionID)
		if err != nil {
			return err
		}
		out = append(out, Item{Key: in.Key, VersionID: in.VersionID, Uploaded: in.LastModified, Held: held})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Key != "" && len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", s.Key, bucket.ErrNotFound)
	}
	return out, nil
}

// Set turns the legal hold of every object version in scope on (or off)
// and returns the versions it changed; those already in that state are
// left alone.
func Set(ctx context.Context, b *bucket.Bucket, prefix string, s Scope, on bool) ([]Item, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	items, err := Holds(ctx, b, prefix, s)
	if err != nil {
		return nil, err
	}
	var changed []Item
	for _, it := range items {
		if it.Held == on {
			continue
		}
		if err := b.SetLegalHold(ctx, it.Key, it.VersionID, on); err != nil {
			return changed, err
		}
		it.Held = on
		changed = append(changed, it)
	}
	return changed, nil
}
