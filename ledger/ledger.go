// Package ledger is auditline's completeness ledger: per emitter of
// auditline's LiteLLM plugin, the sequence numbers seen, and what is missing
// between them.
//
// Every event the plugin sends (request_started markers, LiteLLM outcomes,
// gateway_config announcements) carries its emitter id and a gap-free
// sequence number, 1, 2, 3, … per emitter (deploy/litellm/auditline_litellm).
// A number that no record accounts for is an event that never reached
// auditline: a gap. A record accounts for the numbers of its source events
// (evidence.sources[].seq) and for the gateway_config that announced its
// configuration (emitter.config_seq), so the same rule works on ClickHouse
// (the live ledger: metrics, the sequence_gaps view, `auditline gaps`) and on
// the sealed archive (`auditline verify`): completeness is computable from
// records alone.
//
// The plugin announces a gateway_config lazily, in the same hook as the first
// event that runs under it, so every gateway_config number is carried as
// config_seq by a later event of the same emitter: a worker that starts, or
// sees its configuration change, and stops before serving anything leaves no
// number that no record could account for.
//
// What it cannot see: numbers after an emitter's last event (a loss at the
// very end shows once a later event of the same emitter arrives), and
// emitters that never sent anything.
//
// Memory: a Builder keeps, per emitter, the disjoint ranges seen, not the
// numbers: one range while nothing is missing, however many events.
package ledger

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Range is an inclusive run of sequence numbers.
type Range struct{ First, Last int64 }

func (r Range) String() string {
	if r.First == r.Last {
		return strconv.FormatInt(r.First, 10)
	}
	return fmt.Sprintf("%d..%d", r.First, r.Last)
}

// Len is the count of numbers in r.
func (r Range) Len() int64 { return r.Last - r.First + 1 }

// Gap is a run of missing numbers.
type Gap struct {
	Range
	// Since is the receive time of the first number after the gap: when
	// auditline could first know the numbers were missing (zero if unknown).
	Since time.Time
}

// Emitter is one emitter's coverage.
type Emitter struct {
	ID      string
	First   int64 // where coverage starts: 1, or the lowest number seen (Within)
	Last    int64 // highest number seen
	Seen    int64 // distinct numbers seen
	FirstAt time.Time
	LastAt  time.Time
	Ranges  []Range // what was seen, ordered and disjoint
	Gaps    []Gap   // what is missing in First..Last, ordered
}

// Missing is the count of missing numbers in First..Last.
func (e Emitter) Missing() int64 {
	var n int64
	for _, g := range e.Gaps {
		n += g.Len()
	}
	return n
}

// Complete reports whether every number First..Last was seen.
func (e Emitter) Complete() bool { return len(e.Gaps) == 0 }

// OldestGap returns the gap known for the longest time (zero Gap if none).
func (e Emitter) OldestGap() (Gap, bool) {
	var out Gap
	found := false
	for _, g := range e.Gaps {
		if !found || (!g.Since.IsZero() && (out.Since.IsZero() || g.Since.Before(out.Since))) {
			out, found = g, true
		}
	}
	return out, found
}

// Summary is one line: "sequence 1..1534 complete" or
// "sequence 1..1534: 3 missing: 17, 20..21".
func (e Emitter) Summary() string {
	if e.Complete() {
		return fmt.Sprintf("sequence %d..%d complete (%d events)", e.First, e.Last, e.Seen)
	}
	return fmt.Sprintf("sequence %d..%d: %d missing: %s", e.First, e.Last, e.Missing(), gapList(e.Gaps, 20))
}

func gapList(gs []Gap, max int) string {
	var parts []string
	for i, g := range gs {
		if i == max {
			parts = append(parts, fmt.Sprintf("… %d more gaps", len(gs)-max))
			break
		}
		parts = append(parts, g.Range.String())
	}
	return strings.Join(parts, ", ")
}

// span is a seen range and the receive time of its first number.
type span struct {
	Range
	at time.Time
}

type acc struct {
	spans           []span
	seen            int64
	firstAt, lastAt time.Time
}

// Builder accumulates observations in any order; duplicates are harmless.
// Not safe for concurrent use.
type Builder struct{ m map[string]*acc }

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{m: map[string]*acc{}} }

// Add records that emitter's number seq was seen, received at (zero if
// unknown). Numbers below 1 and empty emitters are ignored.
func (b *Builder) Add(emitter string, seq int64, at time.Time) {
	if emitter == "" || seq < 1 {
		return
	}
	a := b.m[emitter]
	if a == nil {
		a = &acc{}
		b.m[emitter] = a
	}
	if !at.IsZero() {
		if a.firstAt.IsZero() || at.Before(a.firstAt) {
			a.firstAt = at
		}
		if at.After(a.lastAt) {
			a.lastAt = at
		}
	}
	a.add(seq, at)
}

func (a *acc) add(seq int64, at time.Time) {
	s := a.spans
	// i: the first span whose Last >= seq-1 (it may hold seq, or touch it).
	i := sort.Search(len(s), func(i int) bool { return s[i].Last >= seq-1 })
	switch {
	case i < len(s) && s[i].First <= seq && seq <= s[i].Last:
		if s[i].First == seq && !at.IsZero() && (s[i].at.IsZero() || at.Before(s[i].at)) {
			s[i].at = at
		}
		return // seen before
	case i < len(s) && s[i].Last == seq-1:
		s[i].Last = seq
		if i+1 < len(s) && s[i+1].First == seq+1 { // closes a gap of one
			s[i].Last = s[i+1].Last
			a.spans = slices.Delete(s, i+1, i+2)
		}
	case i < len(s) && s[i].First == seq+1:
		s[i].First, s[i].at = seq, at
	default:
		a.spans = slices.Insert(s, i, span{Range{seq, seq}, at})
	}
	a.seen++
}

// Emitters returns every emitter's coverage from number 1, ordered by id:
// what the whole history (a sealed archive) must account for.
func (b *Builder) Emitters() []Emitter { return b.emitters(false) }

// Within returns every emitter's coverage from the lowest number seen, for a
// read restricted to a time window (numbers before it are not in question).
func (b *Builder) Within() []Emitter { return b.emitters(true) }

func (b *Builder) emitters(fromLowest bool) []Emitter {
	ids := make([]string, 0, len(b.m))
	for id := range b.m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]Emitter, 0, len(ids))
	for _, id := range ids {
		a := b.m[id]
		e := Emitter{ID: id, Seen: a.seen, FirstAt: a.firstAt, LastAt: a.lastAt}
		next := int64(1)
		if fromLowest && len(a.spans) > 0 {
			next = a.spans[0].First
		}
		e.First = next
		for _, s := range a.spans {
			if s.First > next {
				e.Gaps = append(e.Gaps, Gap{Range{next, s.First - 1}, s.at})
			}
			e.Ranges = append(e.Ranges, s.Range)
			next = s.Last + 1
		}
		e.Last = next - 1
		out = append(out, e)
	}
	return out
}
