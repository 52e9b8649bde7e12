package enrich

import (
	"time"

	"github.com/auditline/auditline/enrich/record"
)

// streamClock is one partition's event-time clock: stream time, which drives
// every timeout, so that a replay of the same events times out the same
// requests.
//
// Each input topic (raw.litellm, raw.gateway) has a mark: how far it has
// surely been read. Two things raise it:
//
//   - its high mark, the highest received-at header seen on it;
//   - ingest's watermarks (raw.Watermark): each ingest process writes to
//     every partition "every event I received before W is at a lower
//     offset". With the latest watermark of every live instance read, every
//     event received before the lowest of them has been read, so the topic's
//     mark is at least that lowest watermark (and never goes back).
//
// Stream time is the lowest mark of the topics that count, and never goes
// back. A topic counts while it delivered something (an event or a
// watermark) within idleAfter of wall time, or has records not handled yet
// (it is lagging: paused by backpressure, or slow), so a topic read ahead of
// the other cannot time out requests whose events sit unread in the other.
// Only when no topic counts — no ingest writes watermarks (an older ingest,
// a test feeding the raw topics directly, every ingest down) and nothing is
// unread — does stream time follow the wall clock minus idleAfter: the only
// case in which wall time decides, and so the only one in which a replay can
// time out a request at another point of its stream.
//
// Instances: an instance is live from its first watermark read until its
// leaving watermark (graceful shutdown), or until another instance's
// watermark in the same topic-partition is ahead of its latest one by more
// than dropAfter (it crashed, or its watermarks stopped): both are decided
// by the stream, not the wall clock, so a replay drops it at the same point.
// Events of a dropped instance that arrive later are late: they amend.
type streamClock struct {
	idleAfter time.Duration
	dropAfter record.Time
	topics    map[string]*topicMark
	now       record.Time
}

type topicMark struct {
	high     record.Time
	lastWall time.Time
	// live maps each live ingest instance to its latest watermark; wm is the
	// highest lowest-watermark reached so far (a floor of the mark).
	live map[string]record.Time
	wm   record.Time
	// lagging is set by the caller before advance: records of this
	// topic-partition exist that were not handled yet.
	lagging bool
}

func newStreamClock(idleAfter, dropAfter time.Duration) *streamClock {
	return &streamClock{idleAfter: idleAfter, dropAfter: record.Time(dropAfter.Milliseconds()), topics: map[string]*topicMark{}}
}

func (c *streamClock) topic(name string) *topicMark {
	m := c.topics[name]
	if m == nil {
		m = &topicMark{live: map[string]record.Time{}}
		c.topics[name] = m
	}
	return m
}

// observe notes an event received at receivedAt on topic, read at wall.
func (c *streamClock) observe(topic string, receivedAt record.Time, wall time.Time) {
	m := c.topic(topic)
	m.high = max(m.high, receivedAt)
	m.lastWall = wall
}

// watermark notes instance's watermark at read on topic at wall; leaving
// says it is the instance's last.
func (c *streamClock) watermark(topic, instance string, at record.Time, leaving bool, wall time.Time) {
	m := c.topic(topic)
	m.lastWall = wall
	if leaving {
		delete(m.live, instance)
		if len(m.live) == 0 {
			// The last live instance left: everything it received before its
			// last watermark is read.
			m.wm = max(m.wm, at)
		}
	} else {
		m.live[instance] = max(m.live[instance], at)
	}
	var newest record.Time
	for _, w := range m.live {
		newest = max(newest, w)
	}
	for id, w := range m.live {
		if newest-w > c.dropAfter {
			delete(m.live, id)
		}
	}
	if len(m.live) > 0 {
		low := newest
		for _, w := range m.live {
			low = min(low, w)
		}
		m.wm = max(m.wm, low)
	}
}

// setLagging records whether topic has records not handled yet.
func (c *streamClock) setLagging(topic string, lagging bool) {
	if m := c.topics[topic]; m != nil {
		m.lagging = lagging
	}
}

// holds reports whether topic's mark is what holds stream time where it is.
func (c *streamClock) holds(topic string) bool {
	m := c.topics[topic]
	return m != nil && max(m.high, m.wm) <= c.now
}

// advance recomputes stream time at wall time wall and returns it.
func (c *streamClock) advance(wall time.Time) record.Time {
	var low, high record.Time
	active := false
	for _, m := range c.topics {
		mark := max(m.high, m.wm)
		high = max(high, mark)
		if m.lagging || wall.Sub(m.lastWall) <= c.idleAfter {
			if !active || mark < low {
				low = mark
			}
			active = true
		}
	}
	t := low
	if !active {
		t = max(high, record.TimeOf(wall.Add(-c.idleAfter)))
	}
	c.now = max(c.now, t)
	return c.now
}
