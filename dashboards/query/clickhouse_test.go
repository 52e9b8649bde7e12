package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/store"
)

// env is a seeded test database.
type env struct {
	ch       *query.ClickHouse
	optimize func() // OPTIMIZE … FINAL of the records table, every partition merged
	ins      func(recs []seed.Positioned)
	raw      func(body string, at time.Time, partitions ...int32)
	exec     func(q string) // a statement on the test's database ({db} replaced)
	recs     []seed.Positioned
	end      time.Time
}

func setup(t *testing.T, n int) env {
	t.Helper()
	addr := testenv.ClickHouse(t)
	db := testenv.Name(t)
	ctx := context.Background()
	conn := seedtest.Schema(t, addr, db)
	end := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	recs := seed.Generate(n, seed.Options{End: end, Span: 7 * 24 * time.Hour, Seed: 1})
	if err := seed.Insert(ctx, conn, db, query.DefaultTable, recs); err != nil {
		t.Fatal(err)
	}
	ch, err := query.Open(query.Config{Addr: []string{addr}, Database: db, Username: "default", Table: query.DefaultTable, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	ins := func(more []seed.Positioned) {
		t.Helper()
		if err := seed.Insert(ctx, conn, db, query.DefaultTable, more); err != nil {
			t.Fatal(err)
		}
	}
	raw := func(body string, at time.Time, partitions ...int32) {
		t.Helper()
		var ev struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal([]byte(body), &ev)
		if err := seed.InsertOversight(ctx, conn, db, []byte(body), ev.EventID, at, partitions...); err != nil {
			t.Fatal(err)
		}
	}
	optimize := func() { t.Helper(); testenv.OptimizeFinal(t, conn, db, query.DefaultTable) }
	exec := func(q string) {
		t.Helper()
		if err := conn.Exec(ctx, strings.ReplaceAll(q, "{db}", db)); err != nil {
			t.Fatal(err)
		}
	}
	return env{ch: ch, optimize: optimize, ins: ins, raw: raw, exec: exec, recs: recs, end: end}
}

// want computes the expected counts from the generated records.
func count(recs []seed.Positioned, keep func(*record.Decision) bool) (total, flagged, blocked, near uint64) {
	for i := range recs {
		d := &recs[i].D
		if !keep(d) {
			continue
		}
		total++
		b := d.Outcome.Status == record.OutcomeBlocked
		if b {
			blocked++
		}
		if d.NearMiss.Flagged || b {
			flagged++
		}
		if d.NearMiss.Flagged && !b {
			near++
		}
	}
	return
}

// TestRecordBeforeItsVersionsRow: decision_versions is filled by a
// materialized view after the INSERT into the records table commits, so a
// reader can see a record whose versions row is not there yet (a 404 on
// the record page in a loaded CI run). Emptying decision_versions stands in
// for that moment: the record must still be found, every version of it.
func TestRecordBeforeItsVersionsRow(t *testing.T) {
	testenv.ForEachClickHouse(t, testRecordBeforeItsVersionsRow)
}

func testRecordBeforeItsVersionsRow(t *testing.T) {
	e := setup(t, 20)
	ctx := context.Background()
	id := e.recs[0].D.RecordID
	before, err := e.ch.Record(ctx, query.Filter{Tenants: []string{"*"}}, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.exec("TRUNCATE TABLE `{db}`.`" + store.TableVersions + "`")
	after, err := e.ch.Record(ctx, query.Filter{Tenants: []string{"*"}}, id, 0)
	if err != nil {
		t.Fatalf("record %s without its decision_versions row: %v", id, err)
	}
	if len(after.Versions) != len(before.Versions) || after.Versions[0].Version != before.Versions[0].Version {
		t.Fatalf("versions %+v, want %+v", after.Versions, before.Versions)
	}
	if _, err := e.ch.Record(ctx, query.Filter{Tenants: []string{"*"}}, "00000000000000000000000000000000", 0); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("a record that does not exist: %v", err)
	}
}

func TestClickHouseQueries(t *testing.T) { testenv.ForEachClickHouse(t, testClickHouseQueries) }

func testClickHouseQueries(t *testing.T) {
	e := setup(t, 5000)
	ctx := context.Background()
	acme := query.Filter{Tenants: []string{"acme"}, From: e.end.Add(-8 * 24 * time.Hour), To: e.end.Add(time.Hour)}
	isAcme := func(d *record.Decision) bool { return d.Identity.Tenant == "acme" }

	t.Run("near-miss totals and breakdowns are exact and tenant-scoped", func(t *testing.T) {
		p, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		total, flagged, blocked, near := count(e.recs, isAcme)
		if p.Totals.Total != total || p.Totals.Flagged != flagged || p.Totals.Blocked != blocked || p.Totals.NearMiss != near {
			t.Fatalf("totals %+v, want total %d flagged %d blocked %d near %d", p.Totals, total, flagged, blocked, near)
		}
		var sumB, sumN uint64
		for _, pt := range p.Trend {
			sumB += pt.Blocked
			sumN += pt.NearMiss
		}
		if sumB != blocked || sumN != near {
			t.Fatalf("trend sums blocked %d near %d, want %d %d", sumB, sumN, blocked, near)
		}
		if len(p.Trend) == 0 || len(p.Trend) > query.MaxBuckets+2 {
			t.Fatalf("trend has %d buckets", len(p.Trend))
		}
		for _, c := range p.ByTeam {
			tt, tf, _, _ := count(e.recs, func(d *record.Decision) bool { return isAcme(d) && d.Identity.TeamAlias == c.Key })
			if c.Total != tt || c.Flagged != tf {
				t.Errorf("team %s: %+v, want total %d flagged %d", c.Key, c, tt, tf)
			}
		}
		if len(p.ByReason) == 0 || len(p.ByAlias) == 0 || len(p.ByProvider) == 0 || len(p.Reasons) == 0 {
			t.Fatalf("empty breakdowns: %+v", p)
		}
		// The fan-out form for many groups gives the same page.
		query.SetMaxGroups(e.ch, 10)
		defer query.SetMaxGroups(e.ch, 50_000)
		q, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(q) != fmt.Sprint(p) {
			t.Fatalf("fan-out form differs:\n%+v\n%+v", q, p)
		}
	})

	t.Run("tenant scoping", func(t *testing.T) {
		_, err := e.ch.NearMiss(ctx, query.Filter{})
		if !errors.Is(err, query.ErrNoTenant) {
			t.Fatalf("no tenant: %v", err)
		}
		_, err = e.ch.Records(ctx, query.Filter{Tenants: []string{"acme"}, Tenant: "globex"}, query.Cursor{}, 10)
		if !errors.Is(err, query.ErrNoTenant) {
			t.Fatalf("tenant outside the list: %v", err)
		}
		var globexID string
		for _, r := range e.recs {
			if r.D.Identity.Tenant == "globex" {
				globexID = r.D.RecordID
				break
			}
		}
		if _, err := e.ch.Record(ctx, query.Filter{Tenants: []string{"acme"}}, globexID, 0); !errors.Is(err, query.ErrNotFound) {
			t.Fatalf("other tenant's record: %v", err)
		}
		if _, err := e.ch.Record(ctx, query.Filter{Tenants: []string{"*"}}, globexID, 0); err != nil {
			t.Fatalf("all tenants: %v", err)
		}
	})

	t.Run("injection attempts are values, not SQL", func(t *testing.T) {
		for _, v := range []string{"x' OR 1=1 --", `\' OR 1=1`, "payments') OR ('1'='1"} {
			f := acme
			f.Team = v
			p, err := e.ch.NearMiss(ctx, f)
			if err != nil || p.Totals.Total != 0 {
				t.Fatalf("team %q: total %d err %v", v, p.Totals.Total, err)
			}
			l, err := e.ch.Records(ctx, query.Filter{Tenants: []string{v}}, query.Cursor{}, 10)
			if err != nil || len(l.Rows) != 0 {
				t.Fatalf("tenant %q: %d rows err %v", v, len(l.Rows), err)
			}
		}
	})

	t.Run("keyset pages cover the list exactly once", func(t *testing.T) {
		f := acme
		f.Category = query.Flagged
		_, flagged, _, _ := count(e.recs, isAcme)
		seen := map[string]bool{}
		var cur query.Cursor
		for pages := 0; ; pages++ {
			l, err := e.ch.Records(ctx, f, cur, 37)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range l.Rows {
				if seen[r.RecordID] || r.Tenant != "acme" || !(r.NearMiss || r.Outcome == "blocked") {
					t.Fatalf("row %+v (dup %v)", r, seen[r.RecordID])
				}
				seen[r.RecordID] = true
			}
			if l.Next.IsZero() {
				break
			}
			cur = l.Next
		}
		if uint64(len(seen)) != flagged {
			t.Fatalf("listed %d, want %d", len(seen), flagged)
		}
	})

	t.Run("record round-trips through the table", func(t *testing.T) {
		for _, i := range []int{0, 1, 2, 3} {
			// Pick records with nested lists of every kind.
			want := e.recs[i].D
			for j := i; j < len(e.recs); j++ {
				if len(e.recs[j].D.Routing.Attempts) == 2 || (i == 0 && e.recs[j].D.Oversight != nil) {
					want = e.recs[j].D
					break
				}
			}
			d, err := e.ch.Record(ctx, query.Filter{Tenants: []string{"*"}}, want.RecordID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Missing) != 0 {
				t.Errorf("missing columns: %v", d.Missing)
			}
			normalise(&want)
			got, _ := json.Marshal(&d.Decision)
			exp, _ := json.Marshal(&want)
			if string(got) != string(exp) {
				t.Fatalf("decoded record differs:\n got %s\nwant %s", got, exp)
			}
			if d.Partition < 0 || len(d.Versions) != 1 {
				t.Fatalf("position %d/%d versions %+v", d.Partition, d.Offset, d.Versions)
			}
		}
	})

	t.Run("a new version replaces the old one in counts, lists and detail", func(t *testing.T) {
		var v1 seed.Positioned
		for _, r := range e.recs {
			if isAcme(&r.D) && r.D.Risk.Sampled && r.D.Risk.ReviewStatus == "" && r.D.Outcome.Status == record.OutcomeBlocked {
				v1 = r
				break
			}
		}
		if v1.D.RecordID == "" {
			t.Skip("no pending sampled blocked record in the seed")
		}
		before, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		v2 := v1
		v2.D.Version, v2.D.Completeness = 2, record.Amended
		v2.D.Oversight = []record.Oversight{{EventID: "dash-x", Kind: "review", Outcome: "flag", Reviewer: "rita", Role: "reviewer", Rationale: "why", At: record.Time(e.end.UnixMilli())}}
		v2.D.Risk.ReviewStatus = "flag"
		v2.Offset = 999999
		e.ins([]seed.Positioned{v2})
		after, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		if after.Totals != before.Totals {
			t.Fatalf("a second version changed the totals: %+v → %+v", before.Totals, after.Totals)
		}
		d, err := e.ch.Record(ctx, acme, v1.D.RecordID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d.Decision.Version != 2 || len(d.Versions) != 2 || d.Offset != 999999 || len(d.Decision.Oversight) != 1 || d.Decision.Oversight[0].Reviewer != "rita" {
			t.Fatalf("latest: v%d versions %+v offset %d oversight %+v", d.Decision.Version, d.Versions, d.Offset, d.Decision.Oversight)
		}
		d1, err := e.ch.Record(ctx, acme, v1.D.RecordID, 1)
		if err != nil || d1.Decision.Version != 1 || len(d1.Decision.Oversight) != 0 {
			t.Fatalf("v1: %+v %v", d1.Decision.Version, err)
		}
		f := acme
		f.Review = "flag"
		l, err := e.ch.Records(ctx, f, query.Cursor{}, 500)
		if err != nil || !slices.ContainsFunc(l.Rows, func(r query.Row) bool { return r.RecordID == v1.D.RecordID && r.Version == 2 }) {
			t.Fatalf("flagged list misses v2: %v", err)
		}
		f.Review = query.Pending
		f.Sampled = true
		l, err = e.ch.Records(ctx, f, query.Cursor{}, 500)
		if err != nil || slices.ContainsFunc(l.Rows, func(r query.Row) bool { return r.RecordID == v1.D.RecordID }) {
			t.Fatalf("pending list still has the reviewed record: %v", err)
		}
	})

	// docs/dashboards.md promises ?v=N (and its inclusion proof) for every
	// version: merges must not take the older ones away. Until the sorting
	// key of decision_records held the version, ReplacingMergeTree(version)
	// collapsed a record's versions in the first merge, and ?v=1 answered 404.
	t.Run("older versions survive merges", func(t *testing.T) {
		var v1 seed.Positioned
		for _, r := range e.recs {
			if isAcme(&r.D) && r.D.Outcome.Status != record.OutcomeBlocked && !r.D.NearMiss.Flagged {
				v1 = r
				break
			}
		}
		v2, v3 := v1, v1
		v2.D.Version, v2.D.Completeness, v2.D.Risk.ReviewStatus, v2.Offset = 2, record.Amended, "approve", 999990
		v3.D.Version, v3.D.Completeness, v3.D.Risk.ReviewStatus, v3.Offset = 3, record.Amended, "flag", 999991
		e.ins([]seed.Positioned{v2})
		e.ins([]seed.Positioned{v3})
		before, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		e.optimize()
		for _, want := range []struct{ ask, version uint32 }{{0, 3}, {1, 1}, {2, 2}, {3, 3}} {
			d, err := e.ch.Record(ctx, acme, v1.D.RecordID, want.ask)
			if err != nil {
				t.Fatalf("after OPTIMIZE FINAL, version %d: %v", want.ask, err)
			}
			if d.Decision.Version != want.version || len(d.Versions) != 3 {
				t.Fatalf("after OPTIMIZE FINAL, ?v=%d shows v%d with versions %+v, want v%d of 3", want.ask, d.Decision.Version, d.Versions, want.version)
			}
			if want.ask == 2 && (d.Offset != 999990 || d.Decision.Risk.ReviewStatus != "approve") {
				t.Fatalf("?v=2 after OPTIMIZE FINAL: offset %d review %q", d.Offset, d.Decision.Risk.ReviewStatus)
			}
		}
		after, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		if after.Totals != before.Totals {
			t.Fatalf("the merge changed the totals: %+v → %+v", before.Totals, after.Totals)
		}
	})

	t.Run("a version that moves a record to another tenant takes it away", func(t *testing.T) {
		var v1 seed.Positioned
		for _, r := range e.recs {
			if isAcme(&r.D) && r.D.Outcome.Status == record.OutcomeBlocked && !r.D.Risk.Sampled {
				v1 = r
				break
			}
		}
		before, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		v2 := v1
		v2.D.Version, v2.D.Completeness, v2.Offset = 2, record.Amended, 888888
		v2.D.Identity.Tenant = "globex"
		e.ins([]seed.Positioned{v2})
		after, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		if after.Totals.Total != before.Totals.Total-1 || after.Totals.Blocked != before.Totals.Blocked-1 {
			t.Fatalf("acme still counts the moved record: %+v → %+v", before.Totals, after.Totals)
		}
		if _, err := e.ch.Record(ctx, acme, v1.D.RecordID, 0); !errors.Is(err, query.ErrNotFound) {
			t.Fatalf("acme can open the moved record: %v", err)
		}
		if _, err := e.ch.Record(ctx, acme, v1.D.RecordID, 1); !errors.Is(err, query.ErrNotFound) {
			t.Fatalf("acme can open the moved record's v1: %v", err)
		}
		d, err := e.ch.Record(ctx, query.Filter{Tenants: []string{"globex"}}, v1.D.RecordID, 0)
		if err != nil || d.Decision.Version != 2 || len(d.Versions) != 2 {
			t.Fatalf("globex: %v %+v", err, d.Versions)
		}
		f := acme
		f.Category = query.Blocked
		l, err := e.ch.Records(ctx, f, query.Cursor{}, query.MaxLimit)
		if err != nil || slices.ContainsFunc(l.Rows, func(r query.Row) bool { return r.RecordID == v1.D.RecordID }) {
			t.Fatalf("acme's list still has the moved record: %v", err)
		}
	})

	t.Run("burst switches come from raw_events", func(t *testing.T) {
		p, err := e.ch.Sampling(ctx, acme)
		if err != nil || p.Burst.Known || len(p.Switches) != 0 {
			t.Fatalf("before any switch: %+v %v", p.Burst, err)
		}
		e.raw(`{"schema":"auditline.oversight.v1","event_id":"sw-1","kind":"sampling_control","occurred_at":"2026-11-22T09:00:00Z","reviewer":{"id":"carol","role":"admin"},"rationale":"incident 41","sampling":{"burst":true,"tiers":["high"]}}`, e.end.Add(-3*time.Hour), 0, 1, 2)
		e.raw(`{"schema":"auditline.oversight.v1","event_id":"sw-2","kind":"sampling_control","occurred_at":"2026-11-22T10:00:00+01:00","reviewer":{"id":"dan","role":"admin"},"rationale":"over","sampling":{"burst":false}}`, e.end.Add(-2*time.Hour), 0, 1, 2)
		e.raw(`{"schema":"auditline.oversight.v1","event_id":"rv-1","kind":"review","occurred_at":"2026-11-22T11:00:00Z","reviewer":{"id":"rita"},"request_key":"k","outcome":"approve","rationale":"mentions sampling_control"}`, e.end.Add(-time.Hour))
		p, err = e.ch.Sampling(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		// sw-2 happened at 09:00Z (10:00+01:00), sw-1 at 09:00Z too: ties keep
		// the newest received first.
		if len(p.Switches) != 2 || !p.Burst.Known || p.Burst.EventID != "sw-2" || p.Burst.On || p.Burst.By != "dan" {
			t.Fatalf("switches %+v", p.Switches)
		}
		if p.Switches[1].EventID != "sw-1" || !p.Switches[1].On || p.Switches[1].Tiers[0] != "high" || p.Switches[1].Rationale != "incident 41" {
			t.Fatalf("older switch %+v", p.Switches[1])
		}
	})

	t.Run("sampling", func(t *testing.T) {
		p, err := e.ch.Sampling(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		var sampled, reviewed uint64
		for _, tr := range p.Tiers {
			sampled += tr.Sampled
			reviewed += tr.Reviewed
		}
		ws, _, _, _ := count(e.recs, func(d *record.Decision) bool { return isAcme(d) && d.Risk.Sampled })
		wr, _, _, _ := count(e.recs, func(d *record.Decision) bool { return isAcme(d) && d.Risk.ReviewStatus != "" })
		wr++ // the version added above
		if sampled != ws || reviewed != wr || ws == 0 {
			t.Fatalf("sampled %d reviewed %d, want %d %d", sampled, reviewed, ws, wr)
		}
		if !slices.IsSortedFunc(p.Tiers, func(a, b query.Tier) int {
			if query.TierLess(a.Tier, b.Tier) {
				return -1
			}
			return 1
		}) {
			t.Errorf("tiers not ordered: %+v", p.Tiers)
		}
		for _, r := range p.Queue {
			if !r.Sampled || r.ReviewStatus != "" || r.Tenant != "acme" {
				t.Fatalf("queue row %+v", r)
			}
		}
		if uint64(len(p.Queue)) == 0 || uint64(len(p.Queue)) > ws-wr {
			t.Fatalf("queue has %d rows, pending %d", len(p.Queue), ws-wr)
		}
	})
}

// normalise gives want the forms the table keeps: nil lists read back as
// empty ones.
func normalise(d *record.Decision) {
	b, _ := json.Marshal(d)
	var back record.Decision
	_ = json.Unmarshal(b, &back)
	*d = back
}
