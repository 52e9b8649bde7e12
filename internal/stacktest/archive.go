package stacktest

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
)

// IDVersion is one record version.
type IDVersion struct {
	ID string
	V  uint32
}

// Archive reads an archive the way an auditor would: the signed manifests
// of each partition's chain (signatures checked against Ring), then the
// batch each names. Update reads only manifests it has not read before.
type Archive struct {
	B      *bucket.Bucket
	Lay    layout.Layout
	Ring   *keys.Ring
	Leaves map[IDVersion]int // leaves per record version
	Offset map[int32][]int64 // the Kafka offsets sealed, per partition, in manifest order
	Heads  map[int32]int64   // per partition, the To of the newest manifest read
	seen   map[string]bool
}

// NewArchive returns a reader of the archive under prefix of b.
func NewArchive(b *bucket.Bucket, prefix string, ring *keys.Ring) *Archive {
	return &Archive{B: b, Lay: layout.New(prefix), Ring: ring, Leaves: map[IDVersion]int{}, Offset: map[int32][]int64{},
		Heads: map[int32]int64{}, seen: map[string]bool{}}
}

// Update reads the manifests sealed since the last call, and their batches.
func (a *Archive) Update(ctx context.Context) error {
	var mkeys []string
	err := a.B.List(ctx, a.Lay.ManifestsPrefix(), "", func(in bucket.Info) error {
		if strings.HasSuffix(in.Key, ".manifest") && !a.seen[in.Key] {
			mkeys = append(mkeys, in.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(mkeys)
	for _, k := range mkeys {
		data, _, err := a.B.Get(ctx, k)
		if err != nil {
			return err
		}
		m, _, err := manifest.Open(data, a.Ring)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", k, err)
		}
		obj, _, err := a.B.Get(ctx, m.ObjectKey)
		if err != nil {
			return fmt.Errorf("batch %s: %w", m.ObjectKey, err)
		}
		f, err := batch.Open(bytes.NewReader(obj))
		if err != nil {
			return fmt.Errorf("batch %s: %w", m.ObjectKey, err)
		}
		ids, err := f.Strings(ctx, "record_id")
		var vers []uint32
		var offs []int64
		if err == nil {
			vers, err = f.Uint32s(ctx, "version")
		}
		if err == nil {
			offs, err = f.Int64s(ctx, batch.ColOffset)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("batch %s: %w", m.ObjectKey, err)
		}
		if int64(len(ids)) != m.Count {
			return fmt.Errorf("batch %s: %d rows, manifest says %d", m.ObjectKey, len(ids), m.Count)
		}
		for i, id := range ids {
			a.Leaves[IDVersion{id, vers[i]}]++
		}
		a.Offset[m.Partition] = append(a.Offset[m.Partition], offs...)
		a.Heads[m.Partition] = max(a.Heads[m.Partition], m.To)
		a.seen[k] = true
	}
	return nil
}

// Latest returns each archived record's highest version.
func (a *Archive) Latest() map[string]uint32 {
	out := map[string]uint32{}
	for iv := range a.Leaves {
		if iv.V > out[iv.ID] {
			out[iv.ID] = iv.V
		}
	}
	return out
}

// ExactlyOnce compares the sealed offsets with want (every offset of the
// topic per partition, ascending) and returns how many records are sealed
// exactly once, or an error naming the first partition with a gap, a
// duplicate or an offset not in want.
func (a *Archive) ExactlyOnce(want map[int32][]int64) (int, error) {
	total := 0
	for p, offs := range want {
		got := append([]int64(nil), a.Offset[p]...)
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		if len(got) != len(offs) {
			return total, fmt.Errorf("partition %d: %d records archived, %d in Kafka", p, len(got), len(offs))
		}
		for i := range offs {
			if got[i] != offs[i] {
				return total, fmt.Errorf("partition %d: archived offset %d where Kafka has %d (duplicate or gap)", p, got[i], offs[i])
			}
		}
		total += len(offs)
	}
	for p := range a.Offset {
		if _, ok := want[p]; !ok {
			return total, fmt.Errorf("partition %d archived but not in Kafka", p)
		}
	}
	return total, nil
}
