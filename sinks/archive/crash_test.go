package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// TestCrashRecovery kills `auditline archive` with SIGKILL at random points
// while 100,000 records flow in, restarts it each time, and then checks with
// verify that the archive is intact and that every record is in exactly one
// batch. A crash between a batch upload and its manifest, or between the
// manifest and the offset commit, must neither duplicate nor skip a record.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const total = 100_000
	srv := stacktest.Servers{Kafka: testenv.Kafka(t), S3: testenv.S3(t)}
	b, bcfg := archivetest.Bucket(t) // a bucket of its own, removed afterwards
	st := stacktest.New(t, srv, "")
	c := &st.Config
	c.Log.Level = "warn"
	c.Kafka.Partitions = 4
	c.Kafka.CommitInterval = 200 * time.Millisecond
	c.Kafka.InstanceID = st.Name + "-0" // static membership: a restart takes its partitions back at once
	c.Archive.S3 = archive.S3Config{Endpoint: bcfg.Endpoint, Secure: bcfg.Secure, Region: bcfg.Region, AccessKey: bcfg.AccessKey, SecretKey: bcfg.SecretKey, Bucket: bcfg.Bucket}
	c.Archive.Retention = archive.RetentionConfig{Mode: string(bucket.Governance), Period: retention.Exactly(10 * time.Minute)}
	c.Archive.Batch.MaxRecords = 2500
	c.Archive.Batch.MaxAge = 400 * time.Millisecond
	c.Archive.Checkpoint.Interval = 300 * time.Millisecond
	ctx := context.Background()
	topics := c.Topics()
	if err := topic.EnsureTopics(ctx, c.Kafka, topics); err != nil {
		t.Fatal(err)
	}
	w, err := topic.NewWriter(c.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d", seed)

	// Produce in the background, in chunks, while the archiver is killed.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for from := 0; from < total; from += 5000 {
			recs := make([]*kgo.Record, 0, 5000)
			for i := from; i < from+5000; i++ {
				d := archivetest.Decision(i)
				recs = append(recs, &kgo.Record{Topic: topics.Decisions(), Key: []byte(d.Request.RequestKey), Value: archivetest.Value(i)})
			}
			if err := w.Produce(ctx, recs...); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	kills := 0
	proc := st.Start("archive")
	deadline := time.Now().Add(90 * time.Second)
	for kills < 8 && time.Now().Before(deadline) {
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		if !proc.Running() {
			_, exit := proc.Exited()
			t.Fatalf("archiver exited on its own: %v\n%s", exit(), stacktest.Tail(proc.Log(), 4000))
		}
		proc.Kill()
		kills++
		proc.Start()
	}
	<-produced
	// Let the last process catch up, then stop it gracefully.
	lay := layout.New(c.Archive.Prefix)
	want, err := stacktest.Offsets(ctx, c.Kafka, topics.Decisions())
	if err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, "the archive to reach the end of every partition", 120*time.Second, func() error {
		for p, offs := range want {
			if got := headTo(ctx, b, lay, p); got < offs[len(offs)-1]+1 {
				return fmt.Errorf("partition %d sealed up to %d of %d", p, got, offs[len(offs)-1]+1)
			}
		}
		return nil
	})
	if err := proc.Stop(); err != nil {
		t.Fatalf("archiver exit after SIGTERM: %v", err)
	}

	rep, err := verify.Run(ctx, verify.Options{Bucket: b, Layout: lay, RetentionMode: bucket.Governance, Keys: st.Ring()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		var text bytes.Buffer
		rep.WriteText(&text)
		t.Fatalf("verify after %d SIGKILLs:\n%s", kills, text.String())
	}
	arch := stacktest.NewArchive(b, c.Archive.Prefix, st.Ring())
	if err := arch.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := arch.ExactlyOnce(want); err != nil || got != total {
		t.Fatalf("exactly once over %d records, want %d: %v", got, total, err)
	}
	orphans := 0
	for _, w := range rep.Warnings {
		if w.Check == verify.CheckOrphan {
			orphans++
		}
	}
	t.Logf("%d SIGKILLs; %d records in %d batches, each exactly once; %d checkpoints; %d orphaned uploads (crash before the manifest); verify %.0f leaves/s",
		kills, rep.Records, rep.Batches, rep.Checkpoints, orphans, rep.LeavesPerSecond())
}

// headTo returns the end offset of partition p's chain (-1: none yet).
func headTo(ctx context.Context, b *bucket.Bucket, lay layout.Layout, p int32) int64 {
	key, err := b.Last(ctx, lay.ManifestPrefix(p), 20)
	if err != nil || key == "" {
		return -1
	}
	data, _, err := b.Get(ctx, key)
	if err != nil {
		return -1
	}
	ring, _ := verify.LoadBucketKeys(ctx, b, lay)
	m, _, err := manifest.Open(data, ring)
	if err != nil {
		return -1
	}
	return m.To
}
