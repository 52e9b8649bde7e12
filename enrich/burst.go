package enrich

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/enrich/record"
)

// control is one sampling_control event.
type control struct {
	id    string
	at    record.Time // occurred_at: the switch applies to requests started at or after it
	burst bool
	tiers []string // empty: every tier
}

// burstState decides burst sampling for one partition. Manual switches come
// from sampling_control oversight events (ingest writes one copy to every
// partition); each applies to the requests that started at or after its
// occurred_at, so the decision depends on the request, not on when the
// control event happened to be read. Automatic burst follows the share of
// near misses and failures among the records this partition emitted in a
// sliding window of stream time.
type burstState struct {
	controls []control // sorted by at, then id

	auto     fold.AutoBurstConfig
	window   []autoSample // emitted records in the window, oldest first
	flagged  int
	until    record.Time // auto burst is on while stream time < until
	autoOn   bool
	switched func(on bool) // observer (logging, metrics); may be nil
}

type autoSample struct {
	at      record.Time
	flagged bool
}

// addControl records a sampling_control event; duplicates are ignored.
func (b *burstState) addControl(id string, o *event.Oversight) {
	c := control{id: id, at: o.OccurredAt, burst: o.Burst, tiers: o.Tiers}
	i, found := slices.BinarySearchFunc(b.controls, c, func(x, y control) int {
		return cmp.Or(cmp.Compare(x.at, y.at), strings.Compare(x.id, y.id))
	})
	if !found {
		b.controls = slices.Insert(b.controls, i, c)
	}
}

// manual reports whether the latest switch at or before start turned burst on
// for tier.
func (b *burstState) manual(tier string, start record.Time) bool {
	for i := len(b.controls) - 1; i >= 0; i-- {
		c := b.controls[i]
		if c.at > start {
			continue
		}
		return c.burst && (len(c.tiers) == 0 || slices.Contains(c.tiers, tier))
	}
	return false
}

// on reports whether burst applies to a record of tier that started at start.
func (b *burstState) on(tier string, start record.Time) bool {
	return b.autoOn || b.manual(tier, start)
}

// observe adds an emitted first version to the auto-burst window at stream
// time now and updates the automatic switch.
func (b *burstState) observe(now record.Time, d *record.Decision) {
	if !b.auto.Enabled {
		return
	}
	f := d.NearMiss.Flagged || d.Outcome.Status != record.OutcomeSuccess
	b.window = append(b.window, autoSample{now, f})
	if f {
		b.flagged++
	}
	b.advance(now)
	if n := len(b.window); n >= b.auto.MinRecords && float64(b.flagged) >= b.auto.Share*float64(n) {
		b.until = now + record.Time(b.auto.Hold/time.Millisecond)
		if b.until <= now {
			b.until = now + 1
		}
	}
	b.update(now)
}

// advance drops samples older than the window.
func (b *burstState) advance(now record.Time) {
	cut := now - record.Time(b.auto.Window/time.Millisecond)
	i := 0
	for i < len(b.window) && b.window[i].at < cut {
		if b.window[i].flagged {
			b.flagged--
		}
		i++
	}
	if i > 0 {
		b.window = slices.Delete(b.window, 0, i)
	}
}

// update recomputes the automatic switch at stream time now.
func (b *burstState) update(now record.Time) {
	on := now < b.until
	if on != b.autoOn {
		b.autoOn = on
		if b.switched != nil {
			b.switched(on)
		}
	}
}
