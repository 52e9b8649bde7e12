package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/auditline/auditline/privacy/rules"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
)

// CheckRules: a sealed record names enrich rules (rules_hash) whose sealed
// object is missing from the archive, or holds other bytes than its hash.
const CheckRules Check = "rules"

// RulesReport is one rule set the verified records were built under.
type RulesReport struct {
	Hash    string `json:"rules_hash"`
	Key     string `json:"key"`
	Records int64  `json:"records"` // record versions verified that carry it
	Status  string `json:"status"`  // "sealed", "missing", "altered", "unreadable: …"
}

// rulesRefs is the rowCheck that collects, from each verified record's
// canonical bytes (what the leaves are computed from), the rules hash it
// carries; rulesPhase then checks that each is sealed.
type rulesRefs struct {
	mu   sync.Mutex
	refs map[string]*ruleRef
}

type ruleRef struct {
	records int64
	p       int32 // where a record carrying it was first seen
	batch   string
	from    int64
}

func newRulesRefs() *rulesRefs { return &rulesRefs{refs: map[string]*ruleRef{}} }

// records counts the rules hashes of a batch's records during the leaf
// pass (recordCheck) and adds them once the batch verified.
func (r *rulesRefs) records(e *mentry) (func(int, []byte), func()) {
	local := map[string]int64{}
	visit := func(_ int, rec []byte) {
		if h := rules.HashOf(rec); h != "" {
			local[h]++
		}
	}
	commit := func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for h, n := range local {
			ref := r.refs[h]
			if ref == nil {
				ref = &ruleRef{p: -1, from: -1}
				if e.M != nil {
					ref.p, ref.batch, ref.from = e.M.Partition, e.M.ObjectKey, e.M.From
				}
				r.refs[h] = ref
			}
			ref.records += n
		}
	}
	return visit, commit
}

// batch: everything is read in records.
func (r *rulesRefs) batch(context.Context, *mentry, *batch.File) error { return nil }

func (r *rulesRefs) finish(*Report) {}

// rulesPhase reads the sealed rules object of every rules hash the verified
// records carry (privacy/rules: <prefix>rules/<hex>.json, content-addressed)
// and checks its bytes hash to its name and its retention, so that an
// auditor can read which rules decided each record's tier and sample.
func (v *verifier) rulesPhase(ctx context.Context) error {
	var refs *rulesRefs
	for _, rc := range v.rowCheck {
		if r, ok := rc.(*rulesRefs); ok {
			refs = r
		}
	}
	hashes := make([]string, 0, len(refs.refs))
	for h := range refs.refs {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		ref := refs.refs[h]
		where := fmt.Sprintf("%d sealed record version(s) carry rules_hash %s (first in %s)", ref.records, h, ref.batch)
		rr := RulesReport{Hash: h, Records: ref.records}
		key, err := rules.Key(v.o.Layout.Prefix, h)
		if err != nil {
			rr.Status = "malformed hash"
			v.rep.fail(Failure{Check: CheckRules, Key: ref.batch, Partition: ref.p, From: ref.from, To: -1, Detail: fmt.Sprintf("%s: %v", where, err)})
			v.rep.Rules = append(v.rep.Rules, rr)
			continue
		}
		rr.Key = key
		data, in, err := v.o.Bucket.Get(ctx, key)
		switch {
		case errors.Is(err, bucket.ErrNotFound):
			rr.Status = "missing"
			v.rep.fail(Failure{Check: CheckRules, Key: key, Partition: -1, From: -1, To: -1,
				Detail: "rules object missing: " + where + "; without it nobody can tell which rules decided their tier, sample and near-miss flags"})
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rr.Status = "unreadable: " + err.Error()
			v.rep.fail(Failure{Check: CheckRules, Key: key, Partition: -1, From: -1, To: -1, Detail: fmt.Sprintf("cannot read the rules object: %v; %s", err, where)})
		default:
			if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != h {
				rr.Status = "altered"
				v.rep.fail(Failure{Check: CheckRules, Key: key, Partition: -1, From: -1, To: -1,
					Detail: fmt.Sprintf("rules object altered: its bytes have sha256:%x, not the %s its name and the records say (%s)", sum, h, where)})
			} else {
				rr.Status = "sealed"
			}
			v.checkRetention(key, -1, -1, -1, in)
		}
		v.rep.Rules = append(v.rep.Rules, rr)
	}
	return nil
}

// writeRules prints one line per rule set for WriteText.
func (r *Report) writeRules(w io.Writer) {
	for _, rr := range r.Rules {
		fmt.Fprintf(w, "rules     %s: %s (%d record versions)\n", rr.Hash, rr.Status, rr.Records)
	}
}
