package topic

import "sync"

// tracker follows one topic-partition: the offsets handed to the Handler, in
// order, and which of them are Done. Its watermark is the offset after the
// longest prefix of Done messages: what may be committed.
type tracker struct {
	topic     string
	partition int32

	mu        sync.Mutex
	pending   []*entry // handed out, in offset order; pending[head:] are live
	head      int
	watermark int64 // next offset to commit; -1 until the first message is Done
	epoch     int32 // leader epoch of the last message popped
	committed int64 // last watermark committed
	revoked   bool  // once set, Done is a no-op and nothing is committed
	paused    bool
	bytes     int64 // sizes of the outstanding entries
	hwm       int64 // high watermark seen in the last fetch, for lag
}

type entry struct {
	offset int64
	epoch  int32
	size   int64 // bytes the Handler holds for it (record size, or what Release kept)
	done   bool
}

func newTracker(topic string, partition int32) *tracker {
	return &tracker{topic: topic, partition: partition, watermark: -1, committed: -1}
}

// add registers an offset of size bytes handed to the Handler and returns
// its entry, and the number and bytes outstanding after it.
func (t *tracker) add(offset int64, epoch int32, size int64) (*entry, int, int64) {
	e := &entry{offset: offset, epoch: epoch, size: size}
	t.mu.Lock()
	t.pending = append(t.pending, e)
	n := len(t.pending) - t.head
	t.bytes += size
	b := t.bytes
	t.mu.Unlock()
	return e, n, b
}

// shrink lowers e's size to keep (the Handler released the rest) and
// returns the number and bytes outstanding, and whether the tracker is
// paused.
func (t *tracker) shrink(e *entry, keep int64) (outstanding int, bytes int64, paused bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.revoked && !e.done && keep < e.size {
		t.bytes -= e.size - max(keep, 0)
		e.size = max(keep, 0)
	}
	return len(t.pending) - t.head, t.bytes, t.paused
}

// done marks e Done and advances the watermark over every leading Done entry.
// It returns the number and bytes still outstanding and whether the tracker
// is paused.
func (t *tracker) done(e *entry) (outstanding int, bytes int64, paused bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.revoked || e.done {
		return len(t.pending) - t.head, t.bytes, t.paused
	}
	e.done = true
	t.bytes -= e.size
	for t.head < len(t.pending) && t.pending[t.head].done {
		p := t.pending[t.head]
		t.pending[t.head] = nil
		t.head++
		t.watermark = p.offset + 1
		t.epoch = p.epoch
	}
	// Compact once the dead prefix dominates, so the slice does not grow forever.
	if t.head > 1024 && t.head*2 > len(t.pending) {
		n := copy(t.pending, t.pending[t.head:])
		clear(t.pending[n:])
		t.pending = t.pending[:n]
		t.head = 0
	}
	return len(t.pending) - t.head, t.bytes, t.paused
}

// toCommit returns the watermark to commit, if it moved since the last commit.
func (t *tracker) toCommit() (offset int64, epoch int32, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.revoked || t.watermark < 0 || t.watermark == t.committed {
		return 0, 0, false
	}
	return t.watermark, t.epoch, true
}

func (t *tracker) markCommitted(offset int64) {
	t.mu.Lock()
	if offset > t.committed {
		t.committed = offset
	}
	t.mu.Unlock()
}

func (t *tracker) revoke() {
	t.mu.Lock()
	t.revoked = true
	t.mu.Unlock()
}

func (t *tracker) setPaused(p bool) {
	t.mu.Lock()
	t.paused = p
	t.mu.Unlock()
}

// stats returns the outstanding count and bytes, and the lag behind the high
// watermark.
func (t *tracker) stats() (outstanding int, bytes, lag int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	outstanding, bytes = len(t.pending)-t.head, t.bytes
	next := t.watermark
	if next < 0 {
		if outstanding > 0 {
			next = t.pending[t.head].offset
		} else {
			next = t.hwm
		}
	}
	if t.hwm > next {
		lag = t.hwm - next
	}
	return outstanding, bytes, lag
}
