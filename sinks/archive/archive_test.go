package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// TestEndToEnd archives records from three partitions, verifies the archive,
// checks that every record is in exactly one batch, and proves a record.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t, 3)
	const n = 3000
	e.produce(0, n)
	r := e.start(e.cfg)
	waitFor(t, "all records sealed", 60*time.Second, func() bool { return r.sealed() == n })
	r.stop(t)

	rep := e.verify(e.verifyOpts())
	if !rep.OK() {
		t.Fatalf("verify failed:\n%s", reportString(rep))
	}
	if rep.Records != n || rep.Checkpoints == 0 {
		t.Fatalf("verified %d records and %d checkpoints, want %d and some:\n%s", rep.Records, rep.Checkpoints, n, reportString(rep))
	}
	if got := e.exactlyOnce(); got != n {
		t.Fatalf("exactly-once over %d records, want %d", got, n)
	}
	t.Logf("\n%s", reportString(rep))

	// Record 8 has two versions (archivetest: index 9 amends index 8).
	ctx := context.Background()
	id := record.ID(archivetest.Decision(8).Request.RequestKey)
	po := verify.ProveOptions{Bucket: e.b, Layout: e.layout(), Keys: e.verifyOpts().Keys}
	p, err := verify.Prove(ctx, id, po)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 2 || len(p.Versions) != 2 {
		t.Fatalf("prove chose version %d of %v, want the latest (2)", p.Version, p.Versions)
	}
	o := e.verifyOpts()
	if _, err := verify.VerifyProof(p, o.Keys, nil, nil); err != nil {
		t.Fatalf("VerifyProof: %v", err)
	}
	// Any RFC 6962 library: transparency-dev/merkle's verifier on the raw fields.
	leaf, _ := hex.DecodeString(p.LeafHash)
	root, _ := hex.DecodeString(p.Root)
	var path [][]byte
	for _, h := range p.Path {
		b, _ := hex.DecodeString(h)
		path = append(path, b)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.LeafIndex, p.TreeSize, leaf, path, root); err != nil {
		t.Fatalf("proof.VerifyInclusion: %v", err)
	}
	// The leaf binds the record to its position (auditline.leaf/v2), all of
	// it in the proof: any RFC 6962 library recomputes it.
	input := fmt.Sprintf("auditline.leaf/v2\n%s\n%d\n%d\n%d\n", p.Topic, p.Partition, p.Offset, p.Timestamp) + p.Record
	if got := rfc6962.DefaultHasher.HashLeaf([]byte(input)); hex.EncodeToString(got) != p.LeafHash || p.LeafRule != "auditline.leaf/v2" {
		t.Fatal("leaf is not HashLeaf(auditline.leaf/v2 input)")
	}
	p1, err := verify.Prove(ctx, id, verify.ProveOptions{Bucket: e.b, Layout: e.layout(), Keys: e.verifyOpts().Keys, Version: 1})
	if err != nil || p1.Version != 1 {
		t.Fatalf("prove --version 1 = %+v, %v", p1, err)
	}
	// A forged proof fails.
	bad := *p
	bad.Record = strings.Replace(bad.Record, `"version":2`, `"version":3`, 1)
	if _, err := verify.VerifyProof(&bad, o.Keys, nil, nil); err == nil {
		t.Fatal("a proof with altered record bytes verified")
	}
	bad = *p
	bad.Offset++ // the same record claimed at another position
	if _, err := verify.VerifyProof(&bad, o.Keys, nil, nil); err == nil {
		t.Fatal("a proof claiming another offset verified")
	}
	bad = *p
	bad.LeafIndex = (bad.LeafIndex + 1) % bad.TreeSize
	if _, err := verify.VerifyProof(&bad, o.Keys, nil, nil); err == nil {
		t.Fatal("a proof at another index verified")
	}
	if _, err := verify.Prove(ctx, record.ID("no such request"), po); !errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("prove of an unknown id = %v", err)
	}
}

// TestReplayIsSkipped re-reads the whole topic with a new consumer group, as
// after a crash between upload and offset commit: the manifests say what is
// sealed, and nothing is archived twice.
func TestReplayIsSkipped(t *testing.T) {
	e := newEnv(t, 2)
	e.produce(0, 1200)
	r := e.start(e.cfg)
	waitFor(t, "first run sealed", 60*time.Second, func() bool { return r.sealed() == 1200 })
	r.stop(t)

	e.produce(1200, 1500)
	cfg := e.cfg
	cfg.Group = e.name + "-replay" // no committed offsets: everything is read again
	r2 := e.start(cfg)
	waitFor(t, "replay sealed the new records", 60*time.Second, func() bool { return r2.sealed() == 300 })
	r2.stop(t)
	if skipped := int(testutilValue(r2.a.m.skipped)); skipped != 1200 {
		t.Fatalf("skipped %d already-sealed records, want 1200", skipped)
	}
	rep := e.verify(e.verifyOpts())
	if !rep.OK() {
		t.Fatalf("verify:\n%s", reportString(rep))
	}
	if got := e.exactlyOnce(); got != 1500 {
		t.Fatalf("exactly once over %d, want 1500", got)
	}
}

// TestLifecycle: a stage whose context is already over returns nil at once;
// a bucket without Object Lock is a permanent error, reported, not retried.
func TestLifecycle(t *testing.T) {
	e := newEnv(t, 1)
	a, err := New(e.cfg, e.shared(), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run on a cancelled context = %v", err)
	}
	// A bucket without Object Lock.
	cfg := e.cfg
	cfg.S3.Bucket = e.name + "-nolock"
	if err := e.b.Client().MakeBucket(context.Background(), cfg.S3.Bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.b.Client().RemoveBucket(context.Background(), cfg.S3.Bucket) })
	a2, err := New(cfg, e.shared(), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a2.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "object lock") {
			t.Fatalf("Run on a bucket without Object Lock = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run kept retrying a permanent error")
	}
	if a2.Ready(context.Background()) == nil {
		t.Fatal("Ready on a bucket without Object Lock")
	}
}
