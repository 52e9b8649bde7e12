package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/tlog"
	"github.com/auditline/auditline/sinks/archive/witness"
)

// anchorsPhase establishes what holds the log outside the bucket (phase 6):
// the witnesses' cosignatures stored in the bucket, each witness's own view
// when it can be asked, and RFC 3161 time-stamps chaining to the TSA roots.
//
// What each anchor proves: a witness cosigns a checkpoint only if it extends
// every checkpoint it cosigned before, and remembers the largest one, so
// removing the newest batches together with the newest checkpoints (and
// their cosignatures) leaves the bucket behind what the witness has seen —
// asked online, it says so. A time-stamp proves a checkpoint existed at a
// time, so nothing sealed later can be passed off as older; it cannot show
// that newer checkpoints were removed.
func (v *verifier) anchorsPhase(ctx context.Context) error {
	bySeq := map[uint64]*logStep{}
	for _, st := range v.steps {
		bySeq[st.cp.seq] = st
	}
	byHash := map[uint32]*witness.Witness{}
	reports := map[string]*WitnessReport{}
	for i := range v.o.Witnesses {
		w := &v.o.Witnesses[i]
		byHash[w.Key.KeyHash()] = w
		v.rep.Witnesses = append(v.rep.Witnesses, WitnessReport{Name: w.Name})
	}
	for i := range v.rep.Witnesses {
		reports[v.rep.Witnesses[i].Name] = &v.rep.Witnesses[i]
	}
	cosigned := map[uint64]map[string]bool{} // checkpoint seq → witnesses
	mark := func(st *logStep, name string) {
		if cosigned[st.cp.seq] == nil {
			cosigned[st.cp.seq] = map[string]bool{}
		}
		if !cosigned[st.cp.seq][name] {
			cosigned[st.cp.seq][name] = true
			r := reports[name]
			r.Cosigned++
			r.LatestCosigned = max(r.LatestCosigned, st.cp.c.LogSize)
		}
	}

	// Cosignatures stored in the bucket.
	for _, key := range v.inv.cosigs {
		fail := func(format string, args ...any) {
			v.rep.fail(Failure{Check: CheckAnchor, Key: key, Partition: -1, From: -1, To: -1, Detail: fmt.Sprintf(format, args...)})
		}
		seq, hash, err := v.o.Layout.ParseCosignature(key)
		if err != nil {
			v.rep.warn(Failure{Check: CheckOrphan, Key: key, Partition: -1, From: -1, To: -1, Detail: "not a cosignature key"})
			continue
		}
		w := byHash[hash]
		if w == nil || v.deleted(key) {
			continue // a witness this audit does not trust: ignored (C2SP signed-note)
		}
		data, info, err := v.o.Bucket.Get(ctx, key)
		if err != nil {
			fail("cannot read: %v", err)
			continue
		}
		v.checkRetention(key, -1, -1, -1, info)
		st := bySeq[seq]
		if st == nil || !st.cp.noteOK {
			fail("cosigns checkpoint %d, which is not a verified v2 checkpoint in the bucket", seq)
			continue
		}
		n, err := note.Open(data, note.VerifierList(w.Key))
		if err != nil || len(n.Sigs) == 0 {
			fail("the cosignature of witness %s does not verify: %v", w.Name, err)
			continue
		}
		if lc, err := st.cp.c.LogCheckpoint(); err != nil || n.Text != lc.Text() {
			fail("witness %s cosigned another text than checkpoint %d's log (%d leaves)", w.Name, seq, st.cp.c.LogSize)
			continue
		}
		mark(st, w.Name)
	}

	// Each witness's own view, when it can be asked.
	asked := 0
	if len(v.steps) > 0 {
		latest := v.steps[len(v.steps)-1]
		cl := &witness.Client{HTTP: v.o.HTTP}
		for i := range v.o.Witnesses {
			w := v.o.Witnesses[i]
			if w.URL == "" || !latest.cp.noteOK {
				continue
			}
			r := reports[w.Name]
			if ok := v.askWitness(ctx, cl, w, r, latest, mark); ok {
				asked++
			}
		}
	}

	// What is anchored, and up to where.
	var kinds []string
	var anchored uint64
	var anchoredStep *logStep // the newest anchored checkpoint
	anchoredAny := false
	note := func(st *logStep) {
		if st != nil && (anchoredStep == nil || st.cp.c.LogSize > anchoredStep.cp.c.LogSize) {
			anchoredStep = st
		}
	}
	if len(v.o.Witnesses) > 0 {
		for _, st := range v.steps {
			if len(cosigned[st.cp.seq]) >= v.o.Quorum {
				anchored, anchoredAny = max(anchored, st.cp.c.LogSize), true
				note(st)
			}
		}
		if anchoredAny {
			kinds = append(kinds, "witnesses")
		}
	}
	if v.o.TSARoots != nil {
		stamped := false
		for _, c := range v.cps {
			if c.stamped {
				stamped = true
				if st := bySeq[c.seq]; st != nil {
					anchored, anchoredAny = max(anchored, st.cp.c.LogSize), true
					note(st)
				}
			}
		}
		if stamped {
			kinds = append(kinds, "timestamps")
			anchoredAny = true
		}
	}
	if len(kinds) > 0 {
		v.rep.Anchor = strings.Join(kinds, "+")
	}
	v.rep.AnchoredSize = anchored
	v.verdict(anchoredAny, asked, anchoredStep)
	return nil
}

// unanchored names, per partition, the offsets sealed after the newest
// anchored checkpoint's head (the whole chain when nothing is anchored).
func (v *verifier) unanchored(st *logStep) []Failure {
	heads := map[int32]int64{}
	if st != nil {
		for _, h := range st.cp.c.Heads {
			heads[h.Partition] = h.To
		}
	}
	var out []Failure
	for _, pc := range sortedChains(v.chains) {
		if len(pc.entries) == 0 {
			continue
		}
		from, ok := heads[pc.p]
		if !ok {
			from = pc.entries[0].M.From
		}
		to := pc.entries[len(pc.entries)-1].M.To
		if to > from {
			out = append(out, Failure{Check: CheckAnchor, Key: "anchor", Partition: pc.p, From: from, To: to})
		}
	}
	return out
}

// askWitness asks one witness how far it has seen the log and checks that
// the bucket holds that checkpoint, with the same root. It reports whether
// the witness answered.
//
// On a live archive the witness may move on while it is being asked (the
// archiver's cosigner submits every new checkpoint): a 409 naming a larger
// size than the one just confirmed is asked again, a few times.
func (v *verifier) askWitness(ctx context.Context, cl *witness.Client, w witness.Witness, r *WitnessReport, latest *logStep, mark func(*logStep, string)) bool {
	key := "witness " + w.Name
	fail := func(format string, args ...any) {
		v.rep.fail(Failure{Check: CheckAnchor, Key: key, Partition: -1, From: -1, To: -1, Detail: fmt.Sprintf(format, args...)})
	}
	n := latest.cp.c.LogSize
	for attempt := 1; ; attempt++ {
		seen, cosig, err := cl.Latest(ctx, w, latest.cp.note, n)
		if err != nil {
			r.Error = err.Error()
			v.rep.warn(Failure{Check: CheckAnchor, Key: key, Partition: -1, From: -1, To: -1, Detail: "could not be asked: " + err.Error()})
			return false
		}
		r.Online, r.Seen = true, seen
		if cosig != nil { // the witness had seen nothing of this log and cosigned the newest checkpoint now
			mark(latest, w.Name)
			return true
		}
		// The bucket's checkpoint of the size the witness has seen.
		var at *logStep
		var grown *cpEntry
		if seen > n {
			// The archive may have grown since it was listed (a live
			// archive): then the bucket now holds a checkpoint of that
			// size, chained to the newest one listed.
			var why string
			if grown, why = v.grownTo(ctx, latest.cp, seen); grown == nil {
				fail("the witness has cosigned a log of %d leaves; the newest checkpoint in the bucket (%s) has %d: leaves [%d, %d) — the newest batches and checkpoints — were removed, or the bucket was rolled back (%s)", seen, latest.cp.key, n, n, seen, why)
				return true
			}
		} else {
			for _, st := range v.steps {
				if st.cp.c.LogSize == seen && st.cp.noteOK {
					at = st
				}
			}
			if at == nil {
				fail("the witness has cosigned a checkpoint of %d leaves that the bucket does not hold (removed, or the log forked)", seen)
				return true
			}
			grown = at.cp
		}
		// Same size: the witness cosigns again only if the root is the one it saw.
		if _, err := cl.AddCheckpoint(ctx, w, seen, nil, grown.note); err != nil {
			var ce *witness.ConflictError
			var se *witness.StatusError
			switch {
			case errors.As(err, &ce) && ce.Size > seen && attempt < 5:
				continue // it cosigned a newer checkpoint meanwhile: ask again
			case errors.As(err, &ce), errors.As(err, &se) && (se.Code == 409 || se.Code == 422):
				fail("the witness saw another log of %d leaves than %s states: the log forked (%v)", seen, grown.key, err)
			default:
				r.Error = err.Error()
				v.rep.warn(Failure{Check: CheckAnchor, Key: key, Partition: -1, From: -1, To: -1, Detail: "could not confirm its root: " + err.Error()})
				return false
			}
			return true
		}
		switch {
		case at == nil:
			v.rep.warn(Failure{Check: CheckAnchor, Key: key, Partition: -1, From: -1, To: -1,
				Detail: fmt.Sprintf("the archive grew during this audit: the witness has cosigned %d leaves, held by %s (written after the bucket was listed, chained to %s, the root the witness saw); this audit covers the log up to %d leaves", seen, grown.key, latest.cp.key, n)})
		case seen < n:
			mark(at, w.Name)
			v.rep.warn(Failure{Check: CheckAnchor, Key: key, Partition: -1, From: -1, To: -1,
				Detail: fmt.Sprintf("the witness has seen %d of %d leaves (up to %s); the archiver's cosigner catches up", seen, n, at.cp.key)})
		default:
			mark(at, w.Name)
		}
		return true
	}
}

// verdict turns the anchors into warnings, or failures under RequireAnchor.
func (v *verifier) verdict(anchoredAny bool, asked int, anchoredStep *logStep) {
	report := func(detail string) {
		f := Failure{Check: CheckAnchor, Key: "anchor", Partition: -1, From: -1, To: -1, Detail: detail}
		if v.o.RequireAnchor {
			v.rep.fail(f)
		} else {
			v.rep.warn(f)
		}
	}
	// Name the sealed offsets that nothing outside the bucket vouches for.
	ranges := func(detail string, fail bool) {
		for _, f := range v.unanchored(anchoredStep) {
			f.Detail = detail
			if fail && v.o.RequireAnchor {
				v.rep.fail(f)
			} else {
				v.rep.warn(f)
			}
		}
	}
	n := v.rep.LogSize
	switch {
	case len(v.o.Witnesses) == 0 && v.o.TSARoots == nil:
		report("NO ANCHOR outside the bucket (no witness keys, no TSA root given): the newest batches could be removed without detection")
		return
	case !anchoredAny:
		report("NOTHING IS ANCHORED outside the bucket: no checkpoint carries a quorum of witness cosignatures or a time-stamp chaining to the TSA roots; the newest batches could be removed without detection")
		ranges("sealed, but no anchored checkpoint covers these offsets (were the checkpoints removed?)", true)
		return
	}
	if online := 0; len(v.o.Witnesses) > 0 {
		for _, w := range v.o.Witnesses {
			if w.URL != "" {
				online++
			}
		}
		switch {
		case online > 0 && asked < v.o.Quorum:
			report(fmt.Sprintf("only %d of the quorum of %d witnesses could be asked for their view of the log: a removal of the newest batches together with their checkpoints cannot be excluded", asked, v.o.Quorum))
		case online == 0:
			v.rep.warn(Failure{Check: CheckAnchor, Key: "anchor", Partition: -1, From: -1, To: -1,
				Detail: "witnesses were not asked (no URL): only the cosignatures stored in the bucket were checked, which a removal of the newest checkpoints takes along; keep the newest checkpoint note and pass it to --since next time"})
		}
	}
	if v.rep.AnchoredSize < n {
		v.rep.warn(Failure{Check: CheckAnchor, Key: "anchor", Partition: -1, From: -1, To: -1,
			Detail: fmt.Sprintf("log leaves [%d, %d) are not anchored yet (no quorum of cosignatures or time-stamp beyond %d leaves): until they are, the newest batches could be removed without detection", v.rep.AnchoredSize, n, v.rep.AnchoredSize)})
		ranges("not anchored yet: sealed after the newest anchored checkpoint", false)
	}
	if v.rep.Uncovered > 0 {
		v.rep.warn(Failure{Check: CheckAnchor, Key: "anchor", Partition: -1, From: -1, To: -1,
			Detail: fmt.Sprintf("%d batch(es) were sealed after the newest checkpoint: they are in no checkpoint yet", v.rep.Uncovered)})
	}
}

// grownTo reads the checkpoints written after from (the newest one listed)
// and returns the one of the given log size, provided each is signed by a
// trusted key, of the same log, hash-chained to the previous one, and its
// heads and log only grow. Otherwise it says why not.
func (v *verifier) grownTo(ctx context.Context, from *cpEntry, size uint64) (*cpEntry, string) {
	lay := v.o.Layout
	var keys []string
	if err := v.o.Bucket.List(ctx, lay.CheckpointsPrefix(), from.key, func(in bucket.Info) error {
		if _, err := lay.ParseCheckpoint(in.Key); err == nil {
			keys = append(keys, in.Key)
		}
		return nil
	}); err != nil {
		return nil, "listing the newer checkpoints: " + err.Error()
	}
	prev := from
	for _, key := range keys {
		data, _, err := v.o.Bucket.Get(ctx, key)
		if err != nil {
			return nil, key + ": " + err.Error()
		}
		c, _, err := manifest.OpenCheckpoint(data, v.ring)
		if err != nil {
			return nil, key + ": " + err.Error()
		}
		sum := sha256.Sum256(data)
		cur := &cpEntry{key: key, seq: c.Seq, data: data, sum: hex.EncodeToString(sum[:]), c: c}
		switch {
		case c.Type != manifest.CheckpointType || c.Origin != prev.c.Origin:
			return nil, key + " is not a checkpoint of this log"
		case c.Seq != prev.seq+1 || c.PrevSHA256 != prev.sum:
			return nil, fmt.Sprintf("%s is not chained to checkpoint %d", key, prev.seq)
		case c.LogSize < prev.c.LogSize || headsBack(prev.c.Heads, c.Heads):
			return nil, key + " shrinks the log"
		}
		if c.LogSize > size {
			break
		}
		if c.LogSize == size {
			if note, err := c.LogNote(); err == nil {
				if _, _, err := tlog.Open(note, v.ring); err == nil {
					cur.note, cur.noteOK = note, true
					return cur, ""
				}
			}
			return nil, key + ": its log signature does not verify"
		}
		prev = cur
	}
	return nil, fmt.Sprintf("no checkpoint of %d leaves in the bucket", size)
}

// headsBack reports whether a partition head of next is behind prev's.
func headsBack(prev, next []manifest.Head) bool {
	at := map[int32]manifest.Head{}
	for _, h := range next {
		at[h.Partition] = h
	}
	for _, h := range prev {
		if n, ok := at[h.Partition]; !ok || n.Seq < h.Seq || n.To < h.To {
			return true
		}
	}
	return false
}
