package tamper

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/verify"
	"github.com/auditline/auditline/sinks/archive/witness"
)

// startWitness starts `auditline witness` as a process of the stack, with a
// fresh key and its own state directory, witnessing the stack's archive log.
func startWitness(t *testing.T, s *stacktest.Stack, name string) (*stacktest.Proc, witness.Witness) {
	t.Helper()
	ring := s.Ring()
	pub, _ := ring.Key(ring.IDs()[0])
	logKey, err := keys.VerifierKey(s.Config.Archive.Origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "witness.key")
	priv, _ := keys.Generate(nil)
	if err := keys.WriteNew(keyFile, priv); err != nil {
		t.Fatal(err)
	}
	_, vkey, err := witness.NewSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort())
	p := s.AuditlineProc("witness-"+strings.ReplaceAll(name, "/", "_"), "witness", "--name", name, "--key", keyFile,
		"--state", t.TempDir(), "--listen", addr, "--log", logKey)
	p.Start()
	w, err := witness.ParseWitness(vkey, "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	return p, w
}

// TestLiveArchive audits an archive while the real archiver (`auditline
// archive`) seals into it, cosigned by a real witness process (`auditline
// witness`):
//
//   - verify runs back to back on the live bucket, the log growing between
//     runs (and during them): every run passes with --require-anchor. (It
//     used to list the whole prefix in key order — batches/ before
//     manifests/ — and took a batch sealed during the listing, whose
//     manifest it then listed, for deleted; and a witness that had cosigned
//     a checkpoint written after the listing for evidence of a rollback.)
//   - the witness is killed: sealing and checkpointing go on; verify fails
//     under --require-anchor for the witness alone and names the leaves no
//     cosignature anchors;
//   - the witness is started again (same state): the archiver's cosigner
//     catches up checkpoint by checkpoint (within its retry interval, at
//     most a minute) while sealing goes on, and once the archiver stops, the
//     whole log verifies anchored, every record sealed.
func TestLiveArchive(t *testing.T) {
	srv := stacktest.Shared(t)
	b, bcfg := archivetest.Bucket(t) // before the stack: its processes stop before the bucket is emptied
	s := stacktest.New(t, srv, "")
	s.Config.Archive.S3.Bucket = bcfg.Bucket
	s.Config.Archive.Origin = "live.test/" + s.Name
	s.Config.Kafka.Partitions = 2
	s.Config.Archive.Batch.MaxRecords = 200
	s.Config.Archive.Batch.MaxAge = 500 * time.Millisecond
	s.Config.Archive.Checkpoint.Interval = time.Second
	s.Config.Archive.Witness.Timeout = 2 * time.Second
	ctx := context.Background()
	topics := raw.Topics{Prefix: s.Config.TopicPrefix}
	if err := topic.EnsureTopics(ctx, s.Config.Kafka, topics); err != nil {
		t.Fatal(err)
	}
	tw, err := topic.NewWriter(s.Config.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	lay := layout.New(s.Config.Archive.Prefix)
	w := &world{t: t, s: s, b: b, cur: b, lay: lay, topics: topics, w: tw}

	wp, wit := startWitness(t, s, "witness.example/live")
	s.Config.Archive.Witness.Witnesses = []archive.WitnessEntry{{Key: wit.VKey, URL: wit.URL}}
	s.Config.Archive.Witness.Quorum = 1
	arch := s.Start("archive")

	// A steady trickle of records, as in production.
	var produced atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += 20 {
			select {
			case <-stop:
				return
			default:
			}
			var recs []*kgo.Record
			for j := i; j < i+20; j++ {
				d := archivetest.Decision(j)
				recs = append(recs, &kgo.Record{Topic: topics.Decisions(), Key: []byte(d.Request.RequestKey), Value: archivetest.Value(j)})
			}
			if err := tw.Produce(ctx, recs...); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			produced.Store(int64(i + 20))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	stopProducing := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopProducing()

	vo := verify.Options{Bucket: b, Layout: lay, Keys: s.Ring(), RetentionMode: bucket.Governance,
		Witnesses: []witness.Witness{wit}, Quorum: 1, RequireAnchor: true}
	run := func() *verify.Report {
		t.Helper()
		rep, err := verify.Run(ctx, vo)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	text := func(rep *verify.Report) string {
		var buf bytes.Buffer
		rep.WriteText(&buf)
		return buf.String()
	}
	stacktest.WaitFor(t, "a first cosigned checkpoint", 3*time.Minute, func() error {
		if cosignedUpTo(w, lay) == 0 {
			return fmt.Errorf("no cosigned checkpoint yet")
		}
		return nil
	})

	// Audits of the live archive, back to back until the log has grown between
	// them at least three times (an audit can take far less than the checkpoint
	// interval, so the bound is time, not a count of audits).
	var sizes []uint64
	grew := 0
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < 8 || grew < 3; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the log grew between only %d of %d audits in 2 minutes: %v", grew, i, sizes)
		}
		rep := run()
		if !rep.OK() {
			t.Fatalf("audit %d of the live archive (log sizes so far %v):\n%s", i+1, sizes, text(rep))
		}
		if n := len(sizes); n > 0 && rep.LogSize > sizes[n-1] {
			grew++
		}
		sizes = append(sizes, rep.LogSize)
		for _, wr := range rep.Warnings {
			if strings.Contains(wr.Detail, "the archive grew during this audit") {
				t.Logf("audit %d: %s", i+1, wr.Error())
			}
		}
	}
	t.Logf("%d audits of the live archive passed; log sizes %v", len(sizes), sizes)

	// The witness goes down: sealing goes on.
	wp.Kill()
	before := w.checkpoints(lay)
	stacktest.WaitFor(t, "three checkpoints while the witness is down", 3*time.Minute, func() error {
		if n := len(w.checkpoints(lay)); n < len(before)+3 {
			return fmt.Errorf("%d checkpoints, %d when the witness went down", n, len(before))
		}
		return nil
	})
	rep := run()
	if rep.OK() || rep.AnchoredSize >= rep.LogSize {
		t.Fatalf("with the witness down, verify --require-anchor must fail and name the unanchored leaves:\n%s", text(rep))
	}
	for _, f := range rep.Failures {
		if f.Check != verify.CheckAnchor {
			t.Fatalf("with the witness down, a failure other than the anchor:\n%s", text(rep))
		}
	}
	if !hasDetail(rep.Failures, "could be asked") || !hasDetail(rep.Warnings, "not anchored yet") {
		t.Fatalf("with the witness down, verify must say so and name the unanchored leaves:\n%s", text(rep))
	}
	t.Logf("witness down:\n%s", text(rep))

	// Back up: the cosigner catches up, checkpoint by checkpoint, while
	// sealing goes on.
	down := len(w.checkpoints(lay))
	wp.Start()
	stacktest.WaitFor(t, "the cosigner caught up with the checkpoints written while the witness was down", 3*time.Minute, func() error {
		if n := cosignedUpTo(w, lay); n < down {
			return fmt.Errorf("checkpoints 0..%d cosigned, %d written by the time the witness came back", n-1, down)
		}
		return nil
	})
	stopProducing()
	n := int(produced.Load())
	w.n = n
	stacktest.WaitFor(t, "everything sealed", 5*time.Minute, w.sealedAll(lay.Prefix))
	if err := arch.Stop(); err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, "the final checkpoint cosigned", 3*time.Minute, w.allCosignedBy(lay, 1))
	rep = run()
	if !rep.OK() || rep.AnchoredSize != rep.LogSize || rep.Records != int64(n) || rep.LogSize != uint64(n) {
		t.Fatalf("after the catch-up, %d records produced:\n%s", n, text(rep))
	}
	if err := wp.Stop(); err != nil {
		t.Fatal(err)
	}
}

func hasDetail(fs []verify.Failure, substr string) bool {
	for _, f := range fs {
		if strings.Contains(f.Detail, substr) {
			return true
		}
	}
	return false
}

// allCosignedBy waits for every checkpoint under lay to carry n cosignatures.
func (w *world) allCosignedBy(lay layout.Layout, n int) func() error {
	return func() error {
		if !w.cosigned(lay, n) {
			return fmt.Errorf("some checkpoint lacks a cosignature")
		}
		return nil
	}
}

// cosignedUpTo returns how many checkpoints from seq 0 on carry a cosignature.
func cosignedUpTo(w *world, lay layout.Layout) int {
	have := map[uint64]bool{}
	for _, k := range w.objects(lay.CosignaturesPrefix()) {
		if seq, _, err := lay.ParseCosignature(k); err == nil {
			have[seq] = true
		}
	}
	n := 0
	for have[uint64(n)] {
		n++
	}
	return n
}
