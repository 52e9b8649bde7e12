package archivetest

import (
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/sinks/archive/bucket"
)

// Bucket creates a bucket of its own on the real S3 server (named after
// testenv.Name), with Object Lock, and removes it when the test ends: every
// version is deleted with governance bypass, after waiting (up to a minute)
// for COMPLIANCE retention to expire. Tests write with GOVERNANCE and a
// retention of seconds, except those that check COMPLIANCE refusals.
func Bucket(t testing.TB) (*bucket.Bucket, bucket.Config) {
	t.Helper()
	s3 := testenv.S3(t)
	cfg := bucket.Config{Endpoint: s3.Endpoint, Secure: s3.Secure, Region: "us-east-1",
		AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Bucket: testenv.Name(t)}
	b, err := bucket.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Client().MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region, ObjectLocking: true}); err != nil {
		t.Fatalf("make bucket %s: %v", cfg.Bucket, err)
	}
	t.Cleanup(func() { removeBucket(t, b) })
	return b, cfg
}

func removeBucket(t testing.TB, b *bucket.Bucket) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := b.Client()
	for attempt := 0; ; attempt++ {
		left := 0
		for oi := range cl.ListObjects(ctx, b.Name(), minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
			if oi.Err != nil {
				t.Logf("cleanup list %s: %v", b.Name(), oi.Err)
				return
			}
			if err := cl.RemoveObject(ctx, b.Name(), oi.Key, minio.RemoveObjectOptions{VersionID: oi.VersionID, GovernanceBypass: true}); err != nil {
				left++
			}
		}
		if left == 0 {
			break
		}
		if attempt > 60 {
			t.Logf("cleanup: %d versions of %s still locked; leaving the bucket", left, b.Name())
			return
		}
		time.Sleep(time.Second) // COMPLIANCE retention of a test object: wait it out
	}
	if err := cl.RemoveBucket(ctx, b.Name()); err != nil {
		t.Logf("cleanup remove bucket %s: %v", b.Name(), err)
	}
}
