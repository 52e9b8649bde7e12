package query

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/enrich/record"
)

func TestStepAndBuckets(t *testing.T) {
	from := time.Date(2026, 11, 22, 10, 7, 0, 0, time.UTC)
	for _, tc := range []struct {
		span time.Duration
		step time.Duration
	}{
		{time.Hour, time.Minute},
		{6 * time.Hour, 15 * time.Minute},
		{24 * time.Hour, 30 * time.Minute},
		{7 * 24 * time.Hour, 3 * time.Hour},
		{30 * 24 * time.Hour, 12 * time.Hour},
		{31 * 24 * time.Hour, 24 * time.Hour},
		{400 * 24 * time.Hour, 7 * 24 * time.Hour},
	} {
		to := from.Add(tc.span)
		if got := Step(from, to); got != tc.step {
			t.Errorf("Step(%s) = %s, want %s", tc.span, got, tc.step)
		}
		b := buckets(from, to, tc.step)
		if len(b) == 0 || b[0].After(from) || !b[len(b)-1].Add(tc.step).After(to.Add(-time.Nanosecond)) || len(b) > MaxBuckets+2 {
			t.Errorf("buckets(%s): %d from %s to %s", tc.span, len(b), b[0], b[len(b)-1])
		}
		for _, x := range b {
			if x.Unix()%int64(tc.step/time.Second) != 0 {
				t.Fatalf("bucket %s not aligned to %s", x, tc.step)
			}
		}
	}
}

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     Filter
		err   error
		want  []string // substrings of the SQL
		nargs int
	}{
		{"no tenant", Filter{}, ErrNoTenant, nil, 0},
		{"tenant outside", Filter{Tenants: []string{"a"}, Tenant: "b"}, ErrNoTenant, nil, 0},
		{"two tenants", Filter{Tenants: []string{"a", "b"}}, nil, []string{"tenant IN (?, ?)"}, 2},
		// Every tenant: no tenant condition, only the one every read has
		// (access records are not requests).
		{"all tenants", Filter{Tenants: []string{AllTenants}}, nil, []string{"access_action = ''"}, 0},
		{"access log", Filter{Tenants: []string{AllTenants}, Access: true}, nil, []string{"access_action != ''"}, 0},
		{"one chosen", Filter{Tenants: []string{AllTenants}, Tenant: "c", From: time.Unix(100, 0), To: time.Unix(200, 0), Team: "x' OR 1=1", Reason: "r", Category: Flagged, Review: "flag"},
			nil, []string{"tenant = ?", "start_time >= toDateTime(?)", "if(team_alias != '', team_alias, team_id) = ?", "has(near_miss_reasons, ?)", "(near_miss = 1 OR outcome = 'blocked')", "review_status = ?"}, 6},
		{"bad category", Filter{Tenants: []string{"a"}, Category: "x"}, errors.New("unknown category"), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := tc.f.build()
			if tc.err != nil {
				if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.err.Error(), "query: ")) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sql := w.sql()
			for _, s := range tc.want {
				if !strings.Contains(sql, s) {
					t.Errorf("SQL lacks %q:\n%s", s, sql)
				}
			}
			if tc.f.Tenant == "" && len(tc.f.Tenants) == 1 && tc.f.Tenants[0] == AllTenants && strings.Contains(sql, "tenant") {
				t.Errorf("an all-tenant filter has a tenant condition:\n%s", sql)
			}
			if strings.Contains(sql, "OR 1=1") {
				t.Fatalf("user input in SQL text: %s", sql)
			}
			if len(w.args) != tc.nargs || strings.Count(sql, "?") != len(w.args) {
				t.Fatalf("%d args, %d placeholders, want %d:\n%s", len(w.args), strings.Count(sql, "?"), tc.nargs, sql)
			}
		})
	}
}

func TestDecodeAcceptsEitherTimeForm(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 41, 7, 0, time.UTC)
	five := 5.0
	for _, tc := range []struct {
		name string
		row  map[string]any
	}{
		{"DateTime + full ms", map[string]any{"start_time": at, "start_time_ms": int64(at.UnixMilli() + 512)}},
		{"DateTime + ms part", map[string]any{"start_time": at, "start_time_ms": uint16(512)}},
		{"Unix ms", map[string]any{"start_time": int64(at.UnixMilli() + 512)}},
		{"string", map[string]any{"start_time": "2026-11-22T10:41:07.512Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := map[string]any{"record_id": "r1", "version": uint32(3), "stream": uint8(1), "retry_count": int32(2), "budget_key_spend": &five,
				"budget_user_spend": (*float64)(nil), "roles": []string{"a"}, "attempts.event_id": []string{"e1", "e2"}, "attempts.cache_hit": []uint8{0, 1},
				"attempts.start_time": []time.Time{at, at}, "attempts.start_time_ms": []int64{at.UnixMilli() + 1, at.UnixMilli() + 2}}
			for k, v := range tc.row {
				row[k] = v
			}
			var d record.Decision
			missing := Decode(row, &d)
			if d.Request.StartTime.String() != "2026-11-22T10:41:07.512Z" {
				t.Errorf("start_time = %s", d.Request.StartTime)
			}
			if d.RecordID != "r1" || d.Version != 3 || !d.Request.Stream || d.Routing.RetryCount != 2 || *d.Budget.Key.Spend != 5 || d.Budget.User.Spend != nil || d.Identity.Roles[0] != "a" {
				t.Errorf("scalars: %+v", d)
			}
			if len(d.Routing.Attempts) != 2 || !d.Routing.Attempts[1].CacheHit || d.Routing.Attempts[1].StartTime != record.Time(at.UnixMilli()+2) {
				t.Errorf("attempts: %+v", d.Routing.Attempts)
			}
			if len(missing) == 0 || !strings.Contains(strings.Join(missing, ","), "guardrails") {
				t.Errorf("missing = %v", missing)
			}
		})
	}
}
