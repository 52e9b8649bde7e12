package fold

import (
	"slices"
	"strings"
	"testing"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
)

// Receive times (ingest's clock, ms) used below: the LiteLLM event of the
// execution is received at exec.
const exec = 50_000

func received(e *event.Event, at int64) *event.Event {
	e.ReceivedAt = record.Time(at)
	return e
}

// run is an executed request: a LiteLLM success received at exec, by user
// u-4411.
func run() *event.Event {
	return received(lite("run", "success", "g1", 40_000, func(l *event.LiteLLM) { l.Identity.UserID = "u-4411" }), exec)
}

func gw(id, kind, approver string, at, sentAt int64, mod func(*event.Approval)) *event.Event {
	a := &event.Approval{EventID: id, RequestKey: "k", Kind: kind, Approver: approver, Gateway: "gw", OccurredAt: record.Time(sentAt)}
	if mod != nil {
		mod(a)
	}
	return &event.Event{ID: "approval:" + id, Source: "approval", Key: "k", Topic: "raw.gateway", Offset: at,
		ReceivedAt: record.Time(at), Sender: "gateway-token", Approval: a}
}

func requested(at int64, mod func(*event.Approval)) *event.Event {
	return gw("req", event.ApprovalRequested, "", at, at, func(a *event.Approval) {
		a.SubjectID, a.Tier = "u-4411", "high"
		if mod != nil {
			mod(a)
		}
	})
}

func ov(id, kind, outcome, reviewer string, version, at int64) *event.Event {
	return &event.Event{ID: "oversight:" + id, Source: "oversight", Key: "k", Topic: "raw.gateway", Offset: at,
		ReceivedAt: record.Time(at), Sender: "dashboard",
		Oversight: &event.Oversight{EventID: id, Kind: kind, Outcome: outcome, Reviewer: reviewer, Role: "reviewer",
			RequestKey: "k", RecordVersion: version, OccurredAt: record.Time(at)}}
}

// TestApprovalBeforeAction pins approval.status, the approvers, what counts
// and the near-miss reasons on minimal events. Times are receive times:
// the sender's clock (occurred_at) never decides.
func TestApprovalBeforeAction(t *testing.T) {
	tierHigh := func(r *Rules) { r.Approval.Tiers = []string{"high"} }
	phi := func(at int64) *event.Event { // makes the request tier high (default rules: data_class:phi)
		return &event.Event{ID: "gateway:phi", Source: "gateway", Key: "k", Topic: "raw.gateway", Offset: at, ReceivedAt: record.Time(at),
			Gateway: &event.Gateway{EventID: "phi", RequestKey: "k", Decision: "allow", PolicyID: "p", DataClasses: []string{"phi"}, OccurredAt: record.Time(at)}}
	}
	for _, tc := range []struct {
		name      string
		rules     func(*Rules)
		events    []*event.Event
		status    string
		approvers []string
		needed    int32
		notes     []string // per decision, in receive order
		reason    string   // near-miss reason added, if any
	}{
		{name: "no approval needed", events: []*event.Event{run()}, status: record.ApprovalNotRequired, needed: 1},
		{name: "gateway held it; approved before it ran",
			events: []*event.Event{requested(10_000, nil), gw("ok", event.ApprovalApproved, "lee", 20_000, 20_000, nil), run()},
			status: record.ApprovalExecutedAfter, approvers: []string{"lee"}, needed: 1, notes: []string{""}},
		{name: "gateway held it; the approval came after it ran",
			events: []*event.Event{requested(10_000, nil), gw("late", event.ApprovalApproved, "lee", exec+5, 30_000, nil), run()},
			status: record.ApprovalExecutedWithout, needed: 1, notes: []string{NoteAfterExecution}, reason: ReasonExecutedWithoutApproval},
		{name: "the approver's clock says before, ingest received it after",
			events: []*event.Event{requested(10_000, nil), gw("backdated", event.ApprovalApproved, "lee", exec+1, 1_000, nil), run()},
			status: record.ApprovalExecutedWithout, needed: 1, notes: []string{NoteAfterExecution}, reason: ReasonExecutedWithoutApproval},
		{name: "received in the same millisecond as the execution does not count",
			events: []*event.Event{requested(10_000, nil), gw("tie", event.ApprovalApproved, "lee", exec, exec, nil), run()},
			status: record.ApprovalExecutedWithout, needed: 1, notes: []string{NoteAfterExecution}, reason: ReasonExecutedWithoutApproval},
		{name: "never approved, ran anyway",
			events: []*event.Event{requested(10_000, nil), run()},
			status: record.ApprovalExecutedWithout, needed: 1, reason: ReasonExecutedWithoutApproval},
		{name: "rejected, then ran",
			events: []*event.Event{requested(10_000, nil), gw("no", event.ApprovalRejected, "lee", 20_000, 20_000, nil), run()},
			status: record.ApprovalExecutedRejected, needed: 1, notes: []string{""}, reason: ReasonExecutedAfterRejection},
		{name: "rejected, did not run",
			events: []*event.Event{requested(10_000, nil), gw("no", event.ApprovalRejected, "lee", 20_000, 20_000, nil)},
			status: record.ApprovalRejected, needed: 1, notes: []string{""}},
		{name: "awaiting approval",
			events: []*event.Event{requested(10_000, nil)}, status: record.ApprovalPending, needed: 1},
		{name: "approved, not run yet",
			events: []*event.Event{requested(10_000, nil), gw("ok", event.ApprovalApproved, "lee", 20_000, 20_000, nil)},
			status: record.ApprovalApproved, approvers: []string{"lee"}, needed: 1, notes: []string{""}},
		{name: "the requester approves their own request (separation of duties)",
			events: []*event.Event{requested(10_000, nil), gw("self", event.ApprovalApproved, "u-4411", 20_000, 20_000, nil), run()},
			status: record.ApprovalExecutedWithout, needed: 1, notes: []string{NoteSelfApproval}, reason: ReasonExecutedWithoutApproval},
		{name: "the gateway asks for two approvers; the same one twice counts once",
			events: []*event.Event{requested(10_000, func(a *event.Approval) { a.RequiredApprovals = 2 }),
				gw("a1", event.ApprovalApproved, "lee", 20_000, 20_000, nil), gw("a2", event.ApprovalApproved, "lee", 21_000, 21_000, nil), run()},
			status: record.ApprovalExecutedWithout, approvers: []string{"lee"}, needed: 2, notes: []string{NoteAwaitingSecond, NoteSameApprover},
			reason: ReasonExecutedWithoutApproval},
		{name: "four eyes on a high-tier request: two distinct approvers before it ran",
			rules:  tierHigh,
			events: []*event.Event{phi(1_000), ov("d1", "approval", "approve", "lee", 1, 20_000), ov("d2", "approval", "approve", "rita", 1, 21_000), run()},
			status: record.ApprovalExecutedAfter, approvers: []string{"lee", "rita"}, needed: 2, notes: []string{NoteAwaitingSecond, ""}},
		{name: "four eyes on a high-tier request: one approver is not enough",
			rules:  tierHigh,
			events: []*event.Event{phi(1_000), ov("d1", "approval", "approve", "lee", 1, 20_000), run()},
			status: record.ApprovalExecutedWithout, approvers: []string{"lee"}, needed: 2, notes: []string{NoteAwaitingSecond},
			reason: ReasonExecutedWithoutApproval},
		{name: "an override needs two reviewers too",
			events: []*event.Event{requested(10_000, nil), gw("o1", event.ApprovalOverride, "lee", 20_000, 20_000, nil),
				gw("o2", event.ApprovalOverride, "rita", 21_000, 21_000, nil), run()},
			status: record.ApprovalExecutedAfter, approvers: []string{"lee", "rita"}, needed: 1, notes: []string{NoteAwaitingSecond, ""}},
		{name: "escalation does not approve",
			events: []*event.Event{requested(10_000, nil), gw("esc", event.ApprovalEscalated, "lee", 20_000, 20_000, nil), run()},
			status: record.ApprovalExecutedWithout, needed: 1, notes: []string{NoteEscalation}, reason: ReasonExecutedWithoutApproval},
		{name: "a tier not configured needs none",
			events: []*event.Event{phi(1_000), run()}, status: record.ApprovalNotRequired, needed: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewDefaultRules()
			if tc.rules != nil {
				tc.rules(&r)
			}
			d := NewBuilder(r).Build(tc.events, Context{})
			a := d.Approval
			if a.Status != tc.status || a.Needed != tc.needed || !slices.Equal(a.Approvers, append([]string{}, tc.approvers...)) {
				t.Fatalf("status %s needed %d approvers %v, want %s %d %v", a.Status, a.Needed, a.Approvers, tc.status, tc.needed, tc.approvers)
			}
			var notes []string
			for _, dec := range a.Decisions {
				notes = append(notes, dec.Note)
				if dec.Sender == "" || dec.ReceivedAt == 0 {
					t.Errorf("decision %s: sender %q received %d", dec.EventID, dec.Sender, dec.ReceivedAt)
				}
			}
			if !slices.Equal(notes, tc.notes) {
				t.Errorf("notes %q, want %q", notes, tc.notes)
			}
			has := tc.reason != "" && slices.Contains(d.NearMiss.Reasons, tc.reason)
			if (tc.reason != "") != has || (tc.reason != "" && !d.NearMiss.Flagged) {
				t.Errorf("near miss %v %v, want reason %q", d.NearMiss.Flagged, d.NearMiss.Reasons, tc.reason)
			}
			if tc.status == record.ApprovalExecutedAfter && (a.ApprovedAt == 0 || a.ApprovedAt >= a.ExecutedAt) {
				t.Errorf("approved at %d, executed at %d", a.ApprovedAt, a.ExecutedAt)
			}
			if tc.reason != "" && d.Risk.Tier == "low" {
				t.Errorf("a violation left the tier at low: the tier is computed again with the reason")
			}
		})
	}
}

// TestOversightKindsAndEffects: every kind and outcome of the oversight
// schema, and what each entry does to the review status: the latest entry
// that took effect wins, in receive order; a self-review, a stale review and
// a first override (four eyes) take none.
func TestOversightKindsAndEffects(t *testing.T) {
	b := NewBuilder(NewDefaultRules())
	for _, tc := range []struct {
		name    string
		events  []*event.Event
		effects []string
		status  string
	}{
		{"review approve", []*event.Event{ov("1", "review", "approve", "lee", 1, 100)}, []string{"applied"}, "approve"},
		{"review flag", []*event.Event{ov("1", "review", "flag", "lee", 1, 100)}, []string{"applied"}, "flag"},
		{"review escalate", []*event.Event{ov("1", "review", "escalate", "lee", 1, 100)}, []string{"applied"}, "escalate"},
		{"escalation", []*event.Event{ov("1", "escalation", "escalate", "lee", 1, 100)}, []string{"applied"}, "escalate"},
		{"approval approve", []*event.Event{ov("1", "approval", "approve", "lee", 1, 100)}, []string{"applied"}, "approve"},
		{"approval reject", []*event.Event{ov("1", "approval", "reject", "lee", 1, 100)}, []string{"applied"}, "reject"},
		{"override needs a second reviewer", []*event.Event{ov("1", "override", "override", "lee", 1, 100)},
			[]string{"awaiting_second_reviewer"}, ""},
		{"override by two reviewers", []*event.Event{ov("1", "override", "override", "lee", 1, 100), ov("2", "override", "override", "rita", 2, 200)},
			[]string{"awaiting_second_reviewer", "applied"}, "override"},
		{"override twice by one reviewer", []*event.Event{ov("1", "override", "override", "lee", 1, 100), ov("2", "override", "override", "lee", 2, 200)},
			[]string{"awaiting_second_reviewer", "same_reviewer"}, ""},
		{"the subject reviews their own request", []*event.Event{lite("a", "success", "g", 10, func(l *event.LiteLLM) { l.Identity.UserEmail = "Pat@Acme.example" }),
			ov("1", "review", "approve", "pat@acme.example", 1, 100)}, []string{"self_review"}, ""},
		{"a review of an outdated version does not overwrite", []*event.Event{ov("1", "review", "flag", "lee", 1, 100), ov("2", "review", "approve", "rita", 1, 200)},
			[]string{"applied", "stale"}, "flag"},
		{"a review of the version that shows the first review does", []*event.Event{ov("1", "review", "flag", "lee", 1, 100), ov("2", "review", "approve", "rita", 2, 200)},
			[]string{"applied", "applied"}, "approve"},
		{"receive order, not the reviewer's clock", []*event.Event{
			func() *event.Event {
				e := ov("1", "review", "flag", "lee", 0, 300)
				e.Oversight.OccurredAt = 1
				return e
			}(),
			func() *event.Event {
				e := ov("2", "review", "approve", "rita", 0, 100)
				e.Oversight.OccurredAt = 999_999
				return e
			}()},
			[]string{"applied", "applied"}, "flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := b.Build(tc.events, Context{})
			var effects []string
			for _, o := range d.Oversight {
				effects = append(effects, o.Effect)
				if o.Sender != "dashboard" || o.ReceivedAt == 0 {
					t.Errorf("entry %s: sender %q received_at %d", o.EventID, o.Sender, o.ReceivedAt)
				}
			}
			if !slices.Equal(effects, tc.effects) || d.Risk.ReviewStatus != tc.status {
				t.Errorf("effects %v status %q, want %v %q", effects, d.Risk.ReviewStatus, tc.effects, tc.status)
			}
		})
	}
	// Separation of duties and four eyes are configurable.
	r := NewDefaultRules()
	r.Approval.SeparationOfDuties, r.Approval.FourEyesOverrides = false, false
	d := NewBuilder(r).Build([]*event.Event{
		lite("a", "success", "g", 10, func(l *event.LiteLLM) { l.Identity.UserID = "lee" }),
		ov("1", "override", "override", "lee", 1, 100)}, Context{})
	if d.Oversight[0].Effect != "applied" || d.Risk.ReviewStatus != "override" {
		t.Errorf("with both rules off: %+v %q", d.Oversight[0], d.Risk.ReviewStatus)
	}
}

// TestAccessRecord: an access event is a record of its own: who read what,
// when (ingest's receive time), through which token; never sampled, no tier.
func TestAccessRecord(t *testing.T) {
	e := &event.Event{ID: "access:acc-1", Source: "access", Key: "access:acc-1", Topic: "raw.gateway", ReceivedAt: 77_000, Sender: "dashboard",
		SHA256: strings.Repeat("a", 64), Access: &event.Access{EventID: "acc-1", Action: "record_view", Actor: "lee", Role: "reviewer", Via: "password",
			Client: "192.0.2.10", Tenant: "acme", Target: "rec-1", TargetVersion: 2, OccurredAt: 1}}
	r := NewDefaultRules()
	r.Sampling.Always = []string{"low"}
	d := NewBuilder(r).Build([]*event.Event{e}, Context{})
	a := d.Access
	if a.Action != "record_view" || a.Actor != "lee" || a.Sender != "dashboard" || a.Target != "rec-1" || a.TargetVersion != 2 || a.Client != "192.0.2.10" {
		t.Errorf("access %+v", a)
	}
	if d.Identity.Tenant != "acme" || d.Request.StartTime != 77_000 || d.Risk.Tier != "" || d.Risk.Sampled || d.NearMiss.Flagged ||
		d.Approval.Status != "" || d.RecordID != record.ID("access:acc-1") || len(d.Evidence.Sources) != 1 {
		t.Errorf("record %+v", d)
	}
	e.Access.Tenant, e.Access.Action = "", "login"
	if d := NewBuilder(r).Build([]*event.Event{e}, Context{}); d.Identity.Tenant != "*" {
		t.Errorf("a login's tenant: %q, want * (only users of every tenant see it)", d.Identity.Tenant)
	}
}
