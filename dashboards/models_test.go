package dashboards

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/chart"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
)

var (
	mt0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	mv  = view{Range: "24h", Team: "pay"}
)

func TestNearMissModel(t *testing.T) {
	data := query.NearMissPage{
		Step:   time.Hour,
		Totals: query.Count{Total: 200, Flagged: 9, Blocked: 4, NearMiss: 5},
		Trend:  []query.Point{{Start: mt0, Blocked: 1, NearMiss: 2}, {Start: mt0.Add(time.Hour), Blocked: 3, NearMiss: 3}},
		Reasons: []query.ReasonPoint{
			{Start: mt0, Reason: "policy_block", Count: 1},
			{Start: mt0.Add(time.Hour), Reason: "fallback_after_429", Count: 2},
			{Start: mt0.Add(5 * time.Hour), Reason: "policy_block", Count: 7}, // outside the trend: dropped
			{Start: mt0, Reason: "not_in_breakdown", Count: 9},                // not a series: dropped
		},
		ByTeam:   []query.Count{{Key: "pay", Total: 100, Flagged: 9, Blocked: 4, NearMiss: 5}},
		ByReason: []query.Count{{Key: "fallback_after_429", Total: 2, Flagged: 2, NearMiss: 2}, {Key: "policy_block", Total: 1, Flagged: 1, Blocked: 1}},
	}
	latest := []query.Row{{RecordID: "r1"}}
	p := nearMissModel(basePage{Title: "t"}, mv, data, latest)

	if p.Rate != "4.5%" || p.LatestAll != "/records?category=flagged&range=24h&team=pay" || !reflect.DeepEqual(p.Latest, latest) || p.Title != "t" {
		t.Fatalf("rate %q latest-all %q", p.Rate, p.LatestAll)
	}
	wantTrend := []chart.Column{
		{Label: "Nov 22 10:00", Title: "2026-11-22 10:00 – 11:00 UTC", Values: []float64{1, 2}, Hrefs: []string{
			"/records?category=blocked&from=2026-11-22T10%3A00%3A00Z&team=pay&to=2026-11-22T11%3A00%3A00Z",
			"/records?category=near&from=2026-11-22T10%3A00%3A00Z&team=pay&to=2026-11-22T11%3A00%3A00Z"}},
		{Label: "Nov 22 11:00", Title: "2026-11-22 11:00 – 12:00 UTC", Values: []float64{3, 3}, Hrefs: []string{
			"/records?category=blocked&from=2026-11-22T11%3A00%3A00Z&team=pay&to=2026-11-22T12%3A00%3A00Z",
			"/records?category=near&from=2026-11-22T11%3A00%3A00Z&team=pay&to=2026-11-22T12%3A00%3A00Z"}},
	}
	if !reflect.DeepEqual(p.Trend.Cols, wantTrend) || p.Trend.Label != "Blocked and nearly blocked requests per 1h0m0s" {
		t.Fatalf("trend %+v", p.Trend)
	}
	// Reasons: a series per ByReason row, in its order; a value per bucket.
	rs := p.ByReasonTS
	if len(rs.Series) != 2 || rs.Series[0].Name != "fallback after 429" || rs.Series[1].Name != "policy block" {
		t.Fatalf("reason series %+v", rs.Series)
	}
	if fmt.Sprint(rs.Cols[0].Values, rs.Cols[1].Values) != "[0 1] [2 0]" {
		t.Fatalf("reason values %v %v", rs.Cols[0].Values, rs.Cols[1].Values)
	}
	if h := rs.Cols[1].Hrefs[0]; h != "/records?category=flagged&from=2026-11-22T11%3A00%3A00Z&reason=fallback_after_429&team=pay&to=2026-11-22T12%3A00%3A00Z" {
		t.Fatalf("reason href %s", h)
	}
	// Breakdowns: four panels; bars link to the flagged records of the key.
	if len(p.Breakdowns) != 4 {
		t.Fatalf("%d breakdowns", len(p.Breakdowns))
	}
	team, reason := p.Breakdowns[0], p.Breakdowns[3]
	if team.Key != "team" || team.Hrefs[0] != "/records?category=flagged&range=24h&team=pay" ||
		!reflect.DeepEqual(team.Chart.Bars[0], chart.Bar{Label: "pay", Values: []float64{4, 5}, Href: team.Hrefs[0], Note: "9 of 100 (9.0%)"}) {
		t.Fatalf("team breakdown %+v", team)
	}
	if reason.Key != "reason" || reason.Chart.Bars[0].Label != "fallback after 429" || reason.Chart.Bars[0].Note != "2 records" ||
		reason.Hrefs[1] != "/records?category=flagged&range=24h&reason=policy_block&team=pay" {
		t.Fatalf("reason breakdown %+v", reason)
	}
	if p.Breakdowns[1].Key != "alias" || len(p.Breakdowns[1].Rows) != 0 || p.Breakdowns[2].Title != "By provider" {
		t.Fatalf("breakdowns %+v", p.Breakdowns)
	}
}

func TestPct(t *testing.T) {
	for _, tc := range []struct {
		a, b uint64
		want string
	}{{0, 0, "–"}, {1, 3, "33.3%"}, {3, 3, "100.0%"}, {0, 5, "0.0%"}} {
		if got := pct(tc.a, tc.b); got != tc.want {
			t.Errorf("pct(%d, %d) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestRecordsModel(t *testing.T) {
	v := view{Range: "7d", Tenant: "acme", Reason: "budget_denied", Category: "flagged", Sampled: true}
	l := query.List{Rows: []query.Row{{RecordID: "a"}}, Next: query.Cursor{Start: mt0, RecordID: "r9"}}
	p := recordsModel(basePage{}, v, l, 100)
	wantChips := []chip{
		{Label: "tenant: acme", Remove: "/records?category=flagged&range=7d&reason=budget_denied&sampled=1"},
		{Label: "reason: budget denied", Remove: "/records?category=flagged&range=7d&sampled=1&tenant=acme"},
		{Label: "category: blocked or nearly blocked", Remove: "/records?range=7d&reason=budget_denied&sampled=1&tenant=acme"},
		{Label: "sampled", Remove: "/records?category=flagged&range=7d&reason=budget_denied&tenant=acme"},
	}
	if !reflect.DeepEqual(p.Chips, wantChips) {
		t.Fatalf("chips\n%+v\nwant\n%+v", p.Chips, wantChips)
	}
	if want := "/records?category=flagged&cursor=" + fmt.Sprint(mt0.Unix()) + ".r9&range=7d&reason=budget_denied&sampled=1&tenant=acme"; p.Next != want {
		t.Fatalf("next %q, want %q", p.Next, want)
	}
	if p.Limit != 100 || len(p.List.Rows) != 1 {
		t.Fatalf("%+v", p)
	}
	if last := recordsModel(basePage{}, view{}, query.List{}, 100); last.Next != "" || len(last.Chips) != 0 {
		t.Fatalf("last page %+v", last)
	}
}

// TestURLFiltersRoundTrip: every filter in urlFilters is parsed from the
// URL, written back into links, and shown (and removable) as a chip.
func TestURLFiltersRoundTrip(t *testing.T) {
	cfg := NewDefaultConfig()
	for _, uf := range urlFilters {
		val := "x_1"
		switch uf.key {
		case "category":
			val = "near"
		case "review":
			val = "pending"
		case "approval":
			val = "violation"
		case "sort":
			val = "cost"
		}
		v, err := parseView(url.Values{uf.key: {val}}, mt0, &cfg)
		if err != nil {
			t.Fatalf("%s: %v", uf.key, err)
		}
		if got := *uf.field(&v); got != val {
			t.Fatalf("%s: parsed %q", uf.key, got)
		}
		if v.values().Get(uf.key) != val {
			t.Fatalf("%s: not in the links: %s", uf.key, v.values().Encode())
		}
		cs := chips(v, "/records")
		if len(cs) != 1 || !strings.HasPrefix(cs[0].Label, uf.label+": ") || strings.Contains(cs[0].Remove, uf.key+"=") {
			t.Fatalf("%s: chips %+v", uf.key, cs)
		}
	}
}

func TestRecordModel(t *testing.T) {
	d := query.Detail{Decision: record.Decision{RecordID: "rec1", Version: 2}, Versions: []query.Version{{Version: 2}, {Version: 1}}}
	d.Decision.Oversight = []record.Oversight{{EventID: "dash-00000000000000000000000000000001"}}
	tests := []struct {
		name   string
		d      query.Detail
		in     recordIn
		check  func(recordPage) bool
		expect string
	}{
		{"latest, reviewer, proofs", d, recordIn{ID: "rec1", CanReview: true, EventID: "dash-e", Bucket: "b", Proofs: true},
			func(p recordPage) bool {
				return p.Latest && p.CanReview && p.EventID == "dash-e" && p.Bucket == "b" && p.Version == 2 &&
					p.ProveCmd == "auditline prove --version 2 rec1" && p.ProofURL == "/records/rec1/proof?v=2" &&
					reflect.DeepEqual(p.Outcomes, []string{"approve", "flag", "reject", "escalate", "override"}) && strings.Contains(p.JSON, `"record_id": "rec1"`) && p.Dec.RecordID == "rec1"
			}, "latest page with review form and proof link"},
		{"older version, no proofs", query.Detail{Decision: record.Decision{RecordID: "rec1", Version: 1}, Versions: d.Versions}, recordIn{ID: "rec1"},
			func(p recordPage) bool {
				return !p.Latest && !p.CanReview && p.ProofURL == "" && p.ProveCmd == "auditline prove --version 1 rec1"
			},
			"not latest, no proof URL"},
		{"posted review arrived", d, recordIn{ID: "rec1", Posted: "dash-00000000000000000000000000000001"},
			func(p recordPage) bool {
				return p.Posted == "" && p.Flash == "Your review is now part of the record (version 2)."
			}, "flash, no pending notice"},
		{"posted review not yet in", d, recordIn{ID: "rec1", Posted: "dash-00000000000000000000000000000002"},
			func(p recordPage) bool { return p.Posted == "dash-00000000000000000000000000000002" && p.Flash == "" },
			"pending notice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := recordModel(basePage{}, tt.d, tt.in)
			if err != nil || !tt.check(p) {
				t.Fatalf("want %s; got %+v (err %v)", tt.expect, p, err)
			}
		})
	}
}

func TestSamplingModel(t *testing.T) {
	data := query.SamplingPage{
		Step:     time.Hour,
		Tiers:    []query.Tier{{Tier: "high", Sampled: 4, Reviewed: 1}, {Tier: "", Sampled: 2, Reviewed: 3}},
		Progress: []query.ReviewPoint{{Start: mt0, Sampled: 3, Reviewed: 1}},
	}
	admin := func(tenants ...string) auth.Principal {
		return auth.Principal{Name: "a", Role: auth.Admin, Tenants: tenants}
	}
	p := samplingModel(basePage{}, mv, data, samplingIn{Principal: admin("*"), Return: "/sampling?range=24h", EventID: "dash-e"})
	if p.Sampled != 6 || p.Reviewed != 4 || p.Done != "66.7%" || !p.CanBurst || p.BurstNote != "" || p.Return != "/sampling?range=24h" || p.EventID != "dash-e" {
		t.Fatalf("%+v", p)
	}
	if fmt.Sprint(p.TierNames) != "[high ]" {
		t.Fatalf("tier names %q", p.TierNames)
	}
	// Pending never goes below zero (a tier with more reviews than samples
	// after a replay); the unnamed tier shows as (none).
	want := []chart.Bar{
		{Label: "high", Values: []float64{1, 3}, Href: "/records?range=24h&review=pending&sampled=1&team=pay&tier=high", Note: "1 of 4 reviewed"},
		{Label: "(none)", Values: []float64{3, 0}, Href: "/records?range=24h&review=pending&sampled=1&team=pay", Note: "3 of 2 reviewed"},
	}
	if !reflect.DeepEqual(p.TierChart.Bars, want) {
		t.Fatalf("tier bars\n%+v\nwant\n%+v", p.TierChart.Bars, want)
	}
	c := p.Progress.Cols[0]
	if fmt.Sprint(c.Values) != "[1 2]" || c.Title != "2026-11-22 10:00 UTC" ||
		c.Hrefs[1] != "/records?from=2026-11-22T10%3A00%3A00Z&review=pending&sampled=1&team=pay&to=2026-11-22T11%3A00%3A00Z" {
		t.Fatalf("progress %+v", c)
	}
	for _, tc := range []struct {
		p        auth.Principal
		can      bool
		withNote bool
	}{
		{admin("acme"), false, true},
		{auth.Principal{Role: auth.Reviewer, Tenants: []string{"*"}}, false, false},
		{auth.Principal{Role: auth.Viewer, Tenants: []string{"acme"}}, false, false},
	} {
		p := samplingModel(basePage{}, mv, data, samplingIn{Principal: tc.p})
		if p.CanBurst != tc.can || (p.BurstNote != "") != tc.withNote {
			t.Errorf("%+v: can burst %v, note %q", tc.p, p.CanBurst, p.BurstNote)
		}
	}
}
