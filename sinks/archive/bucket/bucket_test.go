package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/bucket"
)

func TestPutOnceAndRead(t *testing.T) {
	b, _ := archivetest.Bucket(t)
	ctx := context.Background()
	if err := b.CheckObjectLock(ctx); err != nil {
		t.Fatal(err)
	}
	lock := bucket.Lock{Mode: bucket.Governance, Until: time.Now().Add(time.Minute)}
	if err := b.Put(ctx, "a/1", []byte("one"), "text/plain", lock); err != nil {
		t.Fatal(err)
	}
	err := b.Put(ctx, "a/1", []byte("two"), "text/plain", lock)
	if !errors.Is(err, bucket.ErrExists) {
		t.Fatalf("second put = %v, want ErrExists", err)
	}
	data, info, err := b.Get(ctx, "a/1")
	if err != nil || string(data) != "one" {
		t.Fatalf("Get = %q, %v", data, err)
	}
	if info.LockMode != bucket.Governance || info.RetainUntil.Before(time.Now()) {
		t.Fatalf("lock = %s until %s", info.LockMode, info.RetainUntil)
	}
	if _, _, err := b.Get(ctx, "a/missing"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("Get missing = %v, want ErrNotFound", err)
	}
}

func TestLast(t *testing.T) {
	b, _ := archivetest.Bucket(t)
	ctx := context.Background()
	if k, err := b.Last(ctx, "m/", 20); err != nil || k != "" {
		t.Fatalf("Last of empty = %q, %v", k, err)
	}
	var want string
	for _, n := range []int64{0, 7, 1000, 123456789, 123456790} {
		want = fmt.Sprintf("m/%020d.manifest", n)
		// A lock from now on each put (the server refuses a retain-until in
		// the past: a fixed one a few seconds ahead expired between puts on
		// a loaded box); GOVERNANCE, so the cleanup removes it at once.
		lock := bucket.Lock{Mode: bucket.Governance, Until: time.Now().Add(time.Minute)}
		if err := b.Put(ctx, want, []byte("x"), "", lock); err != nil {
			t.Fatal(err)
		}
		got, err := b.Last(ctx, "m/", 20)
		if err != nil || got != want {
			t.Fatalf("Last = %q, %v; want %q", got, err, want)
		}
	}
	folders, err := b.Folders(ctx, "")
	if err != nil || len(folders) != 1 || folders[0] != "m/" {
		t.Fatalf("Folders = %v, %v", folders, err)
	}
}

// TestComplianceRefusals checks the server, not our code: under COMPLIANCE a
// locked version can be neither deleted nor overwritten in place, nor its
// retention shortened — even with governance bypass. The lock is 30 s: every
// refusal must come before it ends (3 s could pass on a loaded box before the
// last one, and a delete or a "shorter" retention after expiry rightly
// succeeds); the bucket's cleanup waits for the rest.
func TestComplianceRefusals(t *testing.T) {
	b, _ := archivetest.Bucket(t)
	ctx := context.Background()
	cl := b.Client()
	until := time.Now().Add(30 * time.Second)
	locked := func(what string) {
		t.Helper()
		if !time.Now().Before(until) {
			t.Fatalf("%s: the COMPLIANCE lock must still hold for this check (retain-until %s): the box was too slow", what, until.Format(time.RFC3339))
		}
	}
	if err := b.Put(ctx, "c/obj", []byte("evidence"), "", bucket.Lock{Mode: bucket.Compliance, Until: until}); err != nil {
		t.Fatal(err)
	}
	st, err := cl.StatObject(ctx, b.Name(), "c/obj", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Delete of the version: refused, with or without bypass.
	for _, bypass := range []bool{false, true} {
		err := cl.RemoveObject(ctx, b.Name(), "c/obj", minio.RemoveObjectOptions{VersionID: st.VersionID, GovernanceBypass: bypass})
		if err == nil {
			locked("delete")
			t.Fatalf("delete of a COMPLIANCE version (bypass=%v) was not refused", bypass)
		}
		t.Logf("delete (bypass=%v) refused: %v", bypass, err)
	}
	// Overwrite with If-None-Match: refused.
	if err := b.Put(ctx, "c/obj", []byte("forged"), "", bucket.Lock{Mode: bucket.Compliance, Until: until}); !errors.Is(err, bucket.ErrExists) {
		t.Fatalf("overwrite = %v, want refused as ErrExists", err)
	}
	// Shortening the retention: refused.
	short := time.Now().Add(time.Second)
	mode := minio.Compliance
	err = cl.PutObjectRetention(ctx, b.Name(), "c/obj", minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &short, VersionID: st.VersionID, GovernanceBypass: true})
	if err == nil {
		locked("shortening")
		t.Fatal("shortening COMPLIANCE retention was not refused")
	}
	// A plain PUT without If-None-Match creates a new version on a versioned
	// bucket; the locked version stays intact and readable by its id.
	if _, err := cl.PutObject(ctx, b.Name(), "c/obj", bytes.NewReader([]byte("forged")), 6, minio.PutObjectOptions{}); err == nil {
		obj, err := cl.GetObject(ctx, b.Name(), "c/obj", minio.GetObjectOptions{VersionID: st.VersionID})
		if err != nil {
			t.Fatal(err)
		}
		buf := new(bytes.Buffer)
		buf.ReadFrom(obj)
		if buf.String() != "evidence" {
			t.Fatalf("locked version now reads %q", buf)
		}
	}
}
