package event

import (
	"errors"
	"fmt"
	"strings"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/source"
)

// Gateway is one security-gateway / policy-engine decision
// (schemas/gateway-event.v1.json).
type Gateway struct {
	EventID     string
	RequestKey  string
	TraceID     string
	OccurredAt  record.Time
	Gateway     string
	Stage       string
	SubjectID   string
	Tenant      string
	Roles       []string
	PolicyID    string
	Version     string
	Decision    string // allow, block, review, modify
	Reason      string
	RuleIDs     []string
	DataClasses []string
	RiskScore   *float64 // 0..1
	ModelAlias  string
}

// ParseGateway decodes a gateway event.
func ParseGateway(b []byte) (*Gateway, error) {
	var w struct {
		Schema     string `json:"schema"`
		EventID    string `json:"event_id"`
		RequestKey string `json:"request_key"`
		TraceID    string `json:"trace_id"`
		OccurredAt string `json:"occurred_at"`
		Gateway    string `json:"gateway"`
		Stage      string `json:"stage"`
		Subject    *struct {
			ID     string      `json:"id"`
			Tenant string      `json:"tenant"`
			Roles  flexStrings `json:"roles"`
		} `json:"subject"`
		Policy struct {
			ID       string      `json:"id"`
			Version  string      `json:"version"`
			Decision string      `json:"decision"`
			Reason   string      `json:"reason"`
			RuleIDs  flexStrings `json:"rule_ids"`
		} `json:"policy"`
		DataClassification flexStrings `json:"data_classification"`
		RiskScore          flexFloat   `json:"risk_score"`
		ModelAlias         string      `json:"model_alias"`
	}
	if err := unmarshal(sanitize(b), &w); err != nil {
		return nil, fmt.Errorf("gateway event: %w", err)
	}
	if w.EventID == "" || w.RequestKey == "" {
		return nil, errors.New("gateway event: event_id and request_key are required")
	}
	switch w.Policy.Decision {
	case "allow", "block", "review", "modify":
	default:
		return nil, fmt.Errorf("gateway event: policy.decision %q, want allow, block, review or modify", w.Policy.Decision)
	}
	g := &Gateway{
		EventID: w.EventID, RequestKey: w.RequestKey, TraceID: w.TraceID,
		OccurredAt: parseTime(w.OccurredAt), Gateway: w.Gateway, Stage: w.Stage,
		PolicyID: w.Policy.ID, Version: w.Policy.Version, Decision: w.Policy.Decision, Reason: w.Policy.Reason,
		RuleIDs: sortedUnique(w.Policy.RuleIDs), DataClasses: sortedUnique(w.DataClassification),
		RiskScore: w.RiskScore.ptr(), ModelAlias: w.ModelAlias,
	}
	if s := w.Subject; s != nil {
		g.SubjectID, g.Tenant, g.Roles = s.ID, s.Tenant, sortedUnique(s.Roles)
	}
	return g, nil
}

// Ref locates one Decision version in the decisions topic.
type Ref struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// Oversight is one human-oversight event (schemas/oversight-event.v1.json).
type Oversight struct {
	EventID       string
	Kind          string // review, approval, override, escalation, sampling_control
	RequestKey    string
	RecordID      string
	RecordVersion int64
	Ref           *Ref
	Outcome       string
	Reviewer      string
	Role          string
	Tenant        string
	Rationale     string
	OccurredAt    record.Time
	// Burst and Tiers are set for kind sampling_control only.
	Burst bool
	Tiers []string
}

// KindSamplingControl switches burst sampling; it concerns no record.
const KindSamplingControl = "sampling_control"

// ParseOversight decodes an oversight event.
func ParseOversight(b []byte) (*Oversight, error) {
	var w struct {
		EventID       string `json:"event_id"`
		Kind          string `json:"kind"`
		RequestKey    string `json:"request_key"`
		RecordID      string `json:"record_id"`
		RecordVersion int64  `json:"record_version"`
		DecisionRef   *Ref   `json:"decision_ref"`
		Outcome       string `json:"outcome"`
		Reviewer      struct {
			ID     string `json:"id"`
			Role   string `json:"role"`
			Tenant string `json:"tenant"`
		} `json:"reviewer"`
		Rationale  string `json:"rationale"`
		OccurredAt string `json:"occurred_at"`
		Sampling   *struct {
			Burst bool        `json:"burst"`
			Tiers flexStrings `json:"tiers"`
		} `json:"sampling"`
	}
	if err := unmarshal(sanitize(b), &w); err != nil {
		return nil, fmt.Errorf("oversight event: %w", err)
	}
	if w.EventID == "" {
		return nil, errors.New("oversight event: event_id is required")
	}
	o := &Oversight{
		EventID: w.EventID, Kind: w.Kind, RequestKey: w.RequestKey, RecordID: w.RecordID,
		RecordVersion: w.RecordVersion, Ref: w.DecisionRef, Outcome: w.Outcome,
		Reviewer: w.Reviewer.ID, Role: w.Reviewer.Role, Tenant: w.Reviewer.Tenant,
		Rationale: w.Rationale, OccurredAt: parseTime(w.OccurredAt),
	}
	if w.Kind == KindSamplingControl {
		if w.Sampling == nil {
			return nil, errors.New("oversight event: sampling_control without sampling")
		}
		o.Burst, o.Tiers = w.Sampling.Burst, sortedUnique(w.Sampling.Tiers)
		return o, nil
	}
	if w.RequestKey == "" {
		return nil, fmt.Errorf("oversight event: kind %q without request_key", w.Kind)
	}
	return o, nil
}

// Approval is one approval event of a gateway
// (schemas/approval-event.v1.json).
type Approval struct {
	EventID           string
	RequestKey        string
	OccurredAt        record.Time
	Gateway           string
	Kind              string // approval_requested, approved, rejected, override, escalation
	Tier              string
	RequiredApprovals int
	SubjectID         string
	Tenant            string
	Approver          string
	Role              string
	Reason            string
}

// Approval event kinds.
const (
	ApprovalRequested = "approval_requested"
	ApprovalApproved  = "approved"
	ApprovalRejected  = "rejected"
	ApprovalOverride  = "override"
	ApprovalEscalated = "escalation"
)

// ParseApproval decodes an approval event.
func ParseApproval(b []byte) (*Approval, error) {
	var w struct {
		EventID           string    `json:"event_id"`
		RequestKey        string    `json:"request_key"`
		OccurredAt        string    `json:"occurred_at"`
		Gateway           string    `json:"gateway"`
		Kind              string    `json:"kind"`
		Tier              string    `json:"tier"`
		RequiredApprovals flexFloat `json:"required_approvals"`
		Subject           *struct {
			ID     string `json:"id"`
			Tenant string `json:"tenant"`
		} `json:"subject"`
		Approver *struct {
			ID   string `json:"id"`
			Role string `json:"role"`
		} `json:"approver"`
		Reason string `json:"reason"`
	}
	if err := unmarshal(sanitize(b), &w); err != nil {
		return nil, fmt.Errorf("approval event: %w", err)
	}
	if w.EventID == "" || w.RequestKey == "" {
		return nil, errors.New("approval event: event_id and request_key are required")
	}
	switch w.Kind {
	case ApprovalRequested, ApprovalApproved, ApprovalRejected, ApprovalOverride, ApprovalEscalated:
	default:
		return nil, fmt.Errorf("approval event: kind %q, want approval_requested, approved, rejected, override or escalation", w.Kind)
	}
	a := &Approval{EventID: w.EventID, RequestKey: w.RequestKey, OccurredAt: parseTime(w.OccurredAt), Gateway: w.Gateway,
		Kind: w.Kind, Tier: w.Tier, Reason: w.Reason}
	if p := w.RequiredApprovals.ptr(); p != nil && *p >= 1 && *p <= 10 {
		a.RequiredApprovals = int(*p)
	}
	if s := w.Subject; s != nil {
		a.SubjectID, a.Tenant = s.ID, s.Tenant
	}
	if ap := w.Approver; ap != nil {
		a.Approver, a.Role = ap.ID, ap.Role
	}
	if a.Kind != ApprovalRequested && a.Approver == "" {
		return nil, fmt.Errorf("approval event: kind %q without approver", a.Kind)
	}
	return a, nil
}

// Access is one access event (schemas/access-event.v1.json).
type Access struct {
	EventID       string
	OccurredAt    record.Time
	Action        string
	Actor         string
	Role          string
	Via           string
	Client        string
	Tenant        string
	Target        string
	TargetVersion int64
	Format        string
	Query         string
}

// ParseAccess decodes an access event.
func ParseAccess(b []byte) (*Access, error) {
	var w struct {
		EventID    string `json:"event_id"`
		OccurredAt string `json:"occurred_at"`
		Action     string `json:"action"`
		Actor      struct {
			ID     string `json:"id"`
			Role   string `json:"role"`
			Via    string `json:"via"`
			Client string `json:"client"`
		} `json:"actor"`
		Tenant string `json:"tenant"`
		Target *struct {
			RecordID string    `json:"record_id"`
			Version  flexFloat `json:"version"`
		} `json:"target"`
		Export *struct {
			Format string `json:"format"`
			Query  string `json:"query"`
		} `json:"export"`
	}
	if err := unmarshal(sanitize(b), &w); err != nil {
		return nil, fmt.Errorf("access event: %w", err)
	}
	if w.EventID == "" || w.Action == "" || w.Actor.ID == "" {
		return nil, errors.New("access event: event_id, action and actor.id are required")
	}
	a := &Access{EventID: w.EventID, OccurredAt: parseTime(w.OccurredAt), Action: w.Action, Actor: w.Actor.ID,
		Role: w.Actor.Role, Via: w.Actor.Via, Client: w.Actor.Client, Tenant: w.Tenant}
	if t := w.Target; t != nil {
		a.Target = t.RecordID
		if v := t.Version.ptr(); v != nil && *v >= 0 && *v < 1<<32 {
			a.TargetVersion = int64(*v)
		}
	}
	if x := w.Export; x != nil {
		a.Format, a.Query = x.Format, x.Query
	}
	return a, nil
}

// Alert is one LiteLLM budget alert webhook.
type Alert struct {
	EntityType string // normalised event_group: key, user, team, end_user, organization, …
	EntityID   string
	Event      string
	Spend      *float64
	MaxBudget  *float64
}

// ParseAlert decodes a budget alert. The entity comes from key, the raw
// record's key ("<event_group>:<entity id>", as ingest wrote it); when key is
// empty it is derived from the body.
func ParseAlert(b []byte, key string) (*Alert, error) {
	var w struct {
		Event      flexString `json:"event"`
		EventGroup flexString `json:"event_group"`
		Spend      flexFloat  `json:"spend"`
		MaxBudget  flexFloat  `json:"max_budget"`
		Token      flexString `json:"token"`
		UserID     flexString `json:"user_id"`
		CustomerID flexString `json:"customer_id"`
		TeamID     flexString `json:"team_id"`
		OrgID      flexString `json:"organization_id"`
	}
	if err := unmarshal(sanitize(b), &w); err != nil {
		return nil, fmt.Errorf("budget alert: %w", err)
	}
	a := &Alert{Event: string(w.Event), Spend: w.Spend.ptr(), MaxBudget: w.MaxBudget.ptr()}
	if typ, id, ok := strings.Cut(key, ":"); ok {
		a.EntityType, a.EntityID = source.NormalizeGroup(typ), id
	} else {
		a.EntityType = source.NormalizeGroup(string(w.EventGroup))
		a.EntityID = map[string]string{"key": string(w.Token), "user": string(w.UserID), "end_user": string(w.CustomerID),
			"team": string(w.TeamID), "organization": string(w.OrgID), "proxy": "proxy"}[a.EntityType]
	}
	if a.EntityType == "" || a.Event == "" {
		return nil, errors.New("budget alert: no event or event_group")
	}
	return a, nil
}
