package ledger

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func at(s int) time.Time { return time.Unix(int64(1_800_000_000+s), 0).UTC() }

func TestCoverage(t *testing.T) {
	tests := []struct {
		name    string
		seqs    []int64
		last    int64
		gaps    []Range
		summary string
	}{
		{"in order", []int64{1, 2, 3, 4}, 4, nil, "sequence 1..4 complete (4 events)"},
		{"reversed", []int64{4, 3, 2, 1}, 4, nil, "sequence 1..4 complete (4 events)"},
		{"duplicates", []int64{1, 1, 2, 2, 2, 3}, 3, nil, "sequence 1..3 complete (3 events)"},
		{"one missing", []int64{1, 2, 4}, 4, []Range{{3, 3}}, "sequence 1..4: 1 missing: 3"},
		{"head missing", []int64{3, 4, 5}, 5, []Range{{1, 2}}, "sequence 1..5: 2 missing: 1..2"},
		{"several", []int64{1, 9, 2, 5, 12}, 12, []Range{{3, 4}, {6, 8}, {10, 11}}, "sequence 1..12: 7 missing: 3..4, 6..8, 10..11"},
		{"gap filled later", []int64{1, 2, 4, 5, 3}, 5, nil, "sequence 1..5 complete (5 events)"},
		{"bridge", []int64{1, 3, 5, 2, 4}, 5, nil, "sequence 1..5 complete (5 events)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder()
			for i, s := range tt.seqs {
				b.Add("e", s, at(i))
			}
			b.Add("", 7, at(0)) // ignored
			b.Add("e", 0, at(0))
			es := b.Emitters()
			if len(es) != 1 {
				t.Fatalf("%d emitters", len(es))
			}
			e := es[0]
			var got []Range
			for _, g := range e.Gaps {
				got = append(got, g.Range)
			}
			if e.Last != tt.last || !slices.Equal(got, tt.gaps) || e.Summary() != tt.summary {
				t.Errorf("last %d gaps %v %q; want %d %v %q", e.Last, got, e.Summary(), tt.last, tt.gaps, tt.summary)
			}
		})
	}
}

func TestGapSinceIsTheReceiptAfterIt(t *testing.T) {
	b := NewBuilder()
	b.Add("e", 1, at(1))
	b.Add("e", 5, at(50))
	b.Add("e", 4, at(40)) // extends the span downwards: now it starts at 4, received at 40
	b.Add("e", 9, at(90))
	e := b.Emitters()[0]
	if len(e.Gaps) != 2 || !e.Gaps[0].Since.Equal(at(40)) || !e.Gaps[1].Since.Equal(at(90)) {
		t.Fatalf("gaps %+v", e.Gaps)
	}
	if g, ok := e.OldestGap(); !ok || g.Range != (Range{2, 3}) {
		t.Errorf("oldest gap %+v", g)
	}
	if !e.FirstAt.Equal(at(1)) || !e.LastAt.Equal(at(90)) || e.Missing() != 5 || e.Seen != 4 {
		t.Errorf("emitter %+v", e)
	}
}

// TestRandomOrder: any order of any subset gives the gaps a naive set difference gives.
func TestRandomOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		n := 1 + r.IntN(300)
		var seqs []int64
		want := map[int64]bool{}
		for s := int64(1); s <= int64(n); s++ {
			if r.IntN(10) > 0 {
				seqs = append(seqs, s, s) // twice: duplicates are harmless
				want[s] = true
			}
		}
		r.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
		b := NewBuilder()
		for _, s := range seqs {
			b.Add("x", s, time.Time{})
		}
		es := b.Emitters()
		if len(seqs) == 0 {
			if len(es) != 0 {
				t.Fatal("emitter without numbers")
			}
			continue
		}
		e := es[0]
		var missing []int64
		for _, g := range e.Gaps {
			for s := g.First; s <= g.Last; s++ {
				missing = append(missing, s)
			}
		}
		var naive []int64
		for s := int64(1); s <= e.Last; s++ {
			if !want[s] {
				naive = append(naive, s)
			}
		}
		if !slices.Equal(missing, naive) || e.Seen != int64(len(want)) {
			t.Fatalf("round %d: missing %v, want %v (seen %d of %d)", round, missing, naive, e.Seen, len(want))
		}
	}
}

func TestManyEmittersSorted(t *testing.T) {
	b := NewBuilder()
	b.Add("b", 1, time.Time{})
	b.Add("a", 2, time.Time{})
	es := b.Emitters()
	if es[0].ID != "a" || es[1].ID != "b" || es[0].Complete() || !es[1].Complete() {
		t.Fatalf("%+v", es)
	}
}

func BenchmarkAddInOrder(b *testing.B) {
	l := NewBuilder()
	for i := range b.N {
		l.Add("e", int64(i+1), time.Time{})
	}
}

func TestWithinStartsAtTheLowest(t *testing.T) {
	b := NewBuilder()
	for _, s := range []int64{100, 101, 103} {
		b.Add("e", s, time.Time{})
	}
	if got := b.Within()[0].Summary(); got != "sequence 100..103: 1 missing: 102" {
		t.Errorf("within: %q", got)
	}
	if got := b.Emitters()[0].Summary(); got != "sequence 1..103: 100 missing: 1..99, 102" {
		t.Errorf("from 1: %q", got)
	}
}
