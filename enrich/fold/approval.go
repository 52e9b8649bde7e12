package fold

import (
	"cmp"
	"slices"
	"strings"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
)

// Human oversight an auditor can rely on (issue 18): approval before action,
// four eyes, separation of duties, reviews that cannot silently overwrite
// each other, and the access log. Everything here orders events by ingest's
// receive time (stamped by ingest and sealed in the record's evidence), then
// event id — never by a sender's clock — so that "approved before it ran" is
// a fact of the audit trail, not a claim of the approver's tool.

// ApprovalConfig is the "enrich.approval" section.
type ApprovalConfig struct {
	// Tiers lists the risk tiers whose requests need a human's approval
	// before they execute. A request a gateway held for approval (an
	// approval_requested event) needs it whatever its tier. Default: none.
	Tiers []string `yaml:"tiers"`
	// FourEyesTiers lists the tiers whose approval needs two distinct
	// approvers (default: high).
	FourEyesTiers []string `yaml:"four_eyes_tiers"`
	// FourEyesOverrides: an override (of a rejection, a block or a review
	// outcome) takes effect only once two distinct reviewers posted it
	// (default true).
	FourEyesOverrides bool `yaml:"four_eyes_overrides"`
	// SeparationOfDuties: a reviewer or approver who is the request's
	// subject (identity.subject, user id or e-mail, or the approval
	// request's subject) does not count (default true).
	SeparationOfDuties bool `yaml:"separation_of_duties"`
}

// NewDefaultApprovalConfig returns the defaults.
func NewDefaultApprovalConfig() ApprovalConfig {
	return ApprovalConfig{Tiers: []string{}, FourEyesTiers: []string{"high"}, FourEyesOverrides: true, SeparationOfDuties: true}
}

// Notes on approval decisions that did not count (record.ApprovalDecision.Note).
const (
	NoteSelfApproval   = "self_approval"
	NoteSameApprover   = "same_approver"
	NoteAfterExecution = "after_execution"
	NoteAfterDecision  = "after_decision"
	NoteAwaitingSecond = "awaiting_second_reviewer"
	NoteEscalation     = "escalation"
)

// byReceipt orders events by ingest's receive time, then event id.
func byReceipt(x, y *event.Event) int {
	return cmp.Or(cmp.Compare(x.ReceivedAt, y.ReceivedAt), strings.Compare(x.ID, y.ID))
}

// subjects returns the identities of the person behind the request, lower
// case: nobody may review or approve their own request.
func subjects(d *record.Decision, approvals []*event.Event) map[string]bool {
	m := map[string]bool{}
	for _, s := range []string{d.Identity.Subject, d.Identity.UserID, d.Identity.UserEmail} {
		if s != "" {
			m[strings.ToLower(s)] = true
		}
	}
	for _, e := range approvals {
		if s := e.Approval.SubjectID; s != "" {
			m[strings.ToLower(s)] = true
		}
	}
	return m
}

// decisionOf turns an approval-related event into a decision, or false.
func decisionOf(e *event.Event) (record.ApprovalDecision, bool) {
	dec := record.ApprovalDecision{EventID: e.ID, Source: string(e.Source), Sender: e.Sender, ReceivedAt: e.ReceivedAt}
	switch {
	case e.Approval != nil:
		a := e.Approval
		if a.Kind == event.ApprovalRequested {
			return dec, false
		}
		dec.Kind, dec.Approver, dec.Role, dec.Reason, dec.At = a.Kind, a.Approver, a.Role, a.Reason, a.OccurredAt
	case e.Oversight != nil:
		o := e.Oversight
		switch {
		case o.Kind == "approval" && o.Outcome == "approve":
			dec.Kind = event.ApprovalApproved
		case o.Kind == "approval" && o.Outcome == "reject":
			dec.Kind = event.ApprovalRejected
		case o.Kind == "override":
			dec.Kind = event.ApprovalOverride
		default:
			return dec, false
		}
		dec.Approver, dec.Role, dec.Reason, dec.At = o.Reviewer, o.Role, o.Rationale, o.OccurredAt
	default:
		return dec, false
	}
	return dec, true
}

// approval derives d.Approval (see record.Approval) from the approval events
// and the oversight events of kind approval or override, after the outcome
// and the risk tier are known. It returns the decisions by event id, for the
// oversight entries' effects.
func (b *Builder) approval(d *record.Decision, attempts, approvals, oversights []*event.Event) map[string]record.ApprovalDecision {
	cfg := b.rules.Approval
	ap := &d.Approval
	ap.Approvers, ap.RejectedBy, ap.Decisions = []string{}, []string{}, []record.ApprovalDecision{}
	var evs []*event.Event
	for _, e := range approvals {
		if e.Approval.Kind == event.ApprovalRequested {
			ap.RequestedAt = minNonZero(ap.RequestedAt, e.ReceivedAt)
			ap.Required, ap.RequiredBy = true, "gateway"
			ap.Needed = max(ap.Needed, int32(e.Approval.RequiredApprovals))
			continue
		}
		evs = append(evs, e)
	}
	for _, e := range oversights {
		if _, ok := decisionOf(e); ok {
			evs = append(evs, e)
		}
	}
	slices.SortFunc(evs, byReceipt)
	tier := d.Risk.Tier
	if slices.Contains(cfg.Tiers, tier) && !ap.Required {
		ap.Required, ap.RequiredBy = true, "tier:"+tier
	}
	needed := int32(1)
	if slices.Contains(cfg.FourEyesTiers, tier) {
		needed = 2
	}
	ap.Needed = max(ap.Needed, needed)
	overrideNeeded := 1
	if cfg.FourEyesOverrides {
		overrideNeeded = 2
	}
	executed := d.Outcome.Status == record.OutcomeSuccess || d.Outcome.Status == record.OutcomeFailure
	if executed {
		for _, a := range attempts {
			ap.ExecutedAt = minNonZero(ap.ExecutedAt, a.ReceivedAt)
		}
	}
	var who map[string]bool // read only for a decision: built only when there is one
	var out map[string]record.ApprovalDecision
	if len(evs) > 0 {
		who, out = subjects(d, approvals), make(map[string]record.ApprovalDecision, len(evs))
	}
	var overriders []string
	decided := ""
	for _, e := range evs {
		dec, _ := decisionOf(e)
		approver := strings.ToLower(dec.Approver)
		switch {
		case cfg.SeparationOfDuties && who[approver]:
			dec.Note = NoteSelfApproval
		case dec.Kind == event.ApprovalEscalated:
			dec.Note = NoteEscalation
		case decided != "":
			dec.Note = NoteAfterDecision
		case ap.ExecutedAt != 0 && dec.ReceivedAt >= ap.ExecutedAt:
			// Received once the request had run: it is recorded, it cannot
			// make the execution compliant.
			dec.Note = NoteAfterExecution
		case dec.Kind == event.ApprovalApproved:
			if slices.Contains(ap.Approvers, dec.Approver) {
				dec.Note = NoteSameApprover
				break
			}
			dec.Counted = true
			ap.Approvers = append(ap.Approvers, dec.Approver)
			if int32(len(ap.Approvers)) >= ap.Needed {
				decided, ap.ApprovedAt = record.ApprovalApproved, dec.ReceivedAt
			} else {
				dec.Note = NoteAwaitingSecond
			}
		case dec.Kind == event.ApprovalOverride:
			if slices.Contains(overriders, dec.Approver) {
				dec.Note = NoteSameApprover
				break
			}
			dec.Counted = true
			overriders = append(overriders, dec.Approver)
			if !slices.Contains(ap.Approvers, dec.Approver) {
				ap.Approvers = append(ap.Approvers, dec.Approver)
			}
			if len(overriders) >= overrideNeeded {
				decided, ap.ApprovedAt = record.ApprovalApproved, dec.ReceivedAt
			} else {
				dec.Note = NoteAwaitingSecond
			}
		case dec.Kind == event.ApprovalRejected:
			dec.Counted = true
			ap.RejectedBy = append(ap.RejectedBy, dec.Approver)
			decided, ap.RejectedAt = record.ApprovalRejected, dec.ReceivedAt
		}
		ap.Decisions = append(ap.Decisions, dec)
		out[dec.EventID] = dec
	}
	switch {
	case !ap.Required:
		ap.Status = record.ApprovalNotRequired
	case executed && decided == record.ApprovalApproved:
		ap.Status = record.ApprovalExecutedAfter
	case executed && decided == record.ApprovalRejected:
		ap.Status = record.ApprovalExecutedRejected
	case executed:
		ap.Status = record.ApprovalExecutedWithout
	case decided != "":
		ap.Status = decided
	default:
		ap.Status = record.ApprovalPending
	}
	return out
}

// approvalReasons adds the near-miss reasons of an approval violation and
// reports whether it added any.
func (b *Builder) approvalReasons(d *record.Decision) bool {
	var add []string
	switch d.Approval.Status {
	case record.ApprovalExecutedWithout:
		add = append(add, ReasonExecutedWithoutApproval)
	case record.ApprovalExecutedRejected:
		add = append(add, ReasonExecutedAfterRejection)
	}
	changed := false
	for _, r := range add {
		if b.reasons[r] && !slices.Contains(d.NearMiss.Reasons, r) {
			d.NearMiss.Reasons = append(d.NearMiss.Reasons, r)
			changed = true
		}
	}
	if changed {
		slices.Sort(d.NearMiss.Reasons)
		d.NearMiss.Flagged = true
	}
	return changed
}

// oversight fills d.Oversight (in receive order) and the review status: the
// outcome of the latest entry that took effect. An entry does not take
// effect when its reviewer is the request's subject (separation of duties),
// when it is stale (the reviewer saw a version older than one a review
// received before it had already acted on: it is kept, and shown as
// conflicting, rather than silently overriding the newer review), or when it
// is an override still waiting for a second, different reviewer (four
// eyes). Entries of kind approval and override take their effect from the
// approval decisions (decs).
func (b *Builder) oversight(d *record.Decision, oversights []*event.Event, who map[string]bool, decs map[string]record.ApprovalDecision) {
	cfg := b.rules.Approval
	d.Oversight = make([]record.Oversight, 0, len(oversights))
	var actedOn int64 // the highest version a review took effect on
	var overriders []string
	for _, e := range oversights {
		o := e.Oversight
		entry := record.Oversight{
			EventID: e.ID, Kind: o.Kind, Outcome: o.Outcome, Reviewer: o.Reviewer, Role: o.Role,
			Rationale: o.Rationale, At: o.OccurredAt, RecordVersion: o.RecordVersion, Tenant: o.Tenant,
			Sender: e.Sender, ReceivedAt: e.ReceivedAt,
		}
		dec, isDecision := decs[e.ID]
		switch {
		case cfg.SeparationOfDuties && who[strings.ToLower(o.Reviewer)]:
			entry.Effect = record.OversightSelfReview
		case o.RecordVersion > 0 && o.RecordVersion <= actedOn && o.Kind != "approval":
			entry.Effect = record.OversightStale
		case o.Kind == "override" && cfg.FourEyesOverrides:
			switch {
			case slices.Contains(overriders, strings.ToLower(o.Reviewer)):
				entry.Effect = record.OversightSameReviewer
			case len(overriders) == 0:
				overriders = append(overriders, strings.ToLower(o.Reviewer))
				entry.Effect = record.OversightAwaitingSecond
			default:
				overriders = append(overriders, strings.ToLower(o.Reviewer))
				entry.Effect = record.OversightApplied
			}
		case isDecision && o.Kind == "approval":
			switch {
			case dec.Counted && dec.Note == NoteAwaitingSecond:
				entry.Effect = record.OversightAwaitingSecond
			case dec.Counted:
				entry.Effect = record.OversightApplied
			case dec.Note == NoteSameApprover:
				entry.Effect = record.OversightSameReviewer
			default:
				entry.Effect = record.OversightNoEffect
			}
		default:
			entry.Effect = record.OversightApplied
		}
		if entry.Effect == record.OversightApplied {
			if o.Outcome != "" {
				d.Risk.ReviewStatus = o.Outcome
			}
			actedOn = max(actedOn, o.RecordVersion)
		}
		d.Oversight = append(d.Oversight, entry)
	}
}

// access builds the record of one access to the audit trail: who read what,
// when (ingest's receive time is the record's start time), through which
// credential. It is never sampled and has no risk tier: it describes no
// request.
func (b *Builder) access(d *record.Decision, e *event.Event) {
	a := e.Access
	d.Access = record.Access{Action: a.Action, Actor: a.Actor, Role: a.Role, Via: a.Via, Client: a.Client, Sender: e.Sender,
		Target: a.Target, TargetVersion: a.TargetVersion, Format: a.Format, Query: a.Query, At: a.OccurredAt}
	d.Request.StartTime, d.Request.EndTime = e.ReceivedAt, e.ReceivedAt
	d.Identity.Tenant = first(a.Tenant, "*")
	d.Identity.Subject = a.Actor
	d.Outcome.GuardrailStatus = event.GuardrailNotRun
	d.Content.CapturePolicy = b.rules.Content.Policy
	d.NearMiss.Reasons, d.Risk.Reasons = []string{}, []string{}
	d.Approval.Approvers, d.Approval.RejectedBy, d.Approval.Decisions = []string{}, []string{}, []record.ApprovalDecision{}
}

func minNonZero(a, b record.Time) record.Time {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
