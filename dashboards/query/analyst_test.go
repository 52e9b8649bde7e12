package query_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
)

func TestAnalystReads(t *testing.T) { testenv.ForEachClickHouse(t, testAnalystReads) }

// testAnalystReads: the reads behind the analysts' tools — dropdown values,
// totals, sorts, search, approval filters, exports, usage with the previous
// period, review throughput and the access log — are exact against the
// generated data, tenant-scoped, and never count an access record as a
// request.
func testAnalystReads(t *testing.T) {
	e := setup(t, 3000)
	ctx := context.Background()
	from, to := e.end.Add(-8*24*time.Hour), e.end.Add(time.Hour)
	acme := query.Filter{Tenants: []string{"acme"}, From: from, To: to}
	isAcme := func(d *record.Decision) bool { return d.Identity.Tenant == "acme" }

	// Records with an approval status, a reviewed one, and access records.
	var extra []seed.Positioned
	mk := func(key, tenant string, start time.Time, mod func(*record.Decision)) {
		d := e.recs[0].D
		d.Request.RequestKey, d.RecordID, d.Version = key, record.ID(key), 1
		d.Request.StartTime = record.TimeOf(start)
		d.Identity.Tenant = tenant
		d.Oversight, d.Approval, d.Access = nil, record.Approval{}, record.Access{}
		d.Risk.ReviewStatus = ""
		mod(&d)
		extra = append(extra, seed.Positioned{D: d, Partition: 0, Offset: int64(1_000_000 + len(extra))})
	}
	at := e.end.Add(-time.Hour)
	mk("appr-ok", "acme", at, func(d *record.Decision) {
		d.Approval = record.Approval{Required: true, Status: record.ApprovalExecutedAfter, Approvers: []string{"lee", "rita"}}
	})
	mk("appr-bad", "acme", at, func(d *record.Decision) {
		d.Approval = record.Approval{Required: true, Status: record.ApprovalExecutedWithout}
	})
	mk("appr-rej", "acme", at, func(d *record.Decision) {
		d.Approval = record.Approval{Required: true, Status: record.ApprovalExecutedRejected}
	})
	mk("appr-wait", "acme", at, func(d *record.Decision) { d.Approval = record.Approval{Required: true, Status: record.ApprovalPending} })
	mk("reviewed", "acme", at, func(d *record.Decision) {
		d.Oversight = []record.Oversight{{EventID: "oversight:a", Kind: "review", Outcome: "flag", Reviewer: "rita"},
			{EventID: "oversight:b", Kind: "review", Outcome: "approve", Reviewer: "lee"}}
		d.Risk.ReviewStatus = "approve"
	})
	mk("access:acc-1", "acme", at, func(d *record.Decision) {
		d.Access = record.Access{Action: "record_view", Actor: "rita", Target: "rec-1", TargetVersion: 2, Sender: "dashboard"}
	})
	mk("access:acc-2", "*", at.Add(time.Minute), func(d *record.Decision) { d.Access = record.Access{Action: "login", Actor: "lee"} })
	e.ins(extra)
	requests := append(slices.Clone(e.recs), extra[:5]...)
	total := func(keep func(*record.Decision) bool) (n uint64) {
		for i := range requests {
			if keep(&requests[i].D) {
				n++
			}
		}
		return n
	}

	t.Run("access records are not requests", func(t *testing.T) {
		n, err := e.ch.Total(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		if want := total(isAcme); n != want {
			t.Fatalf("total %d, want %d (the access record must not count)", n, want)
		}
		p, err := e.ch.NearMiss(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		if p.Totals.Total != n {
			t.Fatalf("near-miss total %d, want %d", p.Totals.Total, n)
		}
		log, err := e.ch.AccessLog(ctx, query.Filter{Tenants: []string{"acme"}, From: from, To: to}, 10)
		if err != nil || len(log) != 1 || log[0].Actor != "rita" || log[0].Action != "record_view" || log[0].Target != "rec-1" || log[0].TargetVer != 2 {
			t.Fatalf("acme's access log: %+v %v", log, err)
		}
		all, err := e.ch.AccessLog(ctx, query.Filter{Tenants: []string{query.AllTenants}, From: from, To: to}, 10)
		if err != nil || len(all) != 2 || all[0].Action != "login" {
			t.Fatalf("everyone's access log: %+v %v", all, err)
		}
	})

	t.Run("options are the values in scope", func(t *testing.T) {
		o, err := e.ch.Options(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(o.Tenant, []string{"acme"}) || len(o.Outcome) == 0 || len(o.Tier) == 0 || len(o.Team) == 0 || len(o.User) == 0 || len(o.Model) == 0 {
			t.Fatalf("options %+v", o)
		}
		for _, want := range []string{record.ApprovalExecutedWithout, record.ApprovalPending} {
			if !slices.Contains(o.Approval, want) {
				t.Errorf("approval options %v lack %s", o.Approval, want)
			}
		}
		if !slices.Contains(o.Review, "approve") || len(o.User) > query.MaxOptions {
			t.Errorf("review options %v, %d users", o.Review, len(o.User))
		}
		if _, err := e.ch.Options(ctx, query.Filter{}); err == nil {
			t.Error("options without a tenant")
		}
	})

	t.Run("approval filters", func(t *testing.T) {
		for status, want := range map[string][]string{
			query.ApprovalViolation:         {"appr-bad", "appr-rej"},
			record.ApprovalPending:          {"appr-wait"},
			record.ApprovalExecutedAfter:    {"appr-ok"},
			record.ApprovalExecutedRejected: {"appr-rej"},
		} {
			f := acme
			f.Approval = status
			l, err := e.ch.Records(ctx, f, query.Cursor{}, 50)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range l.Rows {
				for _, x := range extra {
					if x.D.RecordID == r.RecordID {
						got = append(got, x.D.Request.RequestKey)
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) || len(l.Rows) != len(want) {
				t.Errorf("approval=%s: %v, want %v", status, got, want)
			}
		}
	})

	t.Run("search by record id, prefix, request key, user, key alias", func(t *testing.T) {
		d := e.recs[7].D
		for _, q := range []string{d.RecordID, d.RecordID[:10], d.Request.RequestKey} {
			f := query.Filter{Tenants: []string{query.AllTenants}, From: from, To: to, Search: q}
			l, err := e.ch.Records(ctx, f, query.Cursor{}, 50)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Rows) != 1 || l.Rows[0].RecordID != d.RecordID {
				t.Errorf("search %q: %d rows", q, len(l.Rows))
			}
		}
		for _, tc := range []struct {
			q    string
			keep func(*record.Decision) bool
		}{
			{d.Identity.UserID, func(x *record.Decision) bool { return x.Identity.UserID == d.Identity.UserID }},
			{d.Identity.KeyAlias, func(x *record.Decision) bool { return x.Identity.KeyAlias == d.Identity.KeyAlias }},
		} {
			n, err := e.ch.Total(ctx, query.Filter{Tenants: []string{query.AllTenants}, From: from, To: to, Search: tc.q})
			if want := total(tc.keep); err != nil || n != want {
				t.Errorf("search %q: %d, want %d (%v)", tc.q, n, want, err)
			}
		}
		// A search string is a value, never a pattern.
		for _, q := range []string{"%", "_", "' OR 1=1 --", d.RecordID[:7]} {
			n, err := e.ch.Total(ctx, query.Filter{Tenants: []string{query.AllTenants}, From: from, To: to, Search: q})
			if err != nil || n != 0 {
				t.Errorf("search %q: %d rows, want 0 (%v)", q, n, err)
			}
		}
	})

	t.Run("sorts", func(t *testing.T) {
		for _, s := range []string{query.SortOldest, query.SortCost, query.SortDuration} {
			f := acme
			f.Sort = s
			l, err := e.ch.Records(ctx, f, query.Cursor{}, 40)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Rows) != 40 {
				t.Fatalf("sort %s: %d rows", s, len(l.Rows))
			}
			for i := 1; i < len(l.Rows); i++ {
				a, b := l.Rows[i-1], l.Rows[i]
				if (s == query.SortOldest && a.StartTime.After(b.StartTime)) || (s == query.SortCost && a.CostUSD < b.CostUSD) ||
					(s == query.SortDuration && a.DurationMS < b.DurationMS) {
					t.Fatalf("sort %s: row %d out of order", s, i)
				}
			}
		}
		// Oldest first pages through every record once.
		f := acme
		f.Sort = query.SortOldest
		seen := map[string]bool{}
		var cur query.Cursor
		for {
			l, err := e.ch.Records(ctx, f, cur, 300)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range l.Rows {
				if seen[r.RecordID] {
					t.Fatalf("%s listed twice", r.RecordID)
				}
				seen[r.RecordID] = true
			}
			if l.Next.IsZero() {
				break
			}
			cur = l.Next
		}
		if want := total(isAcme); uint64(len(seen)) != want {
			t.Fatalf("oldest first listed %d, want %d", len(seen), want)
		}
	})

	t.Run("export streams every matching latest version", func(t *testing.T) {
		var rows []query.ExportRow
		if err := e.ch.Export(ctx, acme, 0, func(r query.ExportRow) error { rows = append(rows, r); return nil }); err != nil {
			t.Fatal(err)
		}
		if want := total(isAcme); uint64(len(rows)) != want {
			t.Fatalf("exported %d, want %d", len(rows), want)
		}
		for _, r := range rows {
			if r.Tenant != "acme" || r.RecordID == "" || r.StartTime.IsZero() {
				t.Fatalf("row %+v", r)
			}
		}
		n := 0
		if err := e.ch.Export(ctx, acme, 10, func(query.ExportRow) error { n++; return nil }); err != nil || n != 10 {
			t.Fatalf("bounded export: %d rows, %v", n, err)
		}
	})

	t.Run("usage with the previous period", func(t *testing.T) {
		f := query.Filter{Tenants: []string{query.AllTenants}, From: e.end.Add(-3 * 24 * time.Hour), To: e.end}
		u, err := e.ch.Usage(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var cur, prev uint64
		var cost float64
		tenants := map[string]bool{}
		for i := range requests {
			s := requests[i].D.Request.StartTime.Std()
			switch {
			case !s.Before(f.From) && s.Before(f.To):
				cur++
				cost += requests[i].D.Outcome.CostUSD
				tenants[requests[i].D.Identity.Tenant] = true
			case !s.Before(f.From.Add(-3*24*time.Hour)) && s.Before(f.From):
				prev++
			}
		}
		if u.Totals.Requests != cur || u.Previous.Requests != prev || len(u.ByTenant) != len(tenants) {
			t.Fatalf("requests %d (prev %d, %d tenants), want %d (prev %d, %d tenants)", u.Totals.Requests, u.Previous.Requests, len(u.ByTenant), cur, prev, len(tenants))
		}
		if d := u.Totals.CostUSD - cost; d > 1e-6 || d < -1e-6 {
			t.Fatalf("cost %f, want %f", u.Totals.CostUSD, cost)
		}
		var sum uint64
		for _, p := range u.Trend {
			sum += p.Requests
		}
		if sum != cur || u.Totals.AvgLatencyMS <= 0 || u.Totals.P95LatencyMS < u.Totals.AvgLatencyMS/2 {
			t.Fatalf("trend sum %d, latency avg %f p95 %f", sum, u.Totals.AvgLatencyMS, u.Totals.P95LatencyMS)
		}
	})

	t.Run("review throughput and the oldest pending", func(t *testing.T) {
		rs, err := e.ch.ReviewStats(ctx, acme)
		if err != nil {
			t.Fatal(err)
		}
		var pending uint64
		var oldest time.Time
		for i := range requests {
			d := &requests[i].D
			if isAcme(d) && d.Risk.Sampled && d.Risk.ReviewStatus == "" {
				pending++
				if s := d.Request.StartTime.Std(); oldest.IsZero() || s.Before(oldest) {
					oldest = s.Truncate(time.Second)
				}
			}
		}
		if rs.Pending != pending || !rs.OldestPending.Equal(oldest) {
			t.Fatalf("pending %d oldest %s, want %d %s", rs.Pending, rs.OldestPending, pending, oldest)
		}
		reviews := map[string]uint64{}
		for i := range requests {
			if d := &requests[i].D; isAcme(d) {
				for _, o := range d.Oversight {
					reviews[o.Reviewer]++
				}
			}
		}
		for _, c := range rs.Reviewers {
			if reviews[c.Key] != c.Total {
				t.Errorf("reviewer %s: %d, want %d", c.Key, c.Total, reviews[c.Key])
			}
		}
		if len(rs.Reviewers) == 0 || len(rs.Reviewers) > query.TopN {
			t.Fatalf("%d reviewers", len(rs.Reviewers))
		}
	})
}
