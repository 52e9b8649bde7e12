package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/chain"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/tlog"
	"github.com/auditline/auditline/sinks/archive/tsa"
)

// cpEntry is one checkpoint as read.
type cpEntry struct {
	key  string
	seq  uint64
	data []byte
	sum  string
	info bucket.Info
	c    *manifest.Checkpoint // nil when it did not open
	// v2: the C2SP tlog-checkpoint note rebuilt from the statement, and
	// whether its signature verified.
	note    []byte
	noteOK  bool
	stamped bool // an RFC 3161 token chaining to Options.TSARoots
}

// logStep is one v2 checkpoint's append to the global log.
type logStep struct {
	cp      *cpEntry
	prev    *cpEntry  // the previous v2 checkpoint; nil for the first
	batches []*mentry // appended, in log order
	begin   uint64    // the log size before (the previous v2 checkpoint's)
	planErr string    // why the append cannot be recomputed ("" when it can)
}

// checkpointsPhase checks every checkpoint and plans the global log (phase 3).
func (v *verifier) checkpointsPhase(ctx context.Context) error {
	var keys []string
	for _, key := range v.inv.checkpoints {
		if _, err := v.o.Layout.ParseCheckpoint(key); err != nil {
			continue
		}
		if v.deleted(key) {
			v.rep.fail(Failure{Check: CheckCheckpoint, Key: key, Partition: -1, From: -1, To: -1, Detail: "deleted (a delete marker hides it)"})
			continue
		}
		keys = append(keys, key)
	}
	var prev *cpEntry
	last := map[int32]manifest.Head{}
	err := v.rd.Get(ctx, keys, func(ob chain.Object) error {
		seq, _ := v.o.Layout.ParseCheckpoint(ob.Key)
		fail := func(c Check, format string, args ...any) {
			v.rep.fail(Failure{Check: c, Key: ob.Key, Partition: -1, From: -1, To: -1, Detail: fmt.Sprintf(format, args...)})
		}
		if ob.Err != nil {
			fail(CheckCheckpoint, "cannot read: %v", ob.Err)
			return nil
		}
		v.checkRetention(ob.Key, -1, -1, -1, ob.Info)
		sum := sha256.Sum256(ob.Data)
		cur := &cpEntry{key: ob.Key, seq: seq, data: ob.Data, sum: hex.EncodeToString(sum[:]), info: ob.Info}
		v.cps = append(v.cps, cur)
		c, _, err := manifest.OpenCheckpoint(ob.Data, v.ring)
		if err != nil {
			var me *manifest.Error
			if errors.As(err, &me) && me.Signature {
				fail(CheckSignature, "%v", err)
			} else {
				fail(CheckCheckpoint, "%v", err)
			}
			prev = cur
			return nil
		}
		cur.c = c
		v.rep.Checkpoints++
		if c.Seq != seq {
			fail(CheckCheckpoint, "stored at seq %d but says seq %d", seq, c.Seq)
		}
		switch {
		case prev == nil && seq != 0:
			fail(CheckCheckpoint, "checkpoints 0..%d are missing", seq-1)
		case prev != nil && seq != prev.seq+1:
			fail(CheckCheckpoint, "checkpoint(s) %d..%d missing between %s and this one (dropped)", prev.seq+1, seq-1, prev.key)
		}
		if prev != nil && c.PrevSHA256 != prev.sum && seq == prev.seq+1 {
			fail(CheckCheckpoint, "prev_checkpoint_sha256 is not the SHA-256 of checkpoint %d", prev.seq)
		}
		if prev != nil && prev.c != nil && c.Time < prev.c.Time {
			fail(CheckCheckpoint, "time %s is before the previous checkpoint's %s", c.Time, prev.c.Time)
		}
		for _, h := range c.Heads {
			hf := func(format string, args ...any) {
				v.rep.fail(Failure{Check: CheckCheckpoint, Key: h.Manifest, Partition: h.Partition, From: -1, To: h.To,
					Detail: fmt.Sprintf("checkpoint %d: ", seq) + fmt.Sprintf(format, args...)})
			}
			e := v.byKey[h.Manifest]
			switch {
			case e == nil || e.Data == nil:
				hf("names head manifest seq %d of partition %d, which is missing (a sealed batch was deleted)", h.Seq, h.Partition)
			case e.SHA256 != h.SHA256:
				hf("names head manifest SHA-256 %s, the bucket holds %s (the manifest was replaced)", short(h.SHA256), short(e.SHA256))
			case e.M != nil && e.M.Seq != h.Seq:
				hf("names seq %d, the manifest says %d", h.Seq, e.M.Seq)
			}
			if lh, ok := last[h.Partition]; ok && (h.To < lh.To || h.Seq < lh.Seq) {
				hf("head of partition %d moved backwards from seq %d to %d", h.Partition, lh.Seq, h.Seq)
			}
			last[h.Partition] = h
		}
		if c.Type == manifest.CheckpointType {
			v.openLogNote(cur)
		}
		v.timestamp(ctx, cur)
		if c.Time > v.rep.LatestCheck {
			v.rep.LatestCheck = c.Time
		}
		prev = cur
		return nil
	})
	if err != nil {
		return err
	}
	// Batches sealed after the latest checkpoint are not covered yet.
	for _, e := range v.byKey {
		if e.M == nil {
			continue
		}
		if h, ok := last[e.M.Partition]; !ok || e.M.Seq > h.Seq {
			v.rep.Uncovered++
		}
	}
	v.planLog()
	return nil
}

// openLogNote rebuilds a v2 checkpoint's C2SP note and checks its signature.
func (v *verifier) openLogNote(cur *cpEntry) {
	note, err := cur.c.LogNote()
	if err == nil {
		var lc tlog.Checkpoint
		lc, _, err = tlog.Open(note, v.ring)
		if err == nil && (lc.Origin != cur.c.Origin || lc.Size != cur.c.LogSize || hex.EncodeToString(lc.Root) != cur.c.LogRoot) {
			err = errors.New("the note does not state the checkpoint's log")
		}
	}
	if err != nil {
		v.rep.fail(Failure{Check: CheckSignature, Key: cur.key, Partition: -1, From: -1, To: -1,
			Detail: "log_signature: the C2SP tlog-checkpoint of this checkpoint is not signed by a trusted key: " + err.Error()})
		return
	}
	cur.note, cur.noteOK = note, true
}

// planLog works out which batches each v2 checkpoint appends to the global
// log, and at which leaf index (manifest.Appended: the batches between the
// previous v2 checkpoint's heads and its own, in log order).
func (v *verifier) planLog() {
	var prev *cpEntry
	origin := ""
	for _, cur := range v.cps {
		if cur.c == nil || cur.c.Type != manifest.CheckpointType {
			continue
		}
		st := &logStep{cp: cur, prev: prev}
		v.steps = append(v.steps, st)
		if origin == "" {
			origin = cur.c.Origin
		} else if cur.c.Origin != origin {
			v.rep.fail(Failure{Check: CheckLog, Key: cur.key, Partition: -1, From: -1, To: -1,
				Detail: fmt.Sprintf("origin %q, earlier checkpoints name the log %q: a log cannot change its name", cur.c.Origin, origin)})
		}
		var prevHeads []manifest.Head
		if prev != nil {
			prevHeads, st.begin = prev.c.Heads, prev.c.LogSize
		}
		prev = cur
		spans, err := manifest.Appended(prevHeads, cur.c.Heads)
		if err != nil {
			st.planErr = err.Error()
			continue
		}
		idx := st.begin
		for _, sp := range spans {
			pc := v.chains[sp.Partition]
			for seq := sp.FromSeq; seq <= sp.ToSeq; seq++ {
				var e *mentry
				if pc != nil {
					e = pc.bySeq[seq]
				}
				if e == nil || e.M == nil {
					st.planErr = fmt.Sprintf("batch seq %d of partition %d is missing or does not verify", seq, sp.Partition)
					break
				}
				st.batches = append(st.batches, e)
				if e.logIndex < 0 {
					e.logIndex = int64(idx)
				}
				idx += uint64(e.M.Count)
			}
			if st.planErr != "" {
				break
			}
		}
		if st.planErr == "" && idx != cur.c.LogSize {
			v.rep.fail(Failure{Check: CheckLog, Key: cur.key, Partition: -1, From: -1, To: -1,
				Detail: fmt.Sprintf("log_size %d, but the previous log (%d leaves) and the %d batches it appends hold %d", cur.c.LogSize, st.begin, len(st.batches), idx)})
			st.planErr = "log_size does not match its batches"
		}
		if st.planErr != "" && st.planErr != "log_size does not match its batches" {
			v.rep.fail(Failure{Check: CheckLog, Key: cur.key, Partition: -1, From: -1, To: -1,
				Detail: "the global log cannot be recomputed at this checkpoint: " + st.planErr})
		}
	}
	if n := len(v.steps); n > 0 {
		last := v.steps[n-1].cp
		v.rep.LogSize, v.rep.LogRoot = last.c.LogSize, last.c.LogRoot
		if last.noteOK {
			v.rep.LatestNote, v.rep.LatestCheckpoint = string(last.note), last.data
		}
	}
}

// timestamp checks checkpoint cur's RFC 3161 token, if any.
func (v *verifier) timestamp(ctx context.Context, cur *cpEntry) {
	tkey := v.o.Layout.Timestamp(cur.seq)
	ob := v.inv.objects[tkey]
	if ob == nil && len(v.inv.checkpoints) > 0 && cur.key == v.inv.checkpoints[len(v.inv.checkpoints)-1] {
		// The newest checkpoint's token may have been stored after the
		// listing (the archiver asks the TSA once the checkpoint is written).
		if _, err := v.o.Bucket.Stat(ctx, tkey); err == nil {
			ob = &object{}
		}
	}
	if ob == nil || ob.deleted {
		if v.o.RequireTimestamps {
			v.rep.fail(Failure{Check: CheckTimestamp, Key: cur.key, Partition: -1, From: -1, To: -1, Detail: "no RFC 3161 time-stamp token"})
		}
		return
	}
	tok, info, err := v.o.Bucket.Get(ctx, tkey)
	if err != nil {
		v.rep.fail(Failure{Check: CheckTimestamp, Key: tkey, Partition: -1, From: -1, To: -1, Detail: "cannot read: " + err.Error()})
		return
	}
	v.checkRetention(tkey, -1, -1, -1, info)
	t, err := tsa.Verify(tok, cur.data, v.o.TSARoots)
	if err != nil {
		v.rep.fail(Failure{Check: CheckTimestamp, Key: tkey, Partition: -1, From: -1, To: -1, Detail: err.Error()})
		return
	}
	// The token proves the checkpoint existed at genTime; a genTime before the
	// checkpoint's own time (beyond clock skew) means the checkpoint lies.
	if t.Time.Before(cur.c.Time.Std().Add(-5 * time.Minute)) {
		v.rep.fail(Failure{Check: CheckTimestamp, Key: tkey, Partition: -1, From: -1, To: -1,
			Detail: fmt.Sprintf("token time %s is before the checkpoint's time %s", t.Time.UTC().Format(time.RFC3339), cur.c.Time)})
		return
	}
	v.rep.Timestamped++
	cur.stamped = t.Chained
}
