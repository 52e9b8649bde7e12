package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/tlog"
)

// sinceItem is one checkpoint kept from an earlier audit (Options.Since).
type sinceItem struct {
	source string
	raw    []byte
	cp     *manifest.Checkpoint // a JSON checkpoint (v1 or v2); nil for a C2SP note
	size   uint64               // log size (0 for a v1 checkpoint)
	root   []byte
	hasLog bool
}

// parseSince opens every kept checkpoint: a JSON checkpoint object, or a
// C2SP tlog-checkpoint note signed by a trusted key (possibly with witness
// cosignatures, which are ignored here). One that does not open is a failure.
func (v *verifier) parseSince() error {
	verifiers := []note.Verifier{}
	for _, w := range v.o.Witnesses {
		verifiers = append(verifiers, w.Key)
	}
	known := multiVerifiers{v.ring, note.VerifierList(verifiers...)}
	for i, raw := range v.o.Since {
		it := &sinceItem{source: fmt.Sprintf("--since #%d", i+1), raw: raw}
		kept := func(detail string) {
			v.rep.fail(Failure{Check: CheckLog, Key: it.source, Partition: -1, From: -1, To: -1, Detail: detail})
		}
		if c, _, err := manifest.OpenCheckpoint(raw, v.ring); err == nil {
			it.cp = c
			if c.Type == manifest.CheckpointType {
				lc, _ := c.LogCheckpoint()
				it.size, it.root, it.hasLog = lc.Size, lc.Root, true
			}
		} else if lc, _, nerr := tlog.Open(raw, known); nerr == nil {
			if want := v.origin(); want != "" && lc.Origin != want {
				kept(fmt.Sprintf("the kept checkpoint is of log %q, this archive's log is %q", lc.Origin, want))
				continue
			}
			it.size, it.root, it.hasLog = lc.Size, lc.Root, true
		} else {
			kept(fmt.Sprintf("the kept checkpoint does not verify with the trusted keys (as a checkpoint object: %v; as a C2SP note: %v)", err, nerr))
			continue
		}
		v.since = append(v.since, it)
	}
	return nil
}

// origin returns the log's origin (from the v2 checkpoints), or "".
func (v *verifier) origin() string {
	for _, st := range v.steps {
		return st.cp.c.Origin
	}
	return ""
}

// multiVerifiers tries each set in turn.
type multiVerifiers []note.Verifiers

func (m multiVerifiers) Verifier(name string, hash uint32) (note.Verifier, error) {
	var err error
	for _, vs := range m {
		var v note.Verifier
		if v, err = vs.Verifier(name, hash); err == nil {
			return v, nil
		}
	}
	return nil, err
}

// logPhase recomputes the global log at every v2 checkpoint and checks the
// kept checkpoints (phase 5).
func (v *verifier) logPhase(ctx context.Context) error {
	for _, st := range v.steps {
		if st.planErr != "" {
			continue
		}
		v.recompute(st)
	}
	for _, it := range v.since {
		v.checkSince(ctx, it)
	}
	return nil
}

// recompute checks one v2 checkpoint: the previous checkpoint's frontier
// (as that checkpoint signed it) plus the leaves of the batches it appends
// must give exactly its log_size, log_root and log_frontier. Checked step by
// step, the log of every checkpoint extends the one before.
func (v *verifier) recompute(st *logStep) {
	c := st.cp.c
	fail := func(format string, args ...any) {
		v.rep.fail(Failure{Check: CheckLog, Key: st.cp.key, Partition: -1, From: -1, To: -1, Detail: fmt.Sprintf(format, args...)})
	}
	base := tlog.NewSegment(0)
	if st.prev != nil {
		front, err := tlog.DecodeHashes(st.prev.c.LogFrontier)
		if err == nil {
			base, err = tlog.FromFrontier(st.prev.c.LogSize, front)
		}
		if err != nil {
			fail("the previous v2 checkpoint %s has an unusable log_frontier: %v", st.prev.key, err)
			return
		}
	}
	for _, e := range st.batches {
		if e.job == nil || e.job.seg == nil {
			// Not read (outside --from/--to), or the batch failed and is
			// reported on its own; say once that this step is unchecked.
			if e.job != nil && e.job.err != "" {
				fail("the log cannot be recomputed: batch %s (partition %d offsets [%d, %d)) did not verify", e.M.ObjectKey, e.M.Partition, e.M.From, e.M.To)
			}
			return
		}
		if err := base.AppendSegment(e.job.seg); err != nil {
			fail("appending batch %s: %v", e.M.ObjectKey, err)
			return
		}
	}
	root, err := base.Root()
	if err != nil {
		fail("%v", err)
		return
	}
	switch {
	case base.End() != c.LogSize:
		fail("log_size %d, its batches give %d", c.LogSize, base.End())
	case hex.EncodeToString(root) != c.LogRoot:
		fail("log_root %s, the leaves of its batches give %s: the batches in the log are not the ones the checkpoint signed", short(c.LogRoot), short(hex.EncodeToString(root)))
	case !equalHashes(tlog.EncodeHashes(base.Frontier()), c.LogFrontier):
		fail("log_frontier is not the compact range of its log (the next checkpoint would continue from wrong nodes)")
	default:
		v.rep.LogVerified++
	}
}

func equalHashes(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkSince checks one kept checkpoint against the bucket: it must still be
// there (v1: byte for byte), and the newest log must extend it — proven with
// an RFC 6962 consistency proof built from the batches' leaves.
func (v *verifier) checkSince(ctx context.Context, it *sinceItem) {
	fail := func(key string, format string, args ...any) {
		v.rep.fail(Failure{Check: CheckLog, Key: key, Partition: -1, From: -1, To: -1, Detail: fmt.Sprintf(format, args...)})
	}
	if it.cp != nil {
		// The bucket must still hold the kept checkpoint object byte for byte.
		sum := sha256.Sum256(it.raw)
		found := false
		for _, c := range v.cps {
			if c.seq == it.cp.Seq {
				found = c.sum == hex.EncodeToString(sum[:])
			}
		}
		if !found {
			v.rep.fail(Failure{Check: CheckCheckpoint, Key: v.o.Layout.Checkpoint(it.cp.Seq), Partition: -1, From: -1, To: -1,
				Detail: "the bucket no longer holds the checkpoint you kept from an earlier audit (dropped or replaced)"})
		}
		v.keptHeads(it.cp)
		if !it.hasLog {
			return
		}
	}
	if len(v.steps) == 0 {
		fail(it.source, "you kept a checkpoint of a log of %d leaves; the bucket has no checkpoint of the global log at all (all removed)", it.size)
		return
	}
	latest := v.steps[len(v.steps)-1].cp
	n, rootN := latest.c.LogSize, mustHex(latest.c.LogRoot)
	rep := SinceReport{Source: it.source, Size: it.size, ToSize: n}
	defer func() { v.rep.Since = append(v.rep.Since, rep) }()
	if it.size > n {
		fail(it.source, "the log shrank: you kept a checkpoint of %d leaves, the newest checkpoint in the bucket (%s) has %d: leaves [%d, %d) — the newest batches and checkpoints — were removed", it.size, latest.key, n, n, it.size)
		return
	}
	// The bucket's checkpoint of the kept size gives the frontier there.
	var at *logStep
	idx := -1
	for i, st := range v.steps {
		if st.cp.c.LogSize == it.size {
			at, idx = st, i
		}
	}
	if at == nil {
		fail(it.source, "the bucket holds no checkpoint of %d leaves any more (the kept one was removed; the newest has %d)", it.size, n)
		return
	}
	if !bytes.Equal(mustHex(at.cp.c.LogRoot), it.root) {
		fail(at.cp.key, "this checkpoint of %d leaves has root %s, the one you kept has %s: the log was rewritten", it.size, short(at.cp.c.LogRoot), short(hex.EncodeToString(it.root)))
		return
	}
	front, err := tlog.DecodeHashes(at.cp.c.LogFrontier)
	if err != nil {
		fail(at.cp.key, "log_frontier: %v", err)
		return
	}
	seg := tlog.NewSegment(it.size)
	for _, st := range v.steps[idx+1:] {
		if st.planErr != "" {
			fail(it.source, "no consistency proof from %d to %d: the log cannot be recomputed at %s", it.size, n, st.cp.key)
			return
		}
		for _, e := range st.batches {
			if e.job == nil || e.job.seg == nil {
				fail(it.source, "no consistency proof from %d to %d: batch %s was not read or did not verify", it.size, n, e.M.ObjectKey)
				return
			}
			if err := seg.AppendSegment(e.job.seg); err != nil {
				fail(it.source, "consistency proof: %v", err)
				return
			}
		}
	}
	proof, err := tlog.Consistency(it.size, front, seg)
	if err != nil {
		fail(it.source, "consistency proof from %d to %d: %v", it.size, n, err)
		return
	}
	rep.Proof = tlog.EncodeHashes(proof)
	if err := tlog.VerifyConsistency(it.size, n, proof, it.root, rootN); err != nil {
		fail(it.source, "the newest log (%d leaves, %s) is not an extension of the one you kept (%d leaves): %v", n, latest.key, it.size, err)
		return
	}
	rep.Verified = true
}

// keptHeads checks that every partition head a kept checkpoint names is still
// in the bucket, byte for byte, and names the offsets that are gone when it
// is not: [where the bucket's chain now ends, the kept head's end).
func (v *verifier) keptHeads(c *manifest.Checkpoint) {
	for _, h := range c.Heads {
		e := v.byKey[h.Manifest]
		if e != nil && e.SHA256 == h.SHA256 {
			continue
		}
		end, detail := int64(0), "the partition has no manifest left"
		if pc := v.chains[h.Partition]; pc != nil && len(pc.entries) > 0 {
			last := pc.entries[len(pc.entries)-1].M
			end, detail = last.To, fmt.Sprintf("its chain now ends at seq %d, offset %d", last.Seq, last.To)
		}
		what := "is missing"
		if e != nil {
			what = "was replaced"
		}
		v.rep.fail(Failure{Check: CheckChain, Key: h.Manifest, Partition: h.Partition, From: min(end, h.To), To: h.To,
			Detail: fmt.Sprintf("the checkpoint you kept (seq %d) names this manifest (seq %d, sealing offsets up to %d) as the head of partition %d; it %s and %s: the batches sealing [%d, %d) were removed", c.Seq, h.Seq, h.To, h.Partition, what, detail, min(end, h.To), h.To)})
	}
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}
