package dashboards

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
)

const formEvent = "dash-0123456789abcdef0123456789abcdef"

func TestParseReviewForm(t *testing.T) {
	ok := url.Values{"outcome": {"flag"}, "rationale": {"  looks wrong  "}, "event_id": {formEvent}, "version": {"3"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range ok {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	tests := []struct {
		name string
		form url.Values
		want reviewForm
		err  string
	}{
		{"valid", ok, reviewForm{Outcome: "flag", Rationale: "looks wrong", EventID: formEvent, Version: 3}, ""},
		{"unknown outcome", with("outcome", "delete"), reviewForm{}, "outcome: want approve, flag, reject, escalate or override"},
		{"blank rationale", with("rationale", "   "), reviewForm{}, "rationale: required — say why, in a sentence an auditor will understand"},
		{"long rationale", with("rationale", strings.Repeat("x", maxRationale+1)), reviewForm{}, "rationale: at most 10000 bytes"},
		{"bad event id", with("event_id", "dash-XYZ"), reviewForm{}, "event_id: malformed; reload the record and submit again"},
		{"version zero", with("version", "0"), reviewForm{}, "version: malformed"},
		{"version missing", with("version", ""), reviewForm{}, "version: malformed"},
		{"first problem wins", url.Values{"outcome": {"x"}}, reviewForm{}, "outcome: want approve, flag, reject, escalate or override"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReviewForm(tt.form)
			if tt.err != "" {
				var br *badRequest
				if err == nil || err.Error() != tt.err || !errors.As(err, &br) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func TestReviewEvent(t *testing.T) {
	d := query.Detail{Decision: record.Decision{RecordID: "rec", Version: 2}, Partition: 3, Offset: 44}
	d.Decision.Request.RequestKey = "k"
	d.Decision.Identity.Tenant = "acme"
	p := auth.Principal{Name: "rita", Role: auth.Reviewer, Tenants: []string{"acme"}}
	now := time.Date(2026, 11, 22, 13, 0, 0, 0, time.FixedZone("x", 3600))
	ev := reviewEvent(reviewForm{Outcome: "approve", Rationale: "fine", EventID: formEvent, Version: 2}, d, p, now)
	want := oversight.Event{Schema: oversight.Schema, EventID: formEvent, Kind: oversight.KindReview, RequestKey: "k", RecordID: "rec", RecordVersion: 2,
		Outcome: "approve", Reviewer: oversight.Reviewer{ID: "rita", Role: "reviewer", Tenant: "acme"}, Rationale: "fine", OccurredAt: now.UTC(),
		DecisionRef: &oversight.DecisionRef{Partition: 3, Offset: 44}}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
	d.Partition = -1
	if ev := reviewEvent(reviewForm{}, d, p, now); ev.DecisionRef != nil {
		t.Fatal("unknown position gives a decision ref")
	}
}

func TestParseBurstForm(t *testing.T) {
	tests := []struct {
		name string
		form url.Values
		want burstForm
		err  string
	}{
		{"on for tiers", url.Values{"burst": {"on"}, "rationale": {"incident"}, "event_id": {formEvent}, "tier": {"high", "critical"}},
			burstForm{On: true, Rationale: "incident", EventID: formEvent, Tiers: []string{"high", "critical"}}, ""},
		{"off for all", url.Values{"burst": {"off"}, "rationale": {"over"}, "event_id": {formEvent}}, burstForm{Rationale: "over", EventID: formEvent}, ""},
		{"neither", url.Values{"burst": {"maybe"}}, burstForm{}, "burst: want on or off"},
		{"no rationale", url.Values{"burst": {"on"}, "event_id": {formEvent}}, burstForm{}, "rationale: required — say why burst mode changes"},
		{"bad event id", url.Values{"burst": {"on"}, "rationale": {"r"}}, burstForm{}, "event_id: malformed; reload the page and submit again"},
		{"bad tier", url.Values{"burst": {"on"}, "rationale": {"r"}, "event_id": {formEvent}, "tier": {"High Tier"}}, burstForm{}, "tier: malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBurstForm(tt.form)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v %v, want %+v", got, err, tt.want)
			}
		})
	}
	p := auth.Principal{Name: "root", Role: auth.Admin, Tenants: []string{"*"}}
	now := time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)
	ev := burstEvent(burstForm{On: true, Rationale: "r", EventID: formEvent, Tiers: []string{"high"}}, p, now)
	want := oversight.Event{Schema: oversight.Schema, EventID: formEvent, Kind: oversight.KindSamplingControl,
		Reviewer: oversight.Reviewer{ID: "root", Role: "admin"}, Rationale: "r", OccurredAt: now, Sampling: &oversight.Sampling{Burst: true, Tiers: []string{"high"}}}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
}
