package enrich

import (
	"time"

	"github.com/auditline/auditline/enrich/record"
)

// streamClock is one partition's event-time clock: stream time, which drives
// every timeout, so that a replay of the same events times out the same
// requests.
//
// Each input topic (raw.litellm, raw.gateway) has its own high mark: the
// highest received-at header seen on it. Stream time is the lowest high mark
// of the topics that delivered something within idleAfter of wall time (so a
// topic read ahead of the other during catch-up cannot time out requests
// whose events sit unread in the other), and never goes back. When every
// topic is idle, stream time follows the wall clock minus idleAfter: that is
// the only case in which wall time decides, and so the only case in which a
// replay can time out a request at a different point of its stream.
type streamClock struct {
	idleAfter time.Duration
	topics    map[string]*topicMark
	now       record.Time
}

type topicMark struct {
	high     record.Time
	lastWall time.Time
}

func newStreamClock(idleAfter time.Duration) *streamClock {
	return &streamClock{idleAfter: idleAfter, topics: map[string]*topicMark{}}
}

// observe notes an event received at receivedAt on topic, read at wall.
func (c *streamClock) observe(topic string, receivedAt record.Time, wall time.Time) {
	m := c.topics[topic]
	if m == nil {
		m = &topicMark{}
		c.topics[topic] = m
	}
	m.high = max(m.high, receivedAt)
	m.lastWall = wall
}

// advance recomputes stream time at wall time wall and returns it.
func (c *streamClock) advance(wall time.Time) record.Time {
	var low, high record.Time
	active := false
	for _, m := range c.topics {
		high = max(high, m.high)
		if wall.Sub(m.lastWall) <= c.idleAfter {
			if !active || m.high < low {
				low = m.high
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
