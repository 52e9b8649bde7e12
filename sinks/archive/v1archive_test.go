package archive

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// The v1 fixture (testdata/v1archive) is an archive written by the archiver
// before leaves bound their position and checkpoints carried the global log:
// 2 partitions × 4 batches (auditline.leaf/v1), 4 v1 checkpoints with RFC 3161
// tokens, its key and its TSA root. It is kept byte for byte.
const (
	v1Dir    = "testdata/v1archive"
	v1Origin = "auditline/tafcddd56c0/auditline"
	v1Topics = "t24666deed4."
)

// loadV1 uploads the fixture into the test's bucket and returns its key
// (copied with mode 0600) and TSA roots.
func (e *env) loadV1(t *testing.T) (keyFile string, roots *x509.CertPool) {
	t.Helper()
	ctx := context.Background()
	root := filepath.Join(v1Dir, "bucket")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		a := &Archiver{cfg: e.cfg, now: time.Now}
		return e.b.Put(ctx, filepath.ToSlash(rel), data, "application/octet-stream", a.lock())
	})
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(v1Dir, "archive.key"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(t.TempDir(), "v1.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(v1Dir, "tsa-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	return keyFile, roots
}

// TestV1ArchiveStillVerifies: an archive sealed under the v1 rules verifies
// under them, its records are proven with v1 proofs; then today's archiver
// continues its chains (v2 leaves, v2 checkpoints whose global log starts
// with the v1 batches), and the mixed archive verifies — each batch under its
// own rule — with the log recomputed over both.
func TestV1ArchiveStillVerifies(t *testing.T) {
	e := newEnv(t, 2)
	keyFile, roots := e.loadV1(t)
	priv, err := keys.Load(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(priv.Public().(ed25519.PublicKey))
	o := e.verifyOpts(ring)
	o.TSARoots, o.RequireTimestamps = roots, true
	rep := e.verify(o)
	if !rep.OK() || rep.Records != 200 || rep.Checkpoints != 4 || rep.Timestamped != 4 || rep.LogSize != 0 {
		t.Fatalf("the v1 fixture:\n%s", reportString(rep))
	}
	ctx := context.Background()
	id := record.ID(archivetest.Decision(8).Request.RequestKey)
	p, err := verify.Prove(ctx, id, verify.ProveOptions{Bucket: e.b, Layout: e.layout(), Keys: ring})
	if err != nil || p.Format != verify.ProofFormatV1 {
		t.Fatalf("prove in the v1 archive: %+v, %v", p, err)
	}
	if _, err := verify.VerifyProof(p, ring, nil, nil); err != nil {
		t.Fatalf("a v1 proof: %v", err)
	}

	// Today's archiver continues the fixture's chains on its topic.
	e.topics = raw.Topics{Prefix: v1Topics}
	if err := topic.EnsureTopics(ctx, e.kafka, e.topics); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(t, e.kafka, e.topics.Decisions()) })
	cfg := e.cfg
	cfg.Origin, cfg.SigningKeyFile, cfg.Group = v1Origin, keyFile, e.name+"-continue"
	// Each partition needs offsets beyond the fixture's 100: the first 100
	// are skipped as already sealed, the rest archived under v2.
	var recs []*kgo.Record
	for i := 0; i < 600; i++ {
		recs = append(recs, &kgo.Record{Topic: e.topics.Decisions(), Partition: int32(i % 2), Value: archivetest.Value(1000 + i)})
	}
	w, err := topic.NewWriter(e.kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	want := 0
	for p, offs := range e.kafkaOffsets() {
		if p > 1 {
			t.Fatalf("partition %d", p)
		}
		want += max(0, len(offs)-100) // the fixture seals offsets [0, 100) of each
	}
	r := e.start(cfg)
	waitFor(t, "the new records sealed", 60*time.Second, func() bool { return r.sealed() == want })
	r.waitCheckpointed(t, 200+want) // the log holds the fixture's 200 v1 leaves too
	r.stop(t)
	o.RequireTimestamps = false // the continuing archiver has no TSA
	rep = e.verify(o)
	if !rep.OK() || rep.Records != int64(200+want) || rep.LogSize != uint64(200+want) || rep.LogVerified == 0 {
		t.Fatalf("the mixed archive:\n%s", reportString(rep))
	}
	// Both proof formats, from the one archive.
	p1, err := verify.Prove(ctx, id, verify.ProveOptions{Bucket: e.b, Layout: e.layout(), Keys: ring})
	if err != nil || p1.Format != verify.ProofFormatV1 {
		t.Fatalf("prove a v1 record in the mixed archive: %+v, %v", p1, err)
	}
	p2, err := verify.Prove(ctx, record.ID(archivetest.Decision(1598).Request.RequestKey), verify.ProveOptions{Bucket: e.b, Layout: e.layout(), Keys: ring})
	if err != nil || p2.Format != verify.ProofFormat || !strings.HasPrefix(p2.LeafRule, "auditline.leaf/v2") {
		t.Fatalf("prove a v2 record in the mixed archive: %+v, %v", p2, err)
	}
	for _, p := range []*verify.Proof{p1, p2} {
		if _, err := verify.VerifyProof(p, ring, nil, nil); err != nil {
			t.Fatalf("%s: %v", p.Format, err)
		}
	}
}

func deleteTopics(t *testing.T, kc topic.Config, topics ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
	if err != nil {
		t.Log(err)
		return
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).DeleteTopics(context.Background(), topics...); err != nil {
		t.Logf("delete topics %v: %v", topics, err)
	}
}
