package hold

import (
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/sinks/archive/bucket"
)

// TestHoldRefusesDelete on the real MinIO with Object Lock: an object under
// legal hold cannot be deleted — not past its retain-until, not with the
// GOVERNANCE bypass — until the hold is released; a period hold covers the
// objects uploaded in it and no other.
func TestHoldRefusesDelete(t *testing.T) {
	s3 := testenv.S3(t)
	b, err := bucket.New(bucket.Config{Endpoint: s3.Endpoint, Secure: s3.Secure, Region: "us-east-1", AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Bucket: s3.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prefix := "holdtest/" + testenv.Name(t) + "/"
	// Each object's retention starts at its own upload: on a loaded machine
	// the first upload and the second-granularity sleep can take longer
	// than a retention fixed once, and MinIO refuses a retain-until in the
	// past.
	var retainedUntil time.Time
	put := func(name string) bucket.Info {
		t.Helper()
		retainedUntil = time.Now().Add(2 * time.Second)
		lock := bucket.Lock{Mode: bucket.Governance, Until: retainedUntil}
		if err := b.Put(ctx, prefix+name, []byte(name), "text/plain", lock); err != nil {
			t.Fatal(err)
		}
		in, err := b.Stat(ctx, prefix+name)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a := put("batches/a")
	time.Sleep(1100 * time.Millisecond) // S3 keeps upload times to the second
	mid := time.Now()
	c := put("batches/c")
	del := func(in bucket.Info) error {
		return b.Client().RemoveObject(ctx, b.Name(), in.Key, minio.RemoveObjectOptions{VersionID: in.VersionID, GovernanceBypass: true})
	}
	t.Cleanup(func() {
		for _, in := range []bucket.Info{a, c} {
			_ = b.SetLegalHold(context.Background(), in.Key, in.VersionID, false)
			_ = del(in)
		}
	})

	if _, err := Set(ctx, b, prefix, Scope{}, true); err == nil {
		t.Fatal("a hold on nothing named was accepted")
	}
	if _, err := Set(ctx, b, prefix, Scope{Key: "elsewhere/x"}, true); err == nil {
		t.Fatal("a key outside the prefix was accepted")
	}
	changed, err := Set(ctx, b, prefix, Scope{Key: a.Key}, true)
	if err != nil || len(changed) != 1 || changed[0].VersionID != a.VersionID {
		t.Fatalf("hold set --key: %v %+v", err, changed)
	}
	if again, err := Set(ctx, b, prefix, Scope{Key: a.Key}, true); err != nil || len(again) != 0 {
		t.Fatalf("second hold set: %v %+v (want nothing changed)", err, again)
	}
	changed, err = Set(ctx, b, prefix, Scope{From: mid}, true)
	if err != nil || len(changed) != 1 || changed[0].Key != c.Key {
		t.Fatalf("hold set --from: %v %+v (want the later object only)", err, changed)
	}
	held, err := Holds(ctx, b, prefix, Scope{})
	if err != nil || len(held) != 2 || !held[0].Held || !held[1].Held {
		t.Fatalf("hold list: %v %+v", err, held)
	}

	time.Sleep(time.Until(retainedUntil) + time.Second) // retention over: only the holds keep them
	for _, in := range []bucket.Info{a, c} {
		if err := del(in); err == nil {
			t.Fatalf("%s under legal hold was deleted", in.Key)
		}
	}
	if _, err := Set(ctx, b, prefix, Scope{Key: a.Key}, false); err != nil {
		t.Fatal(err)
	}
	if err := del(a); err != nil {
		t.Fatalf("released %s cannot be deleted: %v", a.Key, err)
	}
	if err := del(c); err == nil {
		t.Fatalf("%s, still held, was deleted", c.Key)
	}
	if changed, err := Set(ctx, b, prefix, Scope{From: mid.Add(-time.Hour), To: mid.Add(time.Hour)}, false); err != nil || len(changed) != 1 {
		t.Fatalf("hold release --from --to: %v %+v", err, changed)
	}
	if err := del(c); err != nil {
		t.Fatalf("released %s cannot be deleted: %v", c.Key, err)
	}
}
