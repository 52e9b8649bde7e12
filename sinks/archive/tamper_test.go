package archive

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// sealedArchive archives 4 partitions × several batches and at least three
// checkpoints, and returns the environment.
func sealedArchive(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, 4)
	e.cfg.Batch.MaxRecords = 150
	r := e.start(e.cfg)
	sealed := 0
	for wave := range 3 { // three waves so that checkpoints see heads move
		e.produce(wave*1000, (wave+1)*1000)
		sealed += 1000
		waitFor(t, "wave sealed", 60*time.Second, func() bool { return r.sealed() == sealed })
		r.waitCheckpointed(t, sealed)
	}
	r.stop(t)
	rep := e.verify(e.verifyOpts())
	if !rep.OK() || rep.Checkpoints < 3 {
		t.Fatalf("archive before tampering (want OK and ≥ 3 checkpoints):\n%s", reportString(rep))
	}
	return e
}

// tamper helpers: the bucket is GOVERNANCE, so a privileged user can bypass
// the lock — exactly the attack verify must catch.
func (e *env) versionOf(t *testing.T, key string) string {
	st, err := e.b.Client().StatObject(context.Background(), e.b.Name(), key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st.VersionID
}

func (e *env) remove(t *testing.T, key string) {
	t.Helper()
	err := e.b.Client().RemoveObject(context.Background(), e.b.Name(), key, minio.RemoveObjectOptions{VersionID: e.versionOf(t, key), GovernanceBypass: true})
	if err != nil {
		t.Fatalf("remove %s: %v", key, err)
	}
}

func (e *env) replace(t *testing.T, key string, data []byte) {
	t.Helper()
	e.remove(t, key)
	_, err := e.b.Client().PutObject(context.Background(), e.b.Name(), key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{Mode: minio.Governance, RetainUntilDate: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func (e *env) get(t *testing.T, key string) []byte {
	t.Helper()
	data, _, err := e.b.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// find returns the failure of the given check naming key, or fails the test
// with the report.
func mustName(t *testing.T, rep *verify.Report, check verify.Check, key string, partition int32) verify.Failure {
	t.Helper()
	for _, f := range rep.Failures {
		if f.Check == check && f.Key == key && f.Partition == partition {
			return f
		}
	}
	t.Fatalf("verify did not report %s of %s (partition %d):\n%s", check, key, partition, reportString(rep))
	return verify.Failure{}
}

// TestTamperDetected tampers with a sealed archive on real MinIO, one attack
// at a time, and checks that verify detects each one and names the object,
// partition and offset range.
func TestTamperDetected(t *testing.T) {
	e := sealedArchive(t)
	lay := e.layout()
	o := e.verifyOpts()
	manifests := func(p int32) []string {
		var keys []string
		e.b.List(context.Background(), lay.ManifestPrefix(p), "", func(in bucket.Info) error { keys = append(keys, in.Key); return nil })
		if len(keys) < 4 {
			t.Fatalf("partition %d has %d batches, want ≥ 4", p, len(keys))
		}
		return keys
	}
	batchOf := func(mkey string) (key string, from, to int64) {
		data := e.get(t, mkey)
		line, _, _ := bytes.Cut(data, []byte("\n"))
		s := string(line)
		key = s[strings.Index(s, `"object_key":"`)+14:]
		key = key[:strings.IndexByte(key, '"')]
		_, from, to, err := lay.ParseBatch(key)
		if err != nil {
			t.Fatal(err)
		}
		return key, from, to
	}

	t.Run("flip one byte of a batch object", func(t *testing.T) {
		key, from, to := batchOf(manifests(0)[1])
		data := e.get(t, key)
		data[len(data)/2] ^= 0x01
		e.replace(t, key, data)
		f := mustName(t, e.verify(o), verify.CheckObject, key, 0)
		if f.From != from || f.To != to || !strings.Contains(f.Detail, "checksum") {
			t.Fatalf("failure = %+v", f)
		}
		t.Log(f.Error())
	})

	t.Run("delete a batch", func(t *testing.T) {
		ms := manifests(1)
		key, from, to := batchOf(ms[2])
		e.remove(t, key)
		e.remove(t, ms[2])
		rep := e.verify(o)
		f := mustName(t, rep, verify.CheckChain, ms[3], 1)
		if f.From != from || f.To != to {
			t.Fatalf("gap named [%d, %d), want the deleted batch [%d, %d): %+v", f.From, f.To, from, to, f)
		}
		t.Log(f.Error())
	})

	t.Run("reorder two batches", func(t *testing.T) {
		ms := manifests(2)
		a, b := e.get(t, ms[1]), e.get(t, ms[2])
		e.replace(t, ms[1], b)
		e.replace(t, ms[2], a)
		rep := e.verify(o)
		f := mustName(t, rep, verify.CheckChain, ms[1], 2)
		if !strings.Contains(f.Detail, "reordered") {
			t.Fatalf("failure = %+v", f)
		}
		t.Log(f.Error())
		// And swapped batch objects (the manifests left in place) are named too.
		ms3 := manifests(3)
		k1, _, _ := batchOf(ms3[1])
		k2, _, _ := batchOf(ms3[2])
		d1, d2 := e.get(t, k1), e.get(t, k2)
		e.replace(t, k1, d2)
		e.replace(t, k2, d1)
		rep = e.verify(o)
		f = mustName(t, rep, verify.CheckObject, k1, 3)
		mustName(t, rep, verify.CheckRecords, k1, 3)
		t.Log(f.Error())
	})

	t.Run("alter a manifest", func(t *testing.T) {
		mkey := manifests(0)[3]
		data := e.get(t, mkey)
		altered := bytes.Replace(data, []byte(`"count":`), []byte(`"count":1`), 1) // 150 -> 1150
		if bytes.Equal(altered, data) {
			t.Fatal("nothing altered")
		}
		e.replace(t, mkey, altered)
		f := mustName(t, e.verify(o), verify.CheckSignature, mkey, 0)
		if f.From < 0 || f.To <= f.From {
			t.Fatalf("the failure does not name the offset range: %+v", f)
		}
		t.Log(f.Error())
	})

	t.Run("drop a checkpoint", func(t *testing.T) {
		key := lay.Checkpoint(1)
		kept := e.get(t, lay.Checkpoint(0))
		e.remove(t, key)
		rep := e.verify(o)
		f := mustName(t, rep, verify.CheckCheckpoint, lay.Checkpoint(2), -1)
		if !strings.Contains(f.Detail, "missing") {
			t.Fatalf("failure = %+v", f)
		}
		t.Log(f.Error())
		// The latest one dropped: only an auditor's saved copy reveals it.
		o2 := o
		o2.Since = [][]byte{kept}
		if rep := e.verify(o2); rep.Has(verify.CheckCheckpoint, lay.Checkpoint(0)) {
			t.Fatalf("a checkpoint still present was reported missing:\n%s", reportString(rep))
		}
		e.remove(t, lay.Checkpoint(0))
		o2.Since = [][]byte{kept}
		mustName(t, e.verify(o2), verify.CheckCheckpoint, lay.Checkpoint(0), -1)
	})
}

// TestAdoptUploadedBatch simulates a crash after a batch object was uploaded
// and before its manifest: the restarted archiver rebuilds the same batch,
// finds the object, checks it holds exactly those records, and seals it.
func TestAdoptUploadedBatch(t *testing.T) {
	e := newEnv(t, 1)
	e.cfg.Batch.MaxRecords = 200
	e.cfg.Batch.MaxAge = time.Hour // cut by count only: the rebuilt batch is the same
	e.produce(0, 1000)
	r := e.start(e.cfg)
	waitFor(t, "sealed", 60*time.Second, func() bool { return r.sealed() == 1000 })
	r.stop(t)
	lay := e.layout()
	last, err := e.b.Last(context.Background(), lay.ManifestPrefix(0), 20)
	if err != nil {
		t.Fatal(err)
	}
	e.remove(t, last) // the manifest never made it
	if err := e.b.List(context.Background(), lay.CheckpointsPrefix(), "", func(in bucket.Info) error {
		e.remove(t, in.Key) // nor did the checkpoints naming it
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Group = e.name + "-restart"
	r2 := e.start(cfg)
	waitFor(t, "the last batch re-sealed", 60*time.Second, func() bool { return r2.sealed() == 200 })
	r2.stop(t)
	if n := testutilValue(r2.a.m.adopted); n != 1 {
		t.Fatalf("adopted %v batch objects, want 1", n)
	}
	rep := e.verify(e.verifyOpts())
	if !rep.OK() || len(warnings(rep)) != 0 {
		t.Fatalf("verify:\n%s", reportString(rep))
	}
	if got := e.exactlyOnce(); got != 1000 {
		t.Fatalf("exactly once over %d, want 1000", got)
	}
}

// TestCheckpointsTimeStamped runs the archiver against a local `openssl ts`
// TSA: every checkpoint gets a token, verify checks it chains to the TSA root,
// and `openssl ts -verify` accepts the stored token for the stored checkpoint.
func TestCheckpointsTimeStamped(t *testing.T) {
	srv := newTSA(t)
	e := newEnv(t, 2)
	e.cfg.Checkpoint.TSAURL = srv.URL
	r := e.start(e.cfg)
	for wave := range 2 {
		e.produce(wave*250, (wave+1)*250)
		waitFor(t, "sealed", 60*time.Second, func() bool { return r.sealed() == (wave+1)*250 })
		r.waitCheckpointed(t, (wave+1)*250)
	}
	// The token is asked for after the checkpoint is written: wait for it
	// too before stopping (stopping cancels a request in flight).
	lay := e.layout()
	tsSuffix := lay.Timestamp(0)[len(lay.Checkpoint(0))-len(".checkpoint"):]
	waitFor(t, "every checkpoint time-stamped", 60*time.Second, func() bool {
		cps, tss := 0, 0
		e.b.List(context.Background(), lay.CheckpointsPrefix(), "", func(in bucket.Info) error {
			switch {
			case strings.HasSuffix(in.Key, ".checkpoint"):
				cps++
			case strings.HasSuffix(in.Key, tsSuffix):
				tss++
			}
			return nil
		})
		return cps > 0 && tss == cps
	})
	r.stop(t)
	o := e.verifyOpts()
	o.TSARoots = roots(t, srv.CAFile)
	o.RequireTimestamps = true
	rep := e.verify(o)
	if !rep.OK() || rep.Timestamped == 0 || rep.Timestamped != rep.Checkpoints {
		t.Fatalf("verify with a TSA (%d of %d checkpoints stamped):\n%s", rep.Timestamped, rep.Checkpoints, reportString(rep))
	}
	cp, tok := e.get(t, lay.Checkpoint(0)), e.get(t, lay.Timestamp(0))
	if out, err := srv.OpenSSLVerify(t, tok, cp); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	t.Logf("%d checkpoints, all time-stamped; openssl ts -verify: OK", rep.Checkpoints)
	// A token moved to another checkpoint fails.
	if rep.Checkpoints > 1 {
		e.replace(t, lay.Timestamp(1), tok)
		mustName(t, e.verify(o), verify.CheckTimestamp, lay.Timestamp(1), -1)
	}
}

// TestComplianceObjectsRefused archives under COMPLIANCE (a retention of
// seconds, so the bucket can be removed afterwards) and checks that the server
// refuses to delete or overwrite the archived objects. The retention is 30 s:
// sealing, verifying and the attempts must end before it does (4 s did not
// on a loaded box, and a delete after expiry rightly succeeds); the bucket's
// cleanup waits for the rest.
func TestComplianceObjectsRefused(t *testing.T) {
	e := newEnv(t, 1)
	const lock = 30 * time.Second
	e.cfg.Retention = RetentionConfig{Mode: string(bucket.Compliance), Period: retention.Exactly(lock)}
	e.produce(0, 300)
	r := e.start(e.cfg)
	waitFor(t, "sealed", 60*time.Second, func() bool { return r.sealed() == 300 })
	r.stop(t)
	o := e.verifyOpts()
	o.RetentionMode = bucket.Compliance
	if rep := e.verify(o); !rep.OK() {
		t.Fatalf("verify:\n%s", reportString(rep))
	}
	lay := e.layout()
	mkey, err := e.b.Last(context.Background(), lay.ManifestPrefix(0), 20)
	if err != nil || mkey == "" {
		t.Fatal(mkey, err)
	}
	key, _, _ := strings.Cut(strings.Split(string(e.get(t, mkey)), `"object_key":"`)[1], `"`)
	ctx := context.Background()
	for _, k := range []string{key, mkey} {
		vid := e.versionOf(t, k)
		if _, until, err := e.b.Client().GetObjectRetention(ctx, e.b.Name(), k, vid); err != nil || until == nil || !until.After(time.Now()) {
			t.Fatalf("%s: the %s COMPLIANCE lock must still hold for this test (retain-until %v, %v): the box was too slow to seal and verify in time", k, lock, until, err)
		}
		err := e.b.Client().RemoveObject(ctx, e.b.Name(), k, minio.RemoveObjectOptions{VersionID: vid, GovernanceBypass: true})
		if err == nil {
			t.Fatalf("delete of COMPLIANCE object %s was not refused", k)
		}
		t.Logf("delete %s refused: %v", k, err)
		if err := e.b.Put(ctx, k, []byte("forged"), "", bucket.Lock{Mode: bucket.Compliance, Until: time.Now().Add(time.Hour)}); !errors.Is(err, bucket.ErrExists) {
			t.Fatalf("overwrite of %s = %v, want refused", k, err)
		}
	}
	if rep := e.verify(o); !rep.OK() {
		t.Fatalf("verify after the refused attempts:\n%s", reportString(rep))
	}
}

func roots(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}
