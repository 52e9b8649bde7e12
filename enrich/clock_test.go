package enrich

import (
	"fmt"
	"testing"
	"time"

	"github.com/auditline/auditline/enrich/record"
)

// clockStep is one input to a streamClock, then advance; want is the stream
// time advance must return (-1: not checked).
type clockStep struct {
	wall    time.Duration // wall time since the start, at which this step happens
	topic   string
	event   record.Time // an event received at event (0: none)
	inst    string      // a watermark of inst at mark (leaving when leave)
	mark    record.Time
	leave   bool
	lagging *bool // sets the topic's lagging flag
	want    record.Time
}

const (
	tL = "raw.litellm"
	tG = "raw.gateway"
)

var yes, no = new(bool), new(bool)

func init() { *yes = true }

// run plays steps on a clock with idle_after 5 s and watermark_timeout 30 s
// that starts at wall time start, and returns the stream times.
func runClock(t *testing.T, start time.Time, steps []clockStep, check bool) []record.Time {
	t.Helper()
	c := newStreamClock(5*time.Second, 30*time.Second)
	c.observe(tL, 0, start)
	c.observe(tG, 0, start)
	var out []record.Time
	for i, s := range steps {
		wall := start.Add(s.wall)
		if s.lagging != nil {
			c.setLagging(s.topic, *s.lagging)
		}
		if s.event != 0 {
			c.observe(s.topic, s.event, wall)
		}
		if s.inst != "" {
			c.watermark(s.topic, s.inst, s.mark, s.leave, wall)
		}
		got := c.advance(wall)
		out = append(out, got)
		if check && s.want >= 0 && got != s.want {
			t.Errorf("step %d (%+v): stream time %d, want %d", i, s, got, s.want)
		}
	}
	return out
}

func TestStreamClock(t *testing.T) {
	// Receive times are small numbers (ms); the wall clock is far ahead, so
	// the wall-clock rule, when it applies, gives wall − idle_after ≫ them.
	start := time.UnixMilli(1_000_000)
	const wallRule = 1_000_000 + 60_000 - 5_000 // start + 60 s − idle_after
	for _, tc := range []struct {
		name  string
		steps []clockStep
	}{
		{"no watermarks: a sparse gateway event holds stream time until idle_after", []clockStep{
			{wall: 0, topic: tG, event: 1000, want: 0}, // litellm has delivered nothing yet: mark 0
			{wall: 100 * time.Millisecond, topic: tL, event: 1000, want: 1000},
			{wall: 2 * time.Second, topic: tL, event: 3000, want: 1000},         // the gateway topic still counts
			{wall: 4 * time.Second, topic: tL, event: 5000, want: 1000},         // …for idle_after
			{wall: 5500 * time.Millisecond, topic: tL, event: 5500, want: 5500}, // then no longer
		}},
		{"watermarks: stream time follows the lowest watermark, not idle_after", []clockStep{
			{wall: 0, topic: tG, event: 1000, want: 0},
			{wall: 0, topic: tL, event: 1000, want: 1000},
			{wall: 250 * time.Millisecond, topic: tL, inst: "a", mark: 1200, want: 1000}, // gateway mark still 1000
			{wall: 250 * time.Millisecond, topic: tG, inst: "a", mark: 1200, want: 1200},
			{wall: 500 * time.Millisecond, topic: tL, event: 1400, want: 1200},
			{wall: 500 * time.Millisecond, topic: tL, inst: "a", mark: 1450, want: 1200},
			{wall: 500 * time.Millisecond, topic: tG, inst: "a", mark: 1450, want: 1450},
			{wall: 750 * time.Millisecond, topic: tL, event: 1600, want: 1450}, // an event alone does not pass the gateway's watermark
		}},
		{"watermarks: a topic's high mark above its watermark still counts", []clockStep{
			{wall: 0, topic: tL, inst: "a", mark: 1000, want: 0},
			{wall: 0, topic: tG, inst: "a", mark: 1000, want: 1000},
			{wall: 0, topic: tL, event: 1800, want: 1000},
			{wall: 0, topic: tG, event: 1500, want: 1500},
		}},
		{"two instances: the lowest live one holds", []clockStep{
			{wall: 0, topic: tL, inst: "a", mark: 1000, want: 0},
			{wall: 0, topic: tG, inst: "a", mark: 1000, want: 1000},
			{wall: 0, topic: tL, inst: "b", mark: 900, want: 1000}, // never back
			{wall: 0, topic: tG, inst: "b", mark: 900, want: 1000},
			{wall: time.Second, topic: tL, inst: "a", mark: 2000, want: 1000},
			{wall: time.Second, topic: tG, inst: "a", mark: 2000, want: 1000},
			{wall: time.Second, topic: tL, inst: "b", mark: 1700, want: 1000},
			{wall: time.Second, topic: tG, inst: "b", mark: 1700, want: 1700},
		}},
		{"instance drop: a crashed instance holds stream time until another is watermark_timeout ahead", []clockStep{
			{wall: 0, topic: tL, inst: "a", mark: 1000, want: 0},
			{wall: 0, topic: tG, inst: "a", mark: 1000, want: 1000},
			{wall: 0, topic: tL, inst: "b", mark: 1000, want: 1000},
			{wall: 0, topic: tG, inst: "b", mark: 1000, want: 1000},
			// a says nothing more; b goes on
			{wall: 20 * time.Second, topic: tL, inst: "b", mark: 21000, want: 1000},
			{wall: 20 * time.Second, topic: tG, inst: "b", mark: 21000, want: 1000},
			{wall: 31 * time.Second, topic: tL, inst: "b", mark: 31000, want: 1000}, // 30 s ahead: not more
			{wall: 31 * time.Second, topic: tG, inst: "b", mark: 31000, want: 1000},
			{wall: 32 * time.Second, topic: tL, inst: "b", mark: 31001, want: 1000}, // litellm drops a
			{wall: 32 * time.Second, topic: tG, inst: "b", mark: 31001, want: 31001},
		}},
		{"leaving: an instance that left holds nothing", []clockStep{
			{wall: 0, topic: tL, inst: "a", mark: 1000, want: 0},
			{wall: 0, topic: tG, inst: "a", mark: 1000, want: 1000},
			{wall: 0, topic: tL, inst: "b", mark: 1000, want: 1000},
			{wall: 0, topic: tG, inst: "b", mark: 1000, want: 1000},
			{wall: time.Second, topic: tL, inst: "a", mark: 1100, leave: true, want: 1000},
			{wall: time.Second, topic: tG, inst: "a", mark: 1100, leave: true, want: 1000},
			{wall: time.Second, topic: tL, inst: "b", mark: 2000, want: 1000},
			{wall: time.Second, topic: tG, inst: "b", mark: 2000, want: 2000},
		}},
		{"the last instance leaves: its leaving watermark still counts, then idle_after", []clockStep{
			{wall: 0, topic: tL, inst: "a", mark: 1000, want: 0},
			{wall: 0, topic: tG, inst: "a", mark: 1000, want: 1000},
			{wall: time.Second, topic: tL, inst: "a", mark: 1500, leave: true, want: 1000},
			{wall: time.Second, topic: tG, inst: "a", mark: 1500, leave: true, want: 1500},
			{wall: 3 * time.Second, want: 1500},
			{wall: 60 * time.Second, want: wallRule},
		}},
		{"lagging, no watermarks: the wall clock does not move a partition with unread records", []clockStep{
			{wall: 0, topic: tL, event: 1000, want: 0},
			{wall: 0, topic: tG, event: 900, want: 900},
			{wall: 100 * time.Millisecond, topic: tG, lagging: yes, want: 900},
			{wall: 60 * time.Second, want: 900},                              // idle for the wall clock, but records wait
			{wall: 60 * time.Second, topic: tG, lagging: no, want: wallRule}, // caught up: both idle
			{wall: 61 * time.Second, want: wallRule + 1000},
		}},
		{"lagging, with watermarks: a paused topic's last watermark holds", []clockStep{
			{wall: 0, topic: tL, inst: "a", mark: 1000, want: 0},
			{wall: 0, topic: tG, inst: "a", mark: 1000, want: 1000},
			{wall: 0, topic: tL, lagging: yes, want: 1000},
			{wall: 10 * time.Second, topic: tG, inst: "a", mark: 11000, want: 1000}, // litellm read nothing for 10 s: still counts
			{wall: 60 * time.Second, want: 1000},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runClock(t, start, tc.steps, true) })
	}
}

// TestStreamClockReplay: with watermarks, stream time is a function of the
// records read, whatever the wall clock did while reading them (within the
// idle_after of a live ingest's watermark interval): a replay read at
// another pace times out the same requests.
func TestStreamClockReplay(t *testing.T) {
	var steps []clockStep
	for i := range 400 {
		at := record.Time(1000 + 250*i)
		tp := tL
		if i%17 == 0 {
			tp = tG
		}
		steps = append(steps, clockStep{topic: tp, event: at + 10, want: -1})
		if i%3 == 0 {
			steps = append(steps, clockStep{topic: tL, inst: "a", mark: at, want: -1}, clockStep{topic: tG, inst: "a", mark: at, want: -1})
		}
		if i%5 == 0 && i < 120 { // b crashes at i = 115
			steps = append(steps, clockStep{topic: tL, inst: "b", mark: at - 100, want: -1}, clockStep{topic: tG, inst: "b", mark: at - 100, want: -1})
		}
	}
	live := runClockPaced(t, steps, func(i int) time.Duration { return time.Duration(i) * 80 * time.Millisecond })
	replay := runClockPaced(t, steps, func(i int) time.Duration { return time.Duration(i) * time.Millisecond })
	if fmt.Sprint(live) != fmt.Sprint(replay) {
		t.Fatalf("stream times differ between the live read and a fast replay:\nlive   %v\nreplay %v", live, replay)
	}
	if live[len(live)-1] < 90000 {
		t.Errorf("stream time ended at %d: the crashed instance b was never dropped", live[len(live)-1])
	}
}

func runClockPaced(t *testing.T, steps []clockStep, wall func(int) time.Duration) []record.Time {
	paced := make([]clockStep, len(steps))
	for i, s := range steps {
		s.wall = wall(i)
		paced[i] = s
	}
	return runClock(t, time.UnixMilli(1_000_000_000), paced, false)
}
