package query

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

var (
	t0   = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	hour = int64(time.Hour / time.Second)
)

func bucket(i int) uint32 { return uint32(t0.Unix() + int64(i)*hour) }

func TestNearMissPage(t *testing.T) {
	combos := []comboRow{
		{bucket(0), "pay", "gpt-4o", "azure", counts{10, 1, 2}},
		{bucket(0), "pay", "gpt-4o", "openai", counts{5, 0, 1}},
		{bucket(2), "ops", "claude", "anthropic", counts{8, 3, 0}},
		{bucket(2), "pay", "claude", "anthropic", counts{2, 0, 0}},
	}
	reasons := []reasonRow{
		{bucket(0), "fallback_after_429", 2, 0},
		{bucket(0), "policy_block", 1, 1},
		{bucket(2), "policy_block", 3, 3},
	}
	g, r := newNearMissGroups(), newNearMissReasons()
	for i := range combos {
		g.addCombo(&combos[i])
	}
	for i := range reasons {
		r.add(&reasons[i])
	}
	p := nearMissPage(t0, t0.Add(4*time.Hour), time.Hour, g, r)
	want := NearMissPage{
		Step:   time.Hour,
		Totals: Count{Total: 25, Flagged: 7, Blocked: 4, NearMiss: 3},
		Trend: []Point{
			{Start: t0, Blocked: 1, NearMiss: 3, Total: 15},
			{Start: t0.Add(time.Hour)},
			{Start: t0.Add(2 * time.Hour), Blocked: 3, Total: 10},
			{Start: t0.Add(3 * time.Hour)},
		},
		Reasons: []ReasonPoint{
			{Start: t0, Reason: "fallback_after_429", Count: 2},
			{Start: t0, Reason: "policy_block", Count: 1},
			{Start: t0.Add(2 * time.Hour), Reason: "policy_block", Count: 3},
		},
		// pay and ops are both flagged 3 times: more records first.
		ByTeam:     []Count{{Key: "pay", Total: 17, Flagged: 4, Blocked: 1, NearMiss: 3}, {Key: "ops", Total: 8, Flagged: 3, Blocked: 3}},
		ByAlias:    []Count{{Key: "gpt-4o", Total: 15, Flagged: 4, Blocked: 1, NearMiss: 3}, {Key: "claude", Total: 10, Flagged: 3, Blocked: 3}},
		ByProvider: []Count{{Key: "anthropic", Total: 10, Flagged: 3, Blocked: 3}, {Key: "azure", Total: 10, Flagged: 3, Blocked: 1, NearMiss: 2}, {Key: "openai", Total: 5, Flagged: 1, NearMiss: 1}},
		ByReason:   []Count{{Key: "policy_block", Total: 4, Flagged: 4, Blocked: 4}, {Key: "fallback_after_429", Total: 2, Flagged: 2, NearMiss: 2}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", p, want)
	}

	// The fan-out form (one row per bucket and one per combination) adds up
	// to the same page.
	fg := newNearMissGroups()
	for _, b := range []struct {
		i int
		c counts
	}{{0, counts{15, 1, 3}}, {2, counts{10, 3, 0}}} {
		fg.addFanOut(&fanOutRow{Kind: "b", K1: strconv.FormatUint(uint64(bucket(b.i)), 10), counts: b.c})
	}
	for _, c := range combos {
		fg.addFanOut(&fanOutRow{Kind: "d", K1: c.Team, K2: c.Alias, K3: c.Provider, counts: c.counts})
	}
	if fp := nearMissPage(t0, t0.Add(4*time.Hour), time.Hour, fg, r); !reflect.DeepEqual(fp, want) {
		t.Fatalf("fan-out form gives\n%+v\nwant\n%+v", fp, want)
	}
}

func TestTop(t *testing.T) {
	m := map[string]*Count{}
	for i := range TopN + 5 {
		k := fmt.Sprintf("k%02d", i)
		m[k] = &Count{Key: k, Total: uint64(i % 3)}
	}
	got := top(m, byTotal)
	if len(got) != TopN {
		t.Fatalf("%d rows, want %d", len(got), TopN)
	}
	// Totals 2 first (k02, k05, …, ties by key), then 1s, then 0s.
	if got[0].Key != "k02" || got[1].Key != "k05" || got[6].Key != "k01" || got[6].Total != 1 {
		t.Fatalf("order %v", got)
	}
	if len(top(map[string]*Count{}, byTotal)) != 0 {
		t.Fatal("empty map gives rows")
	}
}

func TestSamplingPage(t *testing.T) {
	last := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	rows := []samplingRow{
		{bucket(0), "low", 0, "", "", 100, 0.01, last(0)},
		{bucket(0), "low", 1, "baseline", "", 3, 0.01, last(0)},
		{bucket(1), "low", 1, "baseline", "approve", 2, 0.02, last(1)}, // newer: its rate wins
		{bucket(1), "critical", 1, "always", "flag", 4, 1, last(1)},
		{bucket(1), "critical", 1, "burst", "", 1, 1, last(1)},
		{bucket(1), "custom", 0, "", "", 7, 0, last(1)},
		{bucket(2), "high", 1, "burst", "approve", 5, 0.5, last(2)},
	}
	g := newSamplingGroups()
	for i := range rows {
		g.add(&rows[i])
	}
	queue := []Row{{RecordID: "a", Tier: "low"}, {RecordID: "b", Tier: "critical"}, {RecordID: "c", Tier: "low"}, {RecordID: "d", Tier: "high"}, {RecordID: "e", Tier: "critical"}}
	sw := []Burst{{Known: true, EventID: "new"}, {Known: true, EventID: "old"}}
	p := samplingPage(t0, t0.Add(3*time.Hour), time.Hour, g, queue, sw)
	want := SamplingPage{
		Step: time.Hour,
		Tiers: []Tier{
			{Tier: "critical", Total: 5, Sampled: 5, Burst: 1, Always: 4, Reviewed: 4, Rate: 1},
			{Tier: "high", Total: 5, Sampled: 5, Burst: 5, Reviewed: 5, Rate: 0.5},
			{Tier: "low", Total: 105, Sampled: 5, Baseline: 5, Reviewed: 2, Rate: 0.02},
			{Tier: "custom", Total: 7},
		},
		Outcomes: []Count{{Key: "approve", Total: 7}, {Key: "flag", Total: 4}},
		Progress: []ReviewPoint{{Start: t0, Sampled: 3}, {Start: t0.Add(time.Hour), Sampled: 7, Reviewed: 6}, {Start: t0.Add(2 * time.Hour), Sampled: 5, Reviewed: 5}},
		Queue:    []Row{{RecordID: "b", Tier: "critical"}, {RecordID: "e", Tier: "critical"}, {RecordID: "d", Tier: "high"}, {RecordID: "a", Tier: "low"}, {RecordID: "c", Tier: "low"}},
		Burst:    Burst{Known: true, EventID: "new"},
		Switches: sw,
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", p, want)
	}
	if e := samplingPage(t0, t0.Add(time.Hour), time.Hour, newSamplingGroups(), nil, nil); e.Burst.Known || len(e.Tiers) != 0 || len(e.Progress) != 1 {
		t.Fatalf("empty page %+v", e)
	}
}

func TestBurstSwitches(t *testing.T) {
	sw := func(id, at string, on bool) string {
		return `{"schema":"auditline.oversight.v1","event_id":"` + id + `","kind":"sampling_control","occurred_at":"` + at +
			`","reviewer":{"id":"carol","role":"admin"},"rationale":"why","sampling":{"burst":` + strconv.FormatBool(on) + `,"tiers":["high"]}}`
	}
	t.Run("newest first, one per event id, non-switches skipped", func(t *testing.T) {
		got := burstSwitches([]string{
			sw("b", "2026-11-22T10:00:00+01:00", false), // 09:00Z, received last
			sw("b", "2026-11-22T10:00:00+01:00", false), // its copy on another partition
			`{"kind":"review","event_id":"r","sampling":{"burst":true}}`,
			`{"kind":"sampling_control","event_id":"nosampling"}`,
			`not json`,
			sw("a", "2026-11-22T09:00:00Z", true), // same instant, received earlier
			sw("c", "2026-11-22T11:00:00Z", true),
		})
		var ids []string
		for _, b := range got {
			ids = append(ids, b.EventID)
		}
		if fmt.Sprint(ids) != "[c b a]" {
			t.Fatalf("switches %v", ids)
		}
		if c := got[0]; !c.Known || !c.On || c.By != "carol" || c.Role != "admin" || c.Rationale != "why" || c.Tiers[0] != "high" || !c.At.Equal(time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)) || c.At.Location() != time.UTC {
			t.Fatalf("switch %+v", c)
		}
	})
	t.Run("at most maxSwitches", func(t *testing.T) {
		var bodies []string
		for i := range 3 * maxSwitches {
			bodies = append(bodies, sw(fmt.Sprint(i), t0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), true))
		}
		got := burstSwitches(bodies)
		if len(got) != maxSwitches || got[0].EventID != fmt.Sprint(3*maxSwitches-1) {
			t.Fatalf("%d switches, first %s", len(got), got[0].EventID)
		}
	})
	if got := burstSwitches(nil); len(got) != 0 {
		t.Fatalf("no bodies: %v", got)
	}
}

func TestTierLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"critical", "high", true}, {"high", "critical", false}, {"low", "custom", true}, {"alpha", "beta", true}, {"", "minimal", false}, {"x", "x", false}} {
		if got := TierLess(tc.a, tc.b); got != tc.want {
			t.Errorf("TierLess(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// fakeRows plays back scripted rows for each.
type fakeRows struct {
	driver.Rows // nil: other methods panic
	vals        [][]any
	scanErr     error
	err         error
	i           int
	closed      bool
}

func (r *fakeRows) Next() bool { r.i++; return r.i <= len(r.vals) }
func (r *fakeRows) Scan(dest ...any) error {
	if r.scanErr != nil {
		return r.scanErr
	}
	for j, d := range dest {
		reflect.ValueOf(d).Elem().Set(reflect.ValueOf(r.vals[r.i-1][j]))
	}
	return nil
}
func (r *fakeRows) Err() error   { return r.err }
func (r *fakeRows) Close() error { r.closed = true; return nil }

type fakeConn struct {
	driver.Conn
	rows    *fakeRows
	openErr error
}

func (c *fakeConn) Query(context.Context, string, ...any) (driver.Rows, error) {
	if c.openErr != nil {
		return nil, c.openErr
	}
	return c.rows, nil
}

func TestEach(t *testing.T) {
	boom := errors.New("boom")
	two := func() *fakeRows { return &fakeRows{vals: [][]any{{"a", "String"}, {"b", "UInt8"}}} }
	tests := []struct {
		name    string
		conn    *fakeConn
		fnErr   error
		wantErr string
		want    []columnRow
	}{
		{name: "every row in order", conn: &fakeConn{rows: two()}, want: []columnRow{{"a", "String"}, {"b", "UInt8"}}},
		{name: "query fails", conn: &fakeConn{openErr: boom}, wantErr: "columns: boom"},
		{name: "scan fails", conn: &fakeConn{rows: &fakeRows{vals: [][]any{{"a", "b"}}, scanErr: boom}}, wantErr: "columns: boom"},
		{name: "rows.Err", conn: &fakeConn{rows: &fakeRows{vals: [][]any{{"a", "String"}}, err: boom}}, wantErr: "columns: boom", want: []columnRow{{"a", "String"}}},
		{name: "fn stops it", conn: &fakeConn{rows: two()}, fnErr: boom, wantErr: "columns: boom", want: []columnRow{{"a", "String"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []columnRow
			err := each(context.Background(), tt.conn, "columns", "q", nil, func(r *columnRow) error {
				got = append(got, *r)
				return tt.fnErr
			})
			if (err == nil) != (tt.wantErr == "") || (err != nil && (err.Error() != tt.wantErr || !errors.Is(err, boom))) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("rows %v, want %v", got, tt.want)
			}
			if tt.conn.rows != nil && !tt.conn.rows.closed {
				t.Fatal("rows not closed")
			}
		})
	}
}
