package query

import (
	"encoding/json"
	"sort"
	"strconv"
	"time"
)

// The pure half of the page queries: what ClickHouse's grouped rows add up
// to. Nothing here reads a clock or a connection, so each function is
// tested with rows written by hand (aggregate_test.go); clickhouse.go only
// builds SQL, runs it through each and feeds these.

// nearMissGroups sums NearMiss's groups into the trend (per bucket) and
// the breakdowns by team, alias and provider.
type nearMissGroups struct {
	trend map[int64]Point
	dims  [3]map[string]*Count // team, alias, provider
}

func newNearMissGroups() *nearMissGroups {
	return &nearMissGroups{trend: map[int64]Point{}, dims: [3]map[string]*Count{{}, {}, {}}}
}

// addCombo adds one (bucket, team, alias, provider) group.
func (g *nearMissGroups) addCombo(r *comboRow) {
	g.addBucket(int64(r.Bucket), r.counts)
	g.addDims([3]string{r.Team, r.Alias, r.Provider}, r.counts)
}

// addFanOut adds one group of the fan-out form (see fanOutRow).
func (g *nearMissGroups) addFanOut(r *fanOutRow) {
	if r.Kind == "b" {
		b, _ := strconv.ParseInt(r.K1, 10, 64)
		g.addBucket(b, r.counts)
		return
	}
	g.addDims([3]string{r.K1, r.K2, r.K3}, r.counts)
}

func (g *nearMissGroups) addBucket(b int64, c counts) {
	p := g.trend[b]
	p.Total += c.Total
	p.Blocked += c.Blocked
	p.NearMiss += c.Near
	g.trend[b] = p
}

func (g *nearMissGroups) addDims(keys [3]string, c counts) {
	for i, k := range keys {
		m := g.dims[i][k]
		if m == nil {
			m = &Count{Key: k}
			g.dims[i][k] = m
		}
		m.Total += c.Total
		m.Blocked += c.Blocked
		m.NearMiss += c.Near
		m.Flagged += c.Blocked + c.Near
	}
}

// nearMissReasons collects the (bucket, reason) groups: the reasons trend
// in the order given, and the breakdown by reason.
type nearMissReasons struct {
	points   []ReasonPoint
	byReason map[string]*Count
}

func newNearMissReasons() *nearMissReasons { return &nearMissReasons{byReason: map[string]*Count{}} }

func (r *nearMissReasons) add(row *reasonRow) {
	r.points = append(r.points, ReasonPoint{Start: time.Unix(int64(row.Bucket), 0).UTC(), Reason: row.Reason, Count: row.Total})
	m := r.byReason[row.Reason]
	if m == nil {
		m = &Count{Key: row.Reason}
		r.byReason[row.Reason] = m
	}
	m.Total += row.Total
	m.Flagged += row.Total
	m.Blocked += row.Blocked
	m.NearMiss += row.Total - row.Blocked
}

// nearMissPage assembles the near-miss page over [from, to) in buckets of
// step: totals are the trend's sums, the trend has every bucket (zeros
// included), breakdowns keep the TopN most flagged (reasons: most frequent).
func nearMissPage(from, to time.Time, step time.Duration, g *nearMissGroups, r *nearMissReasons) NearMissPage {
	page := NearMissPage{Step: step, Reasons: r.points}
	for _, p := range g.trend {
		page.Totals.Total += p.Total
		page.Totals.Blocked += p.Blocked
		page.Totals.NearMiss += p.NearMiss
	}
	page.Totals.Flagged = page.Totals.Blocked + page.Totals.NearMiss
	for _, b := range buckets(from, to, step) {
		p := g.trend[b.Unix()]
		p.Start = b
		page.Trend = append(page.Trend, p)
	}
	byFlagged := func(a, b *Count) bool {
		if a.Flagged != b.Flagged {
			return a.Flagged > b.Flagged
		}
		return a.Total > b.Total
	}
	page.ByTeam, page.ByAlias, page.ByProvider = top(g.dims[0], byFlagged), top(g.dims[1], byFlagged), top(g.dims[2], byFlagged)
	page.ByReason = top(r.byReason, byTotal)
	return page
}

func byTotal(a, b *Count) bool { return a.Total > b.Total }

// top returns the TopN largest counts by greater, ties broken by key.
func top(m map[string]*Count, greater func(a, b *Count) bool) []Count {
	all := make([]*Count, 0, len(m))
	for _, c := range m {
		all = append(all, c)
	}
	sort.Slice(all, func(i, j int) bool {
		if greater(all[i], all[j]) {
			return true
		}
		if greater(all[j], all[i]) {
			return false
		}
		return all[i].Key < all[j].Key
	})
	out := make([]Count, 0, min(len(all), TopN))
	for _, c := range all[:min(len(all), TopN)] {
		out = append(out, *c)
	}
	return out
}

// samplingGroups sums Sampling's groups into the tier table, the review
// outcomes and the review progress per bucket. Unsampled groups count only
// towards their tier's total.
type samplingGroups struct {
	tiers       map[string]*Tier
	lastSampled map[string]time.Time // start time of each tier's newest sampled record
	outcomes    map[string]*Count
	progress    map[int64]ReviewPoint
}

func newSamplingGroups() *samplingGroups {
	return &samplingGroups{tiers: map[string]*Tier{}, lastSampled: map[string]time.Time{}, outcomes: map[string]*Count{}, progress: map[int64]ReviewPoint{}}
}

func (g *samplingGroups) add(r *samplingRow) {
	t := g.tiers[r.Tier]
	if t == nil {
		t = &Tier{Tier: r.Tier}
		g.tiers[r.Tier] = t
	}
	t.Total += r.N
	if r.Sampled != 1 {
		return
	}
	p := g.progress[int64(r.Bucket)]
	p.Sampled += r.N
	t.Sampled += r.N
	switch r.Reason {
	case "baseline":
		t.Baseline += r.N
	case "burst":
		t.Burst += r.N
	case "always":
		t.Always += r.N
	}
	if r.Review != "" {
		p.Reviewed += r.N
		t.Reviewed += r.N
		o := g.outcomes[r.Review]
		if o == nil {
			o = &Count{Key: r.Review}
			g.outcomes[r.Review] = o
		}
		o.Total += r.N
	}
	g.progress[int64(r.Bucket)] = p
	if r.Last.After(g.lastSampled[r.Tier]) {
		g.lastSampled[r.Tier], t.Rate = r.Last, r.Rate
	}
}

// samplingPage assembles the sampling page: tiers most severe first,
// outcomes most frequent first, progress over every bucket of [from, to),
// the queue grouped by tier (most severe first, oldest first within a
// tier), and the burst state from the newest switch.
func samplingPage(from, to time.Time, step time.Duration, g *samplingGroups, queue []Row, switches []Burst) SamplingPage {
	page := SamplingPage{Step: step, Queue: queue, Switches: switches}
	for _, t := range g.tiers {
		page.Tiers = append(page.Tiers, *t)
	}
	sort.Slice(page.Tiers, func(i, j int) bool { return TierLess(page.Tiers[i].Tier, page.Tiers[j].Tier) })
	page.Outcomes = top(g.outcomes, byTotal)
	for _, b := range buckets(from, to, step) {
		p := g.progress[b.Unix()]
		p.Start = b
		page.Progress = append(page.Progress, p)
	}
	sort.SliceStable(page.Queue, func(i, j int) bool {
		return page.Queue[i].Tier != page.Queue[j].Tier && TierLess(page.Queue[i].Tier, page.Queue[j].Tier)
	})
	if len(switches) > 0 {
		page.Burst = switches[0]
	}
	return page
}

// maxSwitches is how many sampling_control events the page lists.
const maxSwitches = 10

// burstSwitches reads sampling_control oversight events (raw bytes, newest
// received first) into at most maxSwitches switches, newest first by
// occurred_at (ties: newest received first), one per event id (ingest
// writes a sampling_control event to every partition). Anything that is
// not a switch is skipped: ingest validated every event already.
func burstSwitches(bodies []string) []Burst {
	seen := map[string]bool{}
	var out []Burst
	for _, body := range bodies {
		var ev struct {
			EventID  string `json:"event_id"`
			Kind     string `json:"kind"`
			Reviewer struct {
				ID   string `json:"id"`
				Role string `json:"role"`
			} `json:"reviewer"`
			Rationale  string    `json:"rationale"`
			OccurredAt time.Time `json:"occurred_at"`
			Sampling   *struct {
				Burst bool     `json:"burst"`
				Tiers []string `json:"tiers"`
			} `json:"sampling"`
		}
		if json.Unmarshal([]byte(body), &ev) != nil || ev.Kind != "sampling_control" || ev.Sampling == nil || seen[ev.EventID] {
			continue
		}
		seen[ev.EventID] = true
		out = append(out, Burst{Known: true, EventID: ev.EventID, On: ev.Sampling.Burst, By: ev.Reviewer.ID, Role: ev.Reviewer.Role,
			Rationale: ev.Rationale, At: ev.OccurredAt.UTC(), Tiers: ev.Sampling.Tiers})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out[:min(len(out), maxSwitches)]
}

// tierRank orders the usual tier names most severe first; others sort after,
// alphabetically.
var tierRank = map[string]int{"critical": 1, "high": 2, "elevated": 3, "medium": 4, "moderate": 5, "low": 6, "minimal": 7}

// TierLess orders risk tiers most severe first.
func TierLess(a, b string) bool {
	ra, rb := tierRank[a], tierRank[b]
	if ra == 0 {
		ra = 100
	}
	if rb == 0 {
		rb = 100
	}
	if ra != rb {
		return ra < rb
	}
	return a < b
}
