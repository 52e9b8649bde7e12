package verify

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/auditline/auditline/sinks/archive/batch"
)

// duplicates finds a record version sealed more than once. The pipeline
// seals each (record_id, version) exactly once (enrich emits it once; the
// archive's chain never covers an offset twice; tests/fault proves it under
// crashes), so a second copy — even byte-identical, even in a batch signed
// with the real key — is either an upstream bug or an insertion, and is a
// failure naming both places. Memory: 24 bytes per verified record.
type duplicates struct {
	mu   sync.Mutex
	seen map[[16]byte]place
	dups [][2]place
}

// place is where a record version is sealed.
type place struct {
	key       string // batch object key
	partition int32
	offset    int64
	id        string
	version   uint32
}

func newDuplicates() *duplicates { return &duplicates{seen: map[[16]byte]place{}} }

func (d *duplicates) batch(ctx context.Context, e *mentry, f *batch.File) error {
	ids, err := f.Strings(ctx, "record_id")
	if err != nil {
		return err
	}
	vers, err := f.Uint32s(ctx, "version")
	if err != nil {
		return err
	}
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return err
	}
	type item struct {
		k [16]byte
		p place
	}
	items := make([]item, 0, len(ids))
	buf := make([]byte, 0, 64)
	for i, id := range ids {
		if id == "" { // not a decision record (archive_error): no identity to repeat
			continue
		}
		// The key: the first 16 bytes of SHA-256(id ‖ version, big-endian).
		buf = binary.BigEndian.AppendUint32(append(buf[:0], id...), vers[i])
		sum := sha256.Sum256(buf)
		var k [16]byte
		copy(k[:], sum[:])
		items = append(items, item{k, place{key: e.M.ObjectKey, partition: e.M.Partition, offset: offs[i], id: id, version: vers[i]}})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, it := range items {
		if first, ok := d.seen[it.k]; ok {
			d.dups = append(d.dups, [2]place{first, it.p})
			continue
		}
		d.seen[it.k] = place{key: it.p.key, partition: it.p.partition, offset: it.p.offset}
	}
	return nil
}

func (d *duplicates) finish(rep *Report) {
	// Batches are checked concurrently: report each pair in log order.
	for i := range d.dups {
		a, b := d.dups[i][0], d.dups[i][1]
		if b.partition < a.partition || b.partition == a.partition && b.offset < a.offset {
			d.dups[i][0], d.dups[i][1] = b, a
		}
	}
	sort.Slice(d.dups, func(i, j int) bool {
		x, y := d.dups[i][1], d.dups[j][1]
		return x.partition < y.partition || x.partition == y.partition && x.offset < y.offset
	})
	for _, dp := range d.dups {
		first, second := dp[0], dp[1]
		id, ver := second.id, second.version
		if id == "" {
			id, ver = first.id, first.version
		}
		rep.fail(Failure{Check: CheckDuplicate, Key: second.key, Partition: second.partition, From: second.offset, To: second.offset + 1,
			Detail: fmt.Sprintf("record %s version %d is sealed twice: here, and at partition %d offset %d (%s); each record version is sealed once, so one copy was inserted", id, ver, first.partition, first.offset, first.key)})
	}
}
