package bucket

import (
	"context"
	"errors"
	"fmt"

	"github.com/minio/minio-go/v7"
)

// SetLegalHold turns the S3 Object Lock legal hold of one object version on
// or off (versionID "" is the latest). While it is on, nobody can delete
// that version, whatever its retention says, not even past its
// retain-until or with s3:BypassGovernanceRetention.
func (b *Bucket) SetLegalHold(ctx context.Context, key, versionID string, on bool) error {
	st := minio.LegalHoldDisabled
	if on {
		st = minio.LegalHoldEnabled
	}
	if err := b.cl.PutObjectLegalHold(ctx, b.name, key, minio.PutObjectLegalHoldOptions{VersionID: versionID, Status: &st}); err != nil {
		return fmt.Errorf("legal hold %s (version %s) %s: %w", key, versionID, st, err)
	}
	return nil
}

// LegalHold reports whether one object version is under legal hold.
func (b *Bucket) LegalHold(ctx context.Context, key, versionID string) (bool, error) {
	st, err := b.cl.GetObjectLegalHold(ctx, b.name, key, minio.GetObjectLegalHoldOptions{VersionID: versionID})
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "NoSuchObjectLockConfiguration" {
			return false, nil // never held
		}
		return false, fmt.Errorf("legal hold of %s (version %s): %w", key, versionID, err)
	}
	return st != nil && *st == minio.LegalHoldEnabled, nil
}
