package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/auditline/auditline/sinks/archive/chain"
	"github.com/auditline/auditline/sinks/archive/manifest"
)

// mentry is one manifest as read and checked.
type mentry struct {
	chain.Entry
	unverifiedObject string // object_key read from a manifest that did not open (not an orphan then)
	// Set by checkpoints.go when a v2 checkpoint appends the batch to the
	// global log: the index of its first leaf (-1: not in the log yet).
	logIndex int64
	job      *batchJob // set by batches.go when the batch is read
}

// partChain is one partition's manifests in chain order (only those that
// opened; seq → entry for the log plan).
type partChain struct {
	p       int32
	entries []*mentry
	bySeq   map[uint64]*mentry
}

// chainsPhase reads every manifest and checks each partition's chain (phase 2).
func (v *verifier) chainsPhase(ctx context.Context) error {
	v.chains, v.byKey = map[int32]*partChain{}, map[string]*mentry{}
	lay := v.o.Layout
	var keys []string
	for _, p := range chain.Partitions(v.inv.manifests) {
		for _, key := range v.inv.manifests[p] {
			if v.deleted(key) {
				_, from, _ := lay.ParseManifest(key)
				v.rep.fail(Failure{Check: CheckChain, Key: key, Partition: p, From: from, To: -1,
					Detail: "the manifest was deleted (a delete marker hides it; its locked version still exists)"})
				continue
			}
			keys = append(keys, key)
		}
	}
	var prev *mentry // the previous manifest of the same partition
	return v.rd.Open(ctx, keys, func(ce chain.Entry) error {
		e := &mentry{Entry: ce, logIndex: -1}
		p, from := ce.Partition, ce.From
		pc := v.chains[p]
		if pc == nil {
			pc = &partChain{p: p, bySeq: map[uint64]*mentry{}}
			v.chains[p] = pc
			v.rep.Partitions = append(v.rep.Partitions, PartitionReport{Partition: p, From: -1, To: -1})
			prev = nil
		}
		pr := &v.rep.Partitions[len(v.rep.Partitions)-1]
		v.byKey[ce.Key] = e
		if ce.Data == nil {
			v.rep.fail(Failure{Check: CheckChain, Key: ce.Key, Partition: p, From: from, To: -1, Detail: "cannot read: " + ce.Err.Error()})
			return nil
		}
		if ce.Err != nil {
			check := CheckManifest
			var me *manifest.Error
			if errors.As(ce.Err, &me) && me.Signature {
				check = CheckSignature
			}
			to, obj := unverified(ce.Data)
			e.unverifiedObject = obj
			v.rep.fail(Failure{Check: check, Key: ce.Key, Partition: p, From: from, To: to, Detail: ce.Err.Error()})
			prev = e // keep the hash link: the next manifest must still point at these bytes
			return nil
		}
		m := ce.M
		pr.Batches++
		if pr.From < 0 {
			pr.From = m.From
		}
		pr.To = m.To
		pc.entries = append(pc.entries, e)
		if _, dup := pc.bySeq[m.Seq]; !dup {
			pc.bySeq[m.Seq] = e
		}
		if m.Partition != p || m.From != from {
			v.rep.fail(Failure{Check: CheckChain, Key: ce.Key, Partition: p, From: from, To: m.To,
				Detail: fmt.Sprintf("the manifest stored at this slot describes partition %d offsets [%d, %d): batches were moved or reordered", m.Partition, m.From, m.To)})
		}
		if m.ObjectKey != v.o.Layout.Batch(m.Partition, m.From, m.To) {
			v.rep.fail(Failure{Check: CheckManifest, Key: ce.Key, Partition: p, From: m.From, To: m.To,
				Detail: fmt.Sprintf("object_key %s is not the layout's key for this range", m.ObjectKey)})
		}
		v.checkRetention(ce.Key, p, m.From, m.To, ce.Info)
		switch {
		case prev == nil && m.Seq != 0:
			v.rep.fail(Failure{Check: CheckChain, Key: ce.Key, Partition: p, From: m.From, To: m.To,
				Detail: fmt.Sprintf("the chain starts at seq %d: batches seq 0..%d (offsets before %d) are missing", m.Seq, m.Seq-1, m.From)})
		case prev != nil && prev.M != nil:
			pm := prev.M
			if m.Seq != pm.Seq+1 {
				if m.Seq > pm.Seq+1 {
					v.rep.fail(Failure{Check: CheckChain, Key: ce.Key, Partition: p, From: pm.To, To: m.From,
						Detail: fmt.Sprintf("gap: seq %d follows seq %d; batch(es) seq %d..%d are missing (deleted?)", m.Seq, pm.Seq, pm.Seq+1, m.Seq-1)})
				} else {
					v.rep.fail(Failure{Check: CheckChain, Key: ce.Key, Partition: p, From: m.From, To: m.To,
						Detail: fmt.Sprintf("out of order: seq %d follows seq %d", m.Seq, pm.Seq)})
				}
			} else if m.From != pm.To {
				v.rep.fail(Failure{Check: CheckChain, Key: ce.Key, Partition: p, From: pm.To, To: m.From,
					Detail: fmt.Sprintf("offsets [%d, %d) are not covered: seq %d ends at %d, seq %d starts at %d", min(pm.To, m.From), max(pm.To, m.From), pm.Seq, pm.To, m.Seq, m.From)})
			}
		}
		if prev != nil && m.PrevSHA256 != prev.SHA256 {
			v.rep.fail(Failure{Check: CheckChain, Key: ce.Key, Partition: p, From: m.From, To: m.To,
				Detail: fmt.Sprintf("prev_manifest_sha256 %s is not the SHA-256 of the previous manifest %s (%s): a batch was removed, replaced or reordered", short(m.PrevSHA256), prev.Key, short(prev.SHA256))})
		}
		v.rep.Batches++
		prev = e
		return nil
	})
}

// unverified reads "to" and "object_key" from a manifest body without
// trusting them, to name the range of a manifest that failed to verify.
func unverified(data []byte) (to int64, objectKey string) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	var x struct {
		To        *int64 `json:"to"`
		ObjectKey string `json:"object_key"`
	}
	if json.Unmarshal(line, &x) != nil || x.To == nil {
		return -1, ""
	}
	return *x.To, x.ObjectKey
}
