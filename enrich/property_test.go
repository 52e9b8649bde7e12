package enrich

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/enrich/record"
)

// caseRecords returns the raw records of a golden case, created once (so
// their offsets are fixed), plus a re-sent copy of each at a new offset.
func caseRecords(t *testing.T, c goldenCase) (recs, resent []*kgo.Record) {
	r := newRig(t, testConfig(), nil, nil)
	for _, in := range c.events {
		recs = append(recs, r.rec(in.src, in.file, in.delay))
	}
	for _, in := range c.events {
		resent = append(resent, r.rec(in.src, in.file, in.delay))
	}
	return recs, resent
}

// TestBuildPermutationDuplication: fold.Build is a function of the set of
// events: any order, and any number of copies (the same record again, or the
// same event re-sent at a later offset), give byte-identical canonical JSON.
func TestBuildPermutationDuplication(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	b := fold.NewBuilder(fold.NewDefaultRules())
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			recs, resent := caseRecords(t, c)
			decode := func(rs []*kgo.Record) []*event.Event {
				var out []*event.Event
				for _, r := range rs {
					e, err := event.FromRecord(r)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, e)
				}
				return out
			}
			base := decode(recs)
			want := canonical(t, b.Build(base, fold.Context{}))
			extra := decode(resent)
			for trial := range 200 {
				evs := slices.Clone(base)
				for range rng.IntN(4) {
					evs = append(evs, base[rng.IntN(len(base))])
				}
				for range rng.IntN(3) {
					evs = append(evs, extra[rng.IntN(len(extra))])
				}
				rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
				if got := canonical(t, b.Build(evs, fold.Context{})); got != want {
					t.Fatalf("trial %d: %d events in another order/with copies give another record:\n%s", trial, len(evs), firstDiff(want, got))
				}
			}
		})
	}
}

// TestArrivalOrderConverges: through the Processor (completion, grace,
// amendments), every arrival order of a request's events, with duplicates
// anywhere, ends with the same latest record. Only version and completeness
// may differ: they count how the events arrived (a fallback's success before
// its failure is emitted at once and then amended).
func TestArrivalOrderConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			recs, resent := caseRecords(t, c)
			var want string
			for trial := range 30 {
				order := slices.Clone(recs)
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				// Duplicates: the same record again, and the re-sent copy, each
				// after its original.
				for i, r := range recs {
					if rng.IntN(2) == 0 {
						pos := slices.Index(order, r) + 1 + rng.IntN(len(order)-slices.Index(order, r))
						order = slices.Insert(order, min(pos, len(order)), r)
					}
					if rng.IntN(2) == 0 {
						pos := slices.Index(order, r) + 1
						order = slices.Insert(order, min(pos+rng.IntN(len(order)-pos+1), len(order)), resent[i])
					}
				}
				cfg := testConfig()
				if c.cfg != nil {
					c.cfg(&cfg)
				}
				r := newRig(t, cfg, nil, nil)
				slow := trial%2 == 0 // half the trials let stream time pass between events
				for _, rec := range order {
					r.feed(rec)
					if slow {
						r.idle(time.Minute)
					}
				}
				r.idle(2 * time.Hour)
				l := latest(r.k.decisions(t))
				if len(l) != 1 {
					t.Fatalf("trial %d: %d request keys, want 1", trial, len(l))
				}
				for _, d := range l {
					d.Version, d.Completeness = 0, ""
					got := canonical(t, d)
					if want == "" {
						want = got
					} else if got != want {
						t.Fatalf("trial %d (slow=%v): latest record differs:\n%s", trial, slow, firstDiff(want, got))
					}
				}
				// Versions are 1..n with no gap, and a duplicate emitted nothing:
				// at most one version per distinct event.
				ds := r.k.decisions(t)
				for i, d := range ds {
					if d.Version != uint32(i+1) {
						t.Fatalf("trial %d: version %d at position %d", trial, d.Version, i)
					}
				}
				if len(ds) > len(recs) {
					t.Fatalf("trial %d: %d versions for %d distinct events", trial, len(ds), len(recs))
				}
			}
		})
	}
}

func canonical(t testing.TB, d record.Decision) string {
	t.Helper()
	b, err := d.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func firstDiff(a, b string) string {
	return joinLines(fieldDiff([]byte(a), []byte(b)))
}
