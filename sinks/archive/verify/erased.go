package verify

import (
	"context"
	"sort"
	"sync"

	"github.com/auditline/auditline/privacy/envelope"
	"github.com/auditline/auditline/sinks/archive/batch"
)

// ErasedBatch counts the sealed raw events of one batch of a raw log whose
// data subject's key was erased (Options.ErasedKeys): they verify (their
// sealed bytes are unchanged) and can no longer be decrypted.
type ErasedBatch struct {
	KeyID     string  `json:"key_id"`
	Partition int32   `json:"partition"`
	ObjectKey string  `json:"object_key"`
	Offsets   []int64 `json:"offsets"`
}

// erased is the rowCheck behind Report.Erased, for raw logs only.
type erased struct {
	keys map[string]bool
	mu   sync.Mutex
	out  []ErasedBatch
	rows map[*mentry]map[string][]int // rows under an erased key, per batch, from records to batch
}

// records finds, during the leaf pass (recordCheck), the rows sealed
// under an erased key; batch turns them into offsets once the batch
// verified.
func (x *erased) records(e *mentry) (func(int, []byte), func()) {
	byKey := map[string][]int{}
	visit := func(i int, v []byte) {
		if s, err := envelope.Parse(v); err == nil && x.keys[s.KeyID] {
			byKey[s.KeyID] = append(byKey[s.KeyID], i)
		}
	}
	commit := func() {
		if len(byKey) == 0 {
			return
		}
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.rows == nil {
			x.rows = map[*mentry]map[string][]int{}
		}
		x.rows[e] = byKey
	}
	return visit, commit
}

func (x *erased) batch(ctx context.Context, e *mentry, f *batch.File) error {
	x.mu.Lock()
	byKey := x.rows[e]
	delete(x.rows, e)
	x.mu.Unlock()
	if len(byKey) == 0 {
		return nil
	}
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, rows := range byKey {
		o := make([]int64, 0, len(rows))
		for _, i := range rows {
			if i < len(offs) {
				o = append(o, offs[i])
			}
		}
		x.out = append(x.out, ErasedBatch{KeyID: k, Partition: e.M.Partition, ObjectKey: e.M.ObjectKey, Offsets: o})
	}
	return nil
}

func (x *erased) finish(rep *Report) {
	sort.Slice(x.out, func(i, j int) bool {
		a, b := x.out[i], x.out[j]
		if a.KeyID != b.KeyID {
			return a.KeyID < b.KeyID
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offsets[0] < b.Offsets[0]
	})
	rep.Erased = x.out
}
