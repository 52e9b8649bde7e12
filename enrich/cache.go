package enrich

import (
	"container/list"
	"slices"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/topic"
)

// emitted is a record recently emitted by this partition: what an amendment
// needs. A hot entry still holds the decoded events it was built from; a cold
// one (rebuilt from the decisions topic after a restart, or fetched by a
// decision_ref) holds only its evidence, and its events are fetched back from
// the raw topics if it is ever amended.
type emitted struct {
	key       string
	recordID  string
	version   uint32
	ids       []string        // event ids reflected, sorted
	events    []*event.Event  // nil when cold
	sources   []record.Source // evidence (cold entries refetch from it)
	prior     fold.Sample
	emittedAt record.Time // stream time of the last emission
	size      int

	// Amendment in progress (within one flush).
	late []*event.Event
	msgs []*topic.Message

	elem *list.Element
}

func (e *emitted) has(id string) bool {
	_, ok := slices.BinarySearch(e.ids, id)
	return ok
}

// sum returns the SHA-256 of the event with this id that the entry holds,
// or "" when it does not know it.
func (e *emitted) sum(id string) string {
	for _, ev := range e.events {
		if ev.ID == id {
			return ev.SHA256
		}
	}
	for _, s := range e.sources {
		if s.EventID == id {
			return s.SHA256
		}
	}
	return ""
}

func (e *emitted) computeSize() {
	n := 256 + len(e.key) + len(e.recordID)
	for _, id := range e.ids {
		n += 16 + len(id)
	}
	n += len(e.sources) * 200
	for _, ev := range e.events {
		n += ev.Size()
	}
	e.size = n
}

// cache holds recently emitted records of one partition, oldest emission
// first, bounded by bytes and by the amend window (in stream time).
type cache struct {
	maxBytes int
	window   record.Time // ms
	byKey    map[string]*emitted
	order    *list.List // of *emitted, by last emission
	bytes    int
}

func newCache(maxBytes int, windowMS int64) *cache {
	return &cache{maxBytes: maxBytes, window: record.Time(windowMS), byKey: map[string]*emitted{}, order: list.New()}
}

func (c *cache) get(key string) *emitted { return c.byKey[key] }

// put inserts or replaces the entry for e.key as the newest.
func (c *cache) put(e *emitted) {
	if old := c.byKey[e.key]; old != nil {
		c.bytes -= old.size
		c.order.Remove(old.elem)
	}
	e.computeSize()
	e.elem = c.order.PushBack(e)
	c.byKey[e.key] = e
	c.bytes += e.size
	// Keep within the byte bound at every insert (a rebuild inserts many
	// before the first flush evicts by time).
	for el := c.order.Front(); c.bytes > c.maxBytes && el != nil && el != e.elem; {
		next := el.Next()
		if old := el.Value.(*emitted); len(old.late) == 0 {
			c.order.Remove(el)
			delete(c.byKey, old.key)
			c.bytes -= old.size
		}
		el = next
	}
}

// evict drops entries beyond the byte bound and those emitted before
// now − window. Entries with an amendment in progress are kept.
func (c *cache) evict(now record.Time) (dropped int) {
	for el := c.order.Front(); el != nil; {
		e := el.Value.(*emitted)
		if c.bytes <= c.maxBytes && e.emittedAt >= now-c.window {
			break
		}
		next := el.Next()
		if len(e.late) == 0 {
			c.order.Remove(el)
			delete(c.byKey, e.key)
			c.bytes -= e.size
			dropped++
		}
		el = next
	}
	return dropped
}

func (c *cache) len() int { return len(c.byKey) }
