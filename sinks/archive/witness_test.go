package archive

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/verify"
	"github.com/auditline/auditline/sinks/archive/witness"
	"github.com/auditline/auditline/sinks/archive/witness/witnesstest"
)

// logOf returns the archive's log as its witnesses know it: the origin and
// the archive key's signed-note verifier key.
func (e *env) logOf(t *testing.T) witness.Log {
	priv, err := keys.Load(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := keys.VerifierKey(e.cfg.OriginName(), priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return witness.Log{Origin: e.cfg.OriginName(), Keys: []string{vkey}}
}

func entry(w witness.Witness) WitnessEntry { return WitnessEntry{Key: w.VKey, URL: w.URL} }

// v2Checkpoints returns the sequence numbers of the bucket's checkpoints and
// of its cosignature objects by witness key hash.
func (e *env) cosignatures(t *testing.T) (checkpoints int, byWitness map[uint32]int) {
	ctx := context.Background()
	lay := e.layout()
	byWitness = map[uint32]int{}
	e.b.List(ctx, lay.CheckpointsPrefix(), "", func(in bucket.Info) error {
		if strings.HasSuffix(in.Key, ".checkpoint") {
			checkpoints++
		}
		return nil
	})
	e.b.List(ctx, lay.CosignaturesPrefix(), "", func(in bucket.Info) error {
		if _, h, err := lay.ParseCosignature(in.Key); err == nil {
			byWitness[h]++
		}
		return nil
	})
	return checkpoints, byWitness
}

// TestWitnesses archives with two witnesses — the independent litewitness
// and auditline's own — and a quorum of both: every checkpoint is cosigned
// by each, the cosignatures are stored, and verify (asking both witnesses)
// finds the whole log anchored. Then litewitness goes down: sealing and
// checkpointing go on, verify says which leaves are not anchored yet, and
// when litewitness is back the cosigner catches up checkpoint by checkpoint.
func TestWitnesses(t *testing.T) {
	e := newEnv(t, 2)
	e.cfg.Batch.MaxRecords = 150
	lg := e.logOf(t)
	lite := witnesstest.StartLitewitness(t, "witness.example/lite", lg)
	own := witnesstest.StartServer(t, "witness.example/own", lg)
	e.cfg.Witness = WitnessConfig{Witnesses: []WitnessEntry{entry(lite.Witness), entry(own.Witness)}, Quorum: 2, Timeout: 5 * time.Second}
	ws := []witness.Witness{lite.Witness, own.Witness}
	vo := e.verifyOpts()
	vo.Witnesses, vo.Quorum, vo.RequireAnchor = ws, 2, true

	r := e.start(e.cfg)
	sealed := 0
	wave := func() {
		e.produce(sealed, sealed+600)
		sealed += 600
		waitFor(t, "wave sealed", 60*time.Second, func() bool { return r.sealed() == sealed })
		r.waitCheckpointed(t, sealed)
	}
	wave()
	wave()
	allCosigned := func() bool {
		n, by := e.cosignatures(t)
		return n > 0 && by[lite.Witness.Key.KeyHash()] == n && by[own.Witness.Key.KeyHash()] == n
	}
	waitFor(t, "every checkpoint cosigned by both witnesses", 90*time.Second, allCosigned)
	rep := e.verify(vo)
	if !rep.OK() || rep.Anchor != "witnesses" || rep.AnchoredSize != rep.LogSize || rep.LogSize != uint64(sealed) {
		t.Fatalf("verify with both witnesses:\n%s", reportString(rep))
	}
	for _, w := range rep.Witnesses {
		if !w.Online || w.Seen != rep.LogSize {
			t.Fatalf("witness %s: %+v", w.Name, w)
		}
	}

	// litewitness down: sealing does not stop.
	lite.Stop()
	wave()
	wave()
	n, by := e.cosignatures(t)
	if by[lite.Witness.Key.KeyHash()] >= n {
		t.Fatalf("%d checkpoints, %d cosigned by the stopped witness", n, by[lite.Witness.Key.KeyHash()])
	}
	rep = e.verify(vo)
	if rep.OK() || rep.AnchoredSize >= rep.LogSize || rep.LogSize != uint64(sealed) {
		t.Fatalf("with a witness of the quorum down, verify --require-anchor must fail and name the unanchored leaves:\n%s", reportString(rep))
	}
	t.Logf("witness down:\n%s", reportString(rep))
	// Without --require-anchor it is a warning naming the unanchored leaves.
	vo2 := vo
	vo2.RequireAnchor = false
	rep = e.verify(vo2)
	if !rep.OK() || !hasWarning(rep, verify.CheckAnchor, "are not anchored yet") {
		t.Fatalf("without --require-anchor:\n%s", reportString(rep))
	}

	// Back up: the cosigner catches up, one checkpoint at a time.
	lite.Start()
	waitFor(t, "litewitness caught up", 90*time.Second, allCosigned)
	r.stop(t)
	waitFor(t, "the final checkpoint cosigned", 90*time.Second, allCosigned)
	rep = e.verify(vo)
	if !rep.OK() || rep.AnchoredSize != rep.LogSize {
		t.Fatalf("after the catch-up:\n%s", reportString(rep))
	}
	if got := e.exactlyOnce(); got != sealed {
		t.Fatalf("exactly once over %d, want %d", got, sealed)
	}
}

func hasWarning(rep *verify.Report, check verify.Check, substr string) bool {
	for _, w := range rep.Warnings {
		if w.Check == check && strings.Contains(w.Detail, substr) {
			return true
		}
	}
	return false
}
