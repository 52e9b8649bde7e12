package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
	"github.com/auditline/auditline/sinks/archive/tlog"
)

// batchJob is one batch object to read.
type batchJob struct {
	e    *mentry
	full bool // verify the whole batch; else read its leaf column only (for the log)
	// Results.
	records int64         // leaves verified (full jobs)
	seg     *tlog.Segment // the batch's leaves at its log position (when in the log)
	err     string        // why seg is missing
}

// rowCheck is a check over the rows of every fully verified batch (duplicate
// record versions today; per-emitter sequence coverage and erasure can be
// added the same way). batch runs concurrently for different batches.
type rowCheck interface {
	batch(ctx context.Context, e *mentry, f *batch.File) error
	finish(rep *Report)
}

// recordCheck is a rowCheck that reads each record's canonical bytes. It
// gets them during the leaf pass (checkFile), so that archive_canonical — by
// far the largest column — is decompressed once and never held whole; a
// rowCheck that read it with batch.File would decompress it again.
type recordCheck interface {
	rowCheck
	// records returns the visitor of one batch's records, called in row
	// order from one goroutine with bytes valid only during the call, and
	// commit, called only when the batch's leaves, count, offsets, time
	// range and root all matched its manifest (before batch).
	records(e *mentry) (visit func(i int, rec []byte), commit func())
}

// batchesPhase reads every batch object the report needs (phase 4): those
// within --from/--to and --partition in full, and the leaf column of the
// other batches of the global log that the log phase recomputes.
func (v *verifier) batchesPhase(ctx context.Context) error {
	if err := v.parseSince(); err != nil {
		return err
	}
	want := map[int32]bool{}
	for _, p := range v.o.Partitions {
		want[p] = true
	}
	windowed := len(want) > 0 || !v.o.From.IsZero() || !v.o.To.IsZero()
	for _, pc := range sortedChains(v.chains) {
		for _, e := range pc.entries {
			if (len(want) > 0 && !want[pc.p]) || !v.inWindow(e.M) {
				continue
			}
			e.job = &batchJob{e: e, full: true}
			v.jobs = append(v.jobs, e.job)
		}
	}
	// The log phase recomputes a step when it has a batch in the window (or
	// there is no window); the other batches of such a step, and every batch
	// after a checkpoint kept for --since, are read for their leaves only.
	needLeaves := func(e *mentry) {
		if e.job == nil {
			e.job = &batchJob{e: e}
			v.jobs = append(v.jobs, e.job)
		}
	}
	minSince := ^uint64(0)
	for _, s := range v.since {
		minSince = min(minSince, s.size)
	}
	for _, st := range v.steps {
		if st.planErr != "" {
			continue
		}
		inWindow := !windowed
		for _, e := range st.batches {
			inWindow = inWindow || (e.job != nil && e.job.full)
		}
		for _, e := range st.batches {
			if inWindow || uint64(e.logIndex) >= minSince || uint64(e.logIndex)+uint64(e.M.Count) > minSince {
				needLeaves(e)
			}
		}
	}
	// The SHA-256 of every batch a signed manifest vouches for: an object
	// whose bytes are none of them is reported altered and never parsed.
	sealed := map[string]bool{}
	for _, e := range v.byKey {
		if e.M != nil {
			sealed[e.M.ObjectSHA256] = true
		}
	}
	ch := make(chan *batchJob)
	var wg sync.WaitGroup
	for range v.o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if j.full {
					v.batch(ctx, j, sealed)
				} else {
					v.leaves(ctx, j)
				}
			}
		}()
	}
	for _, j := range v.jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
		}
	}
	close(ch)
	wg.Wait()
	for i := range v.rep.Partitions {
		pr := &v.rep.Partitions[i]
		for _, j := range v.jobs {
			if j.full && j.e.M.Partition == pr.Partition && j.records > 0 {
				pr.Checked++
				pr.Records += j.records
			}
		}
		v.rep.Checked += pr.Checked
		v.rep.Records += pr.Records
	}
	return nil
}

func (v *verifier) inWindow(m *manifest.Manifest) bool {
	if !v.o.From.IsZero() && m.MaxTime.Std().Before(v.o.From) {
		return false
	}
	if !v.o.To.IsZero() && !m.MinTime.Std().Before(v.o.To) {
		return false
	}
	return true
}

// leaves reads the leaf column of a batch outside the window for the log.
func (v *verifier) leaves(ctx context.Context, j *batchJob) {
	m := j.e.M
	ls, err := v.rd.Leaves(ctx, m)
	if err != nil {
		j.err = err.Error()
		v.rep.fail(Failure{Check: CheckRecords, Key: m.ObjectKey, Partition: m.Partition, From: m.From, To: m.To, Detail: "reading its leaves for the global log: " + err.Error()})
		return
	}
	j.seg, err = segmentOf(j.e.logIndex, ls)
	if err != nil {
		j.err = err.Error()
	}
}

func segmentOf(begin int64, leaves [][]byte) (*tlog.Segment, error) {
	if begin < 0 {
		return nil, nil
	}
	seg := tlog.NewSegment(uint64(begin))
	for _, l := range leaves {
		if err := seg.Append(l); err != nil {
			return nil, err
		}
	}
	return seg, nil
}

// batch verifies one batch object against its manifest.
func (v *verifier) batch(ctx context.Context, j *batchJob, sealed map[string]bool) {
	m := j.e.M
	key, p, from, to := m.ObjectKey, m.Partition, m.From, m.To
	fail := func(c Check, format string, args ...any) {
		v.rep.fail(Failure{Check: c, Key: key, Partition: p, From: from, To: to, Detail: fmt.Sprintf(format, args...)})
		j.err = string(c)
	}
	if ob := v.inv.objects[key]; ob == nil {
		fail(CheckObject, "missing: the batch object was deleted")
		return
	} else if ob.deleted {
		fail(CheckObject, "deleted: a delete marker hides the object (its locked version still exists)")
		return
	}
	data, info, err := v.o.Bucket.Get(ctx, key)
	if err != nil {
		fail(CheckObject, "cannot read: %v", err)
		return
	}
	v.checkRetention(key, p, from, to, info)
	v.rep.mu.Lock()
	v.rep.Bytes += int64(len(data))
	v.rep.mu.Unlock()
	sum := sha256.Sum256(data)
	if int64(len(data)) != m.ObjectSize || hex.EncodeToString(sum[:]) != m.ObjectSHA256 {
		fail(CheckObject, "checksum mismatch: %d bytes with SHA-256 %s, the signed manifest says %d bytes with SHA-256 %s (altered)",
			len(data), short(hex.EncodeToString(sum[:])), m.ObjectSize, short(m.ObjectSHA256))
		// Go on when the bytes are another sealed batch (swapped objects):
		// the leaves tell whether records changed or moved. Bytes no signed
		// manifest vouches for are not parsed: a few altered footer bytes
		// make the Parquet reader (arrow-go's Arrow schema decoding) try to
		// allocate hundreds of GB — a fatal out-of-memory that would end
		// verify without a report (sinks/archive/testdata/arrow-schema-oom.parquet).
		if !sealed[hex.EncodeToString(sum[:])] {
			return
		}
	}
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		fail(CheckRecords, "cannot read the Parquet file: %v", err)
		return
	}
	defer f.Close()
	var visits []func(int, []byte)
	var commits []func()
	for _, rc := range v.rowCheck {
		if r, ok := rc.(recordCheck); ok {
			visit, commit := r.records(j.e)
			visits, commits = append(visits, visit), append(commits, commit)
		}
	}
	leaves, err := checkFile(ctx, f, m, func(i int, rec []byte) {
		for _, visit := range visits {
			visit(i, rec)
		}
	})
	if err != nil {
		var re *RecordsError
		if errors.As(err, &re) {
			fail(re.Check, "%s", re.Detail)
		} else {
			fail(CheckRecords, "cannot read the Parquet file: %v", err)
		}
		return
	}
	j.records = int64(len(leaves))
	if j.seg, err = segmentOf(j.e.logIndex, leaves); err != nil {
		j.err = err.Error()
	}
	for _, commit := range commits {
		commit()
	}
	for _, rc := range v.rowCheck {
		if err := rc.batch(ctx, j.e, f); err != nil {
			fail(CheckRecords, "reading columns: %v", err)
		}
	}
}

// RecordsError is a mismatch between a batch file's records and its manifest.
type RecordsError struct {
	Check  Check
	Detail string
}

func (e *RecordsError) Error() string { return string(e.Check) + ": " + e.Detail }

// CheckBatch recomputes a batch file's leaves from its records under the
// manifest's leaf rule and checks them, the offsets, the count, the time
// range and the root against the manifest. It returns the leaves and their
// number.
func CheckBatch(ctx context.Context, data []byte, m *manifest.Manifest) ([][]byte, int64, error) {
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	leaves, err := checkFile(ctx, f, m, nil)
	if err != nil {
		return nil, 0, err
	}
	return leaves, int64(len(leaves)), nil
}

// LeafOf recomputes the leaf of a record under a manifest's leaf rule.
func LeafOf(m *manifest.Manifest, offset int64, ts record.Time, rec []byte) ([merkletree.Size]byte, error) {
	switch m.Rule() {
	case merkletree.LeafRuleV1:
		return merkletree.LeafHash(rec), nil
	case merkletree.LeafRuleV2:
		return merkletree.LeafV2(m.Topic, m.Partition, offset, int64(ts), rec), nil
	}
	return [merkletree.Size]byte{}, fmt.Errorf("unknown leaf rule %q", m.Rule())
}

// leafHasher computes the leaves of one batch under its manifest's rule
// with one hash state and one header buffer (LeafOf's result, without an
// allocation per leaf).
type leafHasher struct {
	m    *manifest.Manifest
	rule string
	h    hash.Hash
	hdr  []byte
}

var leafPrefix = []byte{rfc6962.RFC6962LeafHashPrefix}

func newLeafHasher(m *manifest.Manifest) (*leafHasher, error) {
	rule := m.Rule()
	if rule != merkletree.LeafRuleV1 && rule != merkletree.LeafRuleV2 {
		return nil, fmt.Errorf("unknown leaf rule %q", rule)
	}
	return &leafHasher{m: m, rule: rule, h: sha256.New(), hdr: make([]byte, 0, 128)}, nil
}

// leaf writes the leaf of a record into dst (Size bytes).
func (l *leafHasher) leaf(dst []byte, offset int64, ts record.Time, rec []byte) {
	l.h.Reset()
	if l.rule == merkletree.LeafRuleV1 {
		l.h.Write(leafPrefix)
	} else {
		l.hdr = merkletree.AppendLeafV2Header(l.hdr[:0], l.m.Topic, l.m.Partition, offset, int64(ts))
		l.h.Write(l.hdr)
	}
	l.h.Write(rec)
	l.h.Sum(dst[:0])
}

// canonicalChunk is how many records of archive_canonical are decompressed
// at a time (~3 MB of realistic records: the next chunk is decoded while the
// current one is hashed, and both stay in cache).
const canonicalChunk = 1024

// checkFile recomputes and checks a batch's leaves (see CheckBatch); visit,
// when not nil, is called with each record's canonical bytes during the one
// pass over them.
func checkFile(ctx context.Context, f *batch.File, m *manifest.Manifest, visit func(i int, rec []byte)) ([][]byte, error) {
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return nil, err
	}
	times, err := f.Times(ctx, batch.ColTimestamp)
	if err != nil {
		return nil, err
	}
	if int64(len(offs)) != m.Count {
		return nil, &RecordsError{CheckRecords, fmt.Sprintf("%d records, the signed manifest says %d", len(offs), m.Count)}
	}
	lh, err := newLeafHasher(m)
	if err != nil {
		return nil, &RecordsError{CheckRecords, err.Error()}
	}
	leaves := make([][]byte, len(offs))
	flat := make([]byte, len(offs)*merkletree.Size)
	err = f.StreamBinaries(ctx, batch.ColCanonical, canonicalChunk, func(i int, rec []byte) error {
		if i >= len(offs) {
			return errors.New("more records than offsets")
		}
		leaves[i] = flat[i*merkletree.Size : (i+1)*merkletree.Size : (i+1)*merkletree.Size]
		lh.leaf(leaves[i], offs[i], times[i], rec)
		if visit != nil {
			visit(i, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = f.VisitBinaries(ctx, batch.ColLeaf, func(i int, stored []byte) error {
		if i >= len(leaves) || leaves[i] == nil {
			return errors.New("more leaves than records")
		}
		if !bytes.Equal(stored, leaves[i]) {
			return &RecordsError{CheckRecords, fmt.Sprintf("record at offset %d: stored leaf hash is not the %s leaf of its record", offs[i], m.Rule())}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	minT, maxT := record.Time(0), record.Time(0)
	for i := range offs {
		if offs[i] < m.From || offs[i] >= m.To {
			return nil, &RecordsError{CheckRecords, fmt.Sprintf("record at offset %d lies outside the manifest's offsets [%d, %d): the object holds another batch (reordered?)", offs[i], m.From, m.To)}
		}
		if i > 0 && offs[i] <= offs[i-1] {
			return nil, &RecordsError{CheckRecords, fmt.Sprintf("offsets not strictly increasing at %d after %d", offs[i], offs[i-1])}
		}
		if i == 0 || times[i] < minT {
			minT = times[i]
		}
		if i == 0 || times[i] > maxT {
			maxT = times[i]
		}
	}
	root, err := merkletree.Root(leaves)
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(root) != m.MerkleRoot {
		return nil, &RecordsError{CheckRoot, fmt.Sprintf("recomputed RFC 6962 root %s, the signed manifest says %s", short(hex.EncodeToString(root)), short(m.MerkleRoot))}
	}
	if minT != m.MinTime || maxT != m.MaxTime {
		return nil, &RecordsError{CheckRecords, fmt.Sprintf("time range [%s, %s], the signed manifest says [%s, %s]", minT, maxT, m.MinTime, m.MaxTime)}
	}
	return leaves, nil
}

func sortedChains(m map[int32]*partChain) []*partChain {
	out := make([]*partChain, 0, len(m))
	for _, pc := range m {
		out = append(out, pc)
	}
	for i := 1; i < len(out); i++ {
		for k := i; k > 0 && out[k].p < out[k-1].p; k-- {
			out[k], out[k-1] = out[k-1], out[k]
		}
	}
	return out
}
