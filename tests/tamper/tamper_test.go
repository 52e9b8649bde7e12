package tamper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
	"github.com/auditline/auditline/sinks/archive/witness"
	"github.com/auditline/auditline/sinks/archive/witness/witnesstest"
)

// world is the archive under attack and what an auditor has.
type world struct {
	t      *testing.T
	s      *stacktest.Stack
	b      *bucket.Bucket // the pristine archive's bucket
	cur    *bucket.Bucket // the bucket the helpers act on: b, or a copy's
	lay    layout.Layout  // the archive's layout (the same in every copy)
	kept   string         // the auditor's kept checkpoint (verify --save-checkpoint)
	topics raw.Topics
	w      *topic.Writer
	n      int // records produced
}

func (w *world) produce(n int) {
	w.t.Helper()
	var recs []*kgo.Record
	for i := w.n; i < w.n+n; i++ {
		d := archivetest.Decision(i)
		recs = append(recs, &kgo.Record{Topic: w.topics.Decisions(), Key: []byte(d.Request.RequestKey), Value: archivetest.Value(i)})
	}
	if err := w.w.Produce(context.Background(), recs...); err != nil {
		w.t.Fatal(err)
	}
	w.n += n
}

// sealed counts the records referenced by the manifests under prefix.
func (w *world) sealed(prefix string) int {
	a := stacktest.NewArchive(w.cur, prefix, w.s.Ring())
	if err := a.Update(context.Background()); err != nil {
		return -1
	}
	n := 0
	for _, k := range a.Leaves {
		n += k
	}
	return n
}

func (w *world) sealedAll(prefix string) func() error {
	return func() error {
		if n := w.sealed(prefix); n != w.n {
			return fmt.Errorf("%d of %d records sealed", n, w.n)
		}
		return nil
	}
}

func (w *world) allCosigned(lay layout.Layout) func() error {
	return func() error {
		if !w.cosigned(lay, 2) {
			return fmt.Errorf("some checkpoint lacks a cosignature")
		}
		return nil
	}
}

// objects lists the keys under prefix.
func (w *world) objects(prefix string) []string {
	var out []string
	if err := w.cur.List(context.Background(), prefix, "", func(in bucket.Info) error { out = append(out, in.Key); return nil }); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// cosigned reports whether every checkpoint under lay has a cosignature of
// each of n witnesses.
func (w *world) cosigned(lay layout.Layout, n int) bool {
	cps, cos := 0, 0
	for _, k := range w.objects(lay.Prefix) {
		switch {
		case strings.HasPrefix(k, lay.CheckpointsPrefix()) && strings.HasSuffix(k, ".checkpoint"):
			cps++
		case strings.HasPrefix(k, lay.CosignaturesPrefix()):
			cos++
		}
	}
	return cps > 0 && cos == n*cps
}

// clone copies the pristine archive into a bucket of its own (same keys:
// manifests and checkpoints name their objects by key), makes it the bucket
// the helpers act on, and returns a configuration naming it.
func (w *world) clone(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	cb, bcfg := archivetest.Bucket(t)
	lock := bucket.Lock{Mode: bucket.Governance, Until: time.Now().Add(30 * time.Minute)}
	w.cur = w.b
	for _, k := range w.objects(w.lay.Prefix) {
		data, _, err := w.b.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := cb.Put(ctx, k, data, "application/octet-stream", lock); err != nil {
			t.Fatal(err)
		}
	}
	w.cur = cb
	c := w.s.Config
	c.Archive.S3.Bucket = bcfg.Bucket
	return w.s.WriteConfig("auditline-"+bcfg.Bucket+".yaml", c)
}

// remove deletes an object for good, as a privileged insider can under
// GOVERNANCE retention.
func (w *world) remove(key string) {
	w.t.Helper()
	ctx := context.Background()
	st, err := w.cur.Client().StatObject(ctx, w.cur.Name(), key, minio.StatObjectOptions{})
	if err != nil {
		w.t.Fatalf("stat %s: %v", key, err)
	}
	if err := w.cur.Client().RemoveObject(ctx, w.cur.Name(), key, minio.RemoveObjectOptions{VersionID: st.VersionID, GovernanceBypass: true}); err != nil {
		w.t.Fatalf("remove %s: %v", key, err)
	}
}

func (w *world) put(key string, data []byte) {
	w.t.Helper()
	if err := w.cur.Put(context.Background(), key, data, "application/octet-stream", bucket.Lock{Mode: bucket.Governance, Until: time.Now().Add(30 * time.Minute)}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) get(key string) []byte {
	w.t.Helper()
	data, _, err := w.cur.Get(context.Background(), key)
	if err != nil {
		w.t.Fatal(err)
	}
	return data
}

// manifests returns partition p's manifests under lay, in chain order, opened.
func (w *world) manifests(lay layout.Layout, p int32) ([]string, []*manifest.Manifest) {
	var keys []string
	var ms []*manifest.Manifest
	for _, k := range w.objects(lay.ManifestPrefix(p)) {
		m, _, err := manifest.Open(w.get(k), w.s.Ring())
		if err != nil {
			w.t.Fatal(err)
		}
		keys, ms = append(keys, k), append(ms, m)
	}
	return keys, ms
}

// checkpoints returns the checkpoints under lay, by seq, opened.
func (w *world) checkpoints(lay layout.Layout) []*manifest.Checkpoint {
	var out []*manifest.Checkpoint
	for _, k := range w.objects(lay.CheckpointsPrefix()) {
		if !strings.HasSuffix(k, ".checkpoint") {
			continue
		}
		c, _, err := manifest.OpenCheckpoint(w.get(k), w.s.Ring())
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// dropCheckpoint removes checkpoint seq with its token and cosignatures.
func (w *world) dropCheckpoint(lay layout.Layout, seq uint64) {
	w.remove(lay.Checkpoint(seq))
	prefix := strings.TrimSuffix(lay.Cosignature(seq, 0), "00000000.note")
	for _, k := range w.objects(prefix) {
		w.remove(k)
	}
	for _, k := range w.objects(lay.Timestamp(seq)) {
		w.remove(k)
	}
}

// dropBatch removes a batch's manifest and object.
func (w *world) dropBatch(key string, m *manifest.Manifest) {
	w.remove(key)
	w.remove(m.ObjectKey)
}

// verify runs `auditline verify` as an auditor would, asking both witnesses
// (from the configuration) and requiring the anchor.
func (w *world) verify(cfg string, extra ...string) (string, bool) {
	w.t.Helper()
	args := append([]string{"verify", "--config", cfg, "--retention-mode", "GOVERNANCE", "--require-anchor"}, extra...)
	out, err := w.s.Auditline(args...)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			w.t.Fatalf("auditline verify: %v\n%s", err, out)
		}
	}
	return out, err == nil
}

// mustFail checks that verify failed and that each want is in a FAILURES line.
func mustFail(t *testing.T, out string, ok bool, wants ...string) {
	t.Helper()
	_, failures, _ := strings.Cut(out, "FAILURES")
	if ok || failures == "" {
		t.Fatalf("verify passed:\n%s", out)
	}
	for _, want := range wants {
		if !strings.Contains(failures, want) {
			t.Fatalf("verify failed without naming %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(failures), "\n")
	t.Logf("verify: %d failure line(s), e.g.%s", len(lines)-2, strings.Join(lines[:min(4, len(lines))], "\n"))
}

func TestTamper(t *testing.T) {
	srv := stacktest.Shared(t)
	s := stacktest.New(t, srv, "")
	b, bcfg := archivetest.Bucket(t)
	s.Config.Archive.S3.Bucket = bcfg.Bucket
	s.Config.Archive.Origin = "tamper.test/" + s.Name
	s.Config.Kafka.Partitions = 2
	s.Config.Archive.Batch.MaxRecords = 150
	s.Config.Archive.Batch.MaxAge = time.Second
	s.Config.Archive.Checkpoint.Interval = time.Second
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
	w := &world{t: t, s: s, b: b, cur: b, lay: layout.New(s.Config.Archive.Prefix), topics: topics, w: tw}

	// The archive's log, as its witnesses know it.
	ring := s.Ring()
	pub, _ := ring.Key(ring.IDs()[0])
	logKey, err := keys.VerifierKey(s.Config.Archive.Origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	lg := witness.Log{Origin: s.Config.Archive.Origin, Keys: []string{logKey}}
	// Two witnesses, each with its own key and state: auditline's own, as a
	// process, and the independent litewitness.
	ownKey := filepath.Join(t.TempDir(), "witness.key")
	wpriv, _ := keys.Generate(nil)
	if err := keys.WriteNew(ownKey, wpriv); err != nil {
		t.Fatal(err)
	}
	_, ownVKey, err := witness.NewSigner("witness.example/own", wpriv)
	if err != nil {
		t.Fatal(err)
	}
	ownAddr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort())
	own := s.AuditlineProc("witness", "witness", "--name", "witness.example/own", "--key", ownKey, "--state", t.TempDir(),
		"--listen", ownAddr, "--log", logKey)
	own.Start()
	lite := witnesstest.StartLitewitness(t, "witness.example/lite", lg)
	s.Config.Archive.Witness.Witnesses = []archive.WitnessEntry{{Key: ownVKey, URL: "http://" + ownAddr}, {Key: lite.Witness.VKey, URL: lite.Witness.URL}}
	s.Config.Archive.Witness.Quorum = 2

	// The archive: three waves, so that there are checkpoints to roll back to.
	arch := s.Start("archive")
	for range 3 {
		w.produce(600)
		stacktest.WaitFor(t, "wave sealed", 90*time.Second, w.sealedAll(w.lay.Prefix))
		stacktest.WaitFor(t, "every checkpoint cosigned by both witnesses", 90*time.Second, w.allCosigned(w.lay))
	}
	if err := arch.Stop(); err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, "the final checkpoint cosigned", 90*time.Second, w.allCosigned(w.lay))

	// The auditor's first audit: everything verifies, anchored by both
	// witnesses; the newest checkpoint is kept for the next audit.
	w.kept = filepath.Join(t.TempDir(), "kept.checkpoint")
	out, ok := w.verify(s.ConfigFile(), "--save-checkpoint", w.kept)
	if !ok || !strings.Contains(out, "anchor    witnesses, up to ") {
		t.Fatalf("the untouched archive:\n%s", out)
	}
	t.Logf("the untouched archive:\n%s", out)

	t.Run("untouched copy verifies", func(t *testing.T) {
		cfg := w.clone(t)
		if out, ok := w.verify(cfg, "--since", w.kept); !ok || !strings.Contains(out, "consistency proof of 0 hashes verified") {
			t.Fatalf("an untouched copy:\n%s", out)
		}
	})

	t.Run("newest batches of a partition and the newest checkpoints deleted", func(t *testing.T) {
		cfg, lay := w.clone(t), w.lay
		keys, ms := w.manifests(lay, 0)
		cut := len(keys) - 2
		for i := cut; i < len(keys); i++ {
			w.dropBatch(keys[i], ms[i])
		}
		for _, c := range w.checkpoints(lay) {
			for _, h := range c.Heads {
				if h.Partition == 0 && h.Seq >= ms[cut].Seq {
					w.dropCheckpoint(lay, c.Seq)
					break
				}
			}
		}
		out, ok := w.verify(cfg)
		mustFail(t, out, ok, "has cosigned a log of", "were removed")
		out, ok = w.verify(cfg, "--since", w.kept)
		mustFail(t, out, ok, fmt.Sprintf("partition 0 offsets [%d, %d)", ms[cut].From, ms[len(ms)-1].To), "the log shrank")
	})

	t.Run("all checkpoints deleted", func(t *testing.T) {
		cfg, lay := w.clone(t), w.lay
		for _, c := range w.checkpoints(lay) {
			w.dropCheckpoint(lay, c.Seq)
		}
		_, ms0 := w.manifests(lay, 0)
		out, ok := w.verify(cfg)
		mustFail(t, out, ok, "NOTHING IS ANCHORED", fmt.Sprintf("partition 0 offsets [0, %d) anchor", ms0[len(ms0)-1].To))
		out, ok = w.verify(cfg, "--since", w.kept)
		mustFail(t, out, ok, "no longer holds the checkpoint you kept")
	})

	t.Run("a whole partition and the checkpoints deleted", func(t *testing.T) {
		cfg, lay := w.clone(t), w.lay
		keys, ms := w.manifests(lay, 1)
		for i := range keys {
			w.dropBatch(keys[i], ms[i])
		}
		for _, c := range w.checkpoints(lay) {
			w.dropCheckpoint(lay, c.Seq)
		}
		out, ok := w.verify(cfg, "--since", w.kept)
		mustFail(t, out, ok, fmt.Sprintf("partition 1 offsets [0, %d)", ms[len(ms)-1].To), "the batches sealing")
	})

	rollback := func(t *testing.T) (layout.Layout, string, *manifest.Checkpoint) {
		cfg, lay := w.clone(t), w.lay
		cps := w.checkpoints(lay)
		back := cps[len(cps)/2]
		heads := map[int32]uint64{}
		for _, h := range back.Heads {
			heads[h.Partition] = h.Seq
		}
		for _, p := range []int32{0, 1} {
			keys, ms := w.manifests(lay, p)
			for i, m := range ms {
				if hs, ok := heads[p]; !ok || m.Seq > hs {
					w.dropBatch(keys[i], m)
				}
			}
		}
		for _, c := range cps {
			if c.Seq > back.Seq {
				w.dropCheckpoint(lay, c.Seq)
			}
		}
		return lay, cfg, back
	}

	t.Run("every partition rolled back to an older checkpoint", func(t *testing.T) {
		_, cfg, back := rollback(t)
		out, ok := w.verify(cfg)
		mustFail(t, out, ok, "has cosigned a log of", fmt.Sprintf("has %d: leaves [%d, ", back.LogSize, back.LogSize))
		out, ok = w.verify(cfg, "--since", w.kept)
		mustFail(t, out, ok, "the log shrank", "partition 0 offsets", "partition 1 offsets")
	})

	t.Run("re-signed with a new key published under keys/", func(t *testing.T) {
		cfg, lay := w.clone(t), w.lay
		forger, _ := keys.Generate(nil)
		signer, _ := keys.NewSigner(s.Config.Archive.Origin, forger)
		pemBytes, _ := keys.MarshalPublic(signer.Public())
		w.put(lay.PublicKey(signer.KeyID()), pemBytes)
		mkeys, ms := w.manifests(lay, 0)
		m := ms[len(ms)-1]
		m.Count-- // "one record fewer"
		m.KeyID = signer.KeyID()
		forged, err := m.Sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		w.remove(mkeys[len(mkeys)-1])
		w.put(mkeys[len(mkeys)-1], forged)
		cps := w.checkpoints(lay)
		c := cps[len(cps)-1]
		for i, h := range c.Heads {
			if h.Manifest == mkeys[len(mkeys)-1] {
				sum := sha256.Sum256(forged)
				c.Heads[i].SHA256 = hex.EncodeToString(sum[:])
			}
		}
		c.KeyID = signer.KeyID()
		if err := c.SignLog(signer); err != nil {
			t.Fatal(err)
		}
		fc, err := c.Sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		w.remove(lay.Checkpoint(c.Seq))
		w.put(lay.Checkpoint(c.Seq), fc)
		out, ok := w.verify(cfg)
		mustFail(t, out, ok, mkeys[len(mkeys)-1]+": signature", lay.Checkpoint(c.Seq)+": signature")
	})

	t.Run("an insider appends 37 copied records signed with the real key", func(t *testing.T) {
		cfg, lay := w.clone(t), w.lay
		mkeys, ms := w.manifests(lay, 0)
		head, headKey := ms[len(ms)-1], mkeys[len(mkeys)-1]
		f, err := batch.Open(bytes.NewReader(w.get(head.ObjectKey)))
		if err != nil {
			t.Fatal(err)
		}
		canon, err := f.Binaries(ctx, batch.ColCanonical)
		f.Close()
		if err != nil || len(canon) < 37 {
			t.Fatalf("%d records, %v", len(canon), err)
		}
		now := time.Now()
		var rows []batch.Row
		for i := range 37 {
			r := batch.NewRow(topics.Decisions(), 0, head.To+int64(i), now, canon[i])
			rows = append(rows, r)
		}
		root, _ := merkletree.Root(batch.Leaves(rows))
		from, to := head.To, head.To+37
		var buf bytes.Buffer
		if err := batch.Encode(&buf, rows, batch.Meta{Topic: topics.Decisions(), Partition: 0, From: from, To: to, Root: root}, batch.Options{}); err != nil {
			t.Fatal(err)
		}
		objKey := lay.Batch(0, from, to)
		w.put(objKey, buf.Bytes())
		sum := sha256.Sum256(buf.Bytes())
		prev := sha256.Sum256(w.get(headKey))
		priv, err := keys.Load(s.Config.Archive.SigningKeyFile) // the real key
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := keys.NewSigner(s.Config.Archive.Origin, priv)
		fm := &manifest.Manifest{Type: manifest.ManifestType, Origin: s.Config.Archive.Origin, Topic: topics.Decisions(), Partition: 0,
			Seq: head.Seq + 1, From: from, To: to, Count: 37, MinTime: record.TimeOf(now), MaxTime: record.TimeOf(now),
			ObjectKey: objKey, ObjectSize: int64(buf.Len()), ObjectSHA256: hex.EncodeToString(sum[:]), MerkleRoot: hex.EncodeToString(root),
			PrevSHA256: hex.EncodeToString(prev[:]), SchemaVersion: record.SchemaVersion, KeyID: signer.KeyID(), SealedAt: record.TimeOf(now),
			LeafRule: merkletree.LeafRuleV2}
		data, err := fm.Sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		w.put(lay.Manifest(0, from), data)
		out, ok := w.verify(cfg)
		mustFail(t, out, ok, fmt.Sprintf("partition 0 offsets [%d, %d) %s: duplicate", from, from+1, objKey), "is sealed twice")
	})

	t.Run("rolled back, then the archiver goes on: the witnesses refuse the shorter log", func(t *testing.T) {
		lay, cfg, back := rollback(t)
		// The archiver runs on the rolled-back archive (a new consumer group
		// re-reads the topic) and more records arrive.
		c := s.Config
		c.Archive.S3.Bucket, c.Archive.Group = w.cur.Name(), s.Name+"-forked"
		forked := s.AuditlineProc("archive-forked", "archive", "--config", s.WriteConfig("auditline-forked-run.yaml", c))
		forked.Start()
		w.produce(300)
		stacktest.WaitFor(t, "the forked archiver sealed everything", 90*time.Second, w.sealedAll(lay.Prefix))
		stacktest.WaitFor(t, "both witnesses refused", 60*time.Second, func() error {
			if n := forked.LogCount("witness contradicts the bucket"); n < 2 {
				return fmt.Errorf("%d refusal(s) logged", n)
			}
			return nil
		})
		if err := forked.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"witness.example/own", "witness.example/lite"} {
			if !strings.Contains(string(forked.Log()), name) {
				t.Fatalf("the archiver did not report %s refusing:\n%s", name, forked.Log())
			}
		}
		out, ok := w.verify(cfg)
		mustFail(t, out, ok, "witness witness.example/own: anchor", "witness witness.example/lite: anchor")
		t.Logf("rolled back to %d leaves, then continued", back.LogSize)
	})

	t.Run("evidence pack: deterministic, verifies, removal caught", func(t *testing.T) {
		w.cur = w.b
		dir := t.TempDir()
		export := func(name string) []byte {
			p := filepath.Join(dir, name)
			s.Must("export", "--config", s.ConfigFile(), "--from", "2000-01-01", "--to", "2100-01-01", "--out", p)
			b, _ := os.ReadFile(p)
			return b
		}
		p1, p2 := export("a.tar.gz"), export("b.tar.gz")
		if !bytes.Equal(p1, p2) {
			t.Fatal("re-export is not byte-identical")
		}
		if out, err := exec.Command("tar", "-xzf", filepath.Join(dir, "a.tar.gz"), "-C", dir).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v %s", err, out)
		}
		packs, _ := filepath.Glob(filepath.Join(dir, "auditline-evidence-*"))
		pack := packs[0]
		run := func() (string, error) {
			cmd := exec.Command("bash", "VERIFY.sh")
			cmd.Dir = pack
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := run(); err != nil || !strings.Contains(out, "step 10 OK") {
			t.Fatalf("VERIFY.sh on the pack: %v\n%s", err, out)
		}
		s.Must("verify-proof", "--pack", pack, "--key", s.PublicKey())
		batches, _ := filepath.Glob(filepath.Join(pack, "bucket", "*", "*", "batches", "p0000000000", "*.parquet"))
		sort.Strings(batches)
		if len(batches) == 0 {
			t.Fatal("no batch object in the pack")
		}
		os.Remove(batches[len(batches)-1])
		cmd := exec.Command("bash", "-c", `s=$(mktemp) && find . -type f ! -name SHA256SUMS ! -name pack.manifest | sed 's|^./||' | sort | xargs sha256sum > "$s" && mv "$s" SHA256SUMS`)
		cmd.Dir = pack
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		if out, err := run(); err == nil || !strings.Contains(out, "FILE MISSING: bucket/") {
			t.Fatalf("VERIFY.sh on a pack without its tail batch: %v\n%s", err, out)
		}
		if out, err := s.Auditline("verify-proof", "--pack", pack, "--key", s.PublicKey()); err == nil || !strings.Contains(out, "is missing") {
			t.Fatalf("verify-proof --pack on a pack without its tail batch: %v\n%s", err, out)
		}
	})
}
