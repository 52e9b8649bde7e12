// Package record defines the decision record (v1): everything an auditor may ask
// about one user request through the LLM gateway, built by enrich from the
// request's source events.
//
// The Go type Decision is the single source of every form the record takes:
//
//   - JSON (encoding/json with the struct tags): the Kafka value on
//     auditline.decisions, and what the dashboards show;
//   - canonical bytes (RFC 8785 JCS of that JSON): what the archive hashes into
//     the Merkle tree, so a verifier can recompute leaves without our code;
//   - ClickHouse columns and the Parquet schema: derived by Fields, which walks
//     this type (store and sinks/archive never list columns by hand).
//
// Determinism: a Decision is a pure function of the set of source events (and
// the configuration), never of arrival order, duplicates or wall-clock time —
// so a replay of any stage yields the same bytes. Lists are kept in a canonical
// order (attempts by start time, then event id; evidence by event id).
package record

import (
	"crypto/sha256"
	"encoding/hex"
)

// SchemaVersion of Decision. Bump it on any change of field names, types or
// meaning; readers must accept every version they ever wrote.
const SchemaVersion = 1

// Completeness values.
const (
	Complete = "complete"  // the request's final event arrived
	TimedOut = "timed_out" // emitted after waiting in vain for the final event
	Amended  = "amended"   // a new version after a late event changed a sealed record
	// MissingOutcome: auditline's LiteLLM plugin marked the request started
	// (request_started, spooled before the upstream call) but no LiteLLM
	// outcome arrived within enrich.outcome_wait: the proxy died mid-request,
	// or the outcome is late (it then amends the record).
	MissingOutcome = "missing_outcome"
)

// Outcome values.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeBlocked = "blocked" // by a guardrail, a policy, a budget or a rate limit
	OutcomePending = "pending" // no LiteLLM event yet (timed out waiting for one)
)

// Decision is one record version. A column's name is its `col` tag when it has
// one, else its JSON name prefixed by the JSON names of the enclosing objects
// that are not tagged `col:"inline"`, joined by "_" (see Fields).
type Decision struct {
	SchemaVersion int    `json:"schema_version"`
	RecordID      string `json:"record_id"`    // ID(RequestKey): deterministic, stable across versions
	Version       uint32 `json:"version"`      // 1, 2, … per record id; the highest wins
	Completeness  string `json:"completeness"` // Complete, TimedOut, Amended or MissingOutcome

	Request    Request     `json:"request" col:"inline"`
	Identity   Identity    `json:"identity" col:"inline"`
	Routing    Routing     `json:"routing" col:"inline"`
	Budget     Budget      `json:"budget"`
	Guardrails []Guardrail `json:"guardrails"`
	Policy     Policy      `json:"policy"`
	Oversight  []Oversight `json:"oversight"`
	Outcome    Outcome     `json:"outcome" col:"inline"`
	Content    Content     `json:"content" col:"inline"`
	NearMiss   NearMiss    `json:"near_miss"`
	Risk       Risk        `json:"risk"`
	Evidence   Evidence    `json:"evidence" col:"inline"`

	// Issue 14, completeness at the first hop: the instance of auditline's
	// LiteLLM plugin that sent the request's events, and the gateway
	// configuration they ran under. Each source event's sequence number is
	// in Evidence.Sources. Zero for LiteLLM's stock generic_api callback.
	Emitter Emitter `json:"emitter"`

	// ---- issue 18: human oversight an auditor can rely on. Additive (zero
	// for a request with no approval event and for every older record):
	// approval before action, judged on ingest's receive times; and the
	// access log (a record whose access.action is set logs one access to
	// the audit trail instead of describing a request).
	Approval Approval `json:"approval"`
	Access   Access   `json:"access"`

	// Issue 19, provenance of our own rules: "sha256:<hex>" of the RFC 8785
	// bytes of the enrich rules this version was built under (tiers,
	// sampling, near-miss thresholds, approval, capture policy:
	// fold.Rules.Canonical), sealed in the archive as rules/<hex>.json
	// (privacy/rules). Empty in records built before it.
	RulesHash string `json:"rules_hash"`
}

// Emitter is the plugin instance (one per proxy worker slot) that emitted a
// request's events, and the gateway configuration in force.
type Emitter struct {
	ID         string `json:"id"`          // emitter id, stable per proxy instance and worker slot
	ConfigHash string `json:"config_hash"` // sha256:<hex> of the RFC 8785 bytes of the gateway_config's config
	ConfigSeq  int64  `json:"config_seq"`  // sequence number of the gateway_config event that announced it
}

// Request says which request this is and when it ran.
type Request struct {
	RequestKey string `json:"request_key"` // litellm_call_id, else trace_id, else id (DESIGN.md §2)
	TraceID    string `json:"trace_id"`
	CallID     string `json:"call_id"`
	CallType   string `json:"call_type"` // acompletion, aembedding, …
	Stream     bool   `json:"stream"`
	StartTime  Time   `json:"start_time"` // first attempt's start
	EndTime    Time   `json:"end_time"`   // last attempt's end
	DurationMS int64  `json:"duration_ms"`
}

// Identity is who called: LiteLLM's key metadata merged with the subject a
// gateway event names.
type Identity struct {
	KeyHash     string   `json:"key_hash"` // SHA-256 of the virtual key, never the key
	KeyAlias    string   `json:"key_alias"`
	UserID      string   `json:"user_id"`
	UserEmail   string   `json:"user_email"`
	TeamID      string   `json:"team_id"`
	TeamAlias   string   `json:"team_alias"`
	OrgID       string   `json:"org_id"`
	OrgAlias    string   `json:"org_alias"`
	ProjectID   string   `json:"project_id"`
	EndUser     string   `json:"end_user"`
	RequesterIP string   `json:"requester_ip"`
	UserAgent   string   `json:"user_agent"`
	Route       string   `json:"route"`
	Subject     string   `json:"subject"` // the natural person, from a gateway event
	Tenant      string   `json:"tenant"`  // gateway tenant, else org id, else "default"
	Roles       []string `json:"roles"`
	Tags        []string `json:"tags"` // request_tags
}

// Routing is how the requested alias was served.
type Routing struct {
	RequestedAlias   string    `json:"requested_alias"` // the failure payload's model group, else the first attempt's
	ServedModelGroup string    `json:"served_model_group"`
	ServedModel      string    `json:"served_model"`
	DeploymentID     string    `json:"deployment_id"`
	Provider         string    `json:"provider"`
	APIBase          string    `json:"api_base"`
	ProviderModel    string    `json:"provider_model"` // hidden_params.litellm_model_name
	FallbackUsed     bool      `json:"fallback_used"`  // an attempt used another model group, or LiteLLM counted attempted fallbacks
	RetryCount       int32     `json:"retry_count"`    // attempts that repeated the previous attempt's group, at least LiteLLM's attempted-retries count
	AttemptCount     int32     `json:"attempt_count"`
	Attempts         []Attempt `json:"attempts"`

	// ---- issue 21: the real route. Additive (zero in older records).
	// Completeness says how much of the route the record knows (one of the
	// Routing* values): with auditline's LiteLLM plugin every upstream call
	// is an event of its own and Attempts is the whole ordered route; with
	// LiteLLM's stock callback only its payloads (the first failure and the
	// final outcome) are known, so RetryCount and FallbackUsed are lower
	// bounds and "false" means "not seen", never "did not happen".
	Completeness string `json:"completeness" col:"routing_completeness"`
	// FallbackTargets are the model groups the router fell back to, in hop
	// order (A → B → C: [B, C]); empty when no fallback was seen.
	FallbackTargets []string `json:"fallback_targets"`
}

// Routing completeness values.
const (
	// RoutingComplete: the plugin reported every upstream call (attempt
	// events numbered 1..n without a hole, as many as the outcome announced).
	RoutingComplete = "complete"
	// RoutingPartial: the plugin reported attempts, but some are missing (a
	// hole in their numbers, fewer than the outcome announced) or the
	// request's outcome never arrived.
	RoutingPartial = "partial"
	// RoutingFinalAttemptOnly: only LiteLLM's own payloads (stock
	// generic_api callback, or a plugin without attempt events): the first
	// failure and the final outcome; retries and fallbacks in between are
	// unknown unless LiteLLM counted them.
	RoutingFinalAttemptOnly = "final_attempt_only"
	// RoutingNone: no event says how the request was routed (a gateway
	// event alone, a request_started marker without anything else).
	RoutingNone = "none"
)

// Attempt is one provider call: an attempt event of the LiteLLM plugin, or
// (routing completeness final_attempt_only) one LiteLLM payload.
type Attempt struct {
	EventID          string  `json:"event_id"`
	Status           string  `json:"status"` // success, failure
	ModelGroup       string  `json:"model_group"`
	Model            string  `json:"model"`
	DeploymentID     string  `json:"deployment_id"`
	Provider         string  `json:"provider"`
	APIBase          string  `json:"api_base"`
	ErrorCode        string  `json:"error_code"`
	ErrorClass       string  `json:"error_class"`
	ErrorMessage     string  `json:"error_message"`
	StartTime        Time    `json:"start_time"`
	EndTime          Time    `json:"end_time"`
	CostUSD          float64 `json:"cost_usd"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	CacheHit         bool    `json:"cache_hit"`

	// ---- issue 21 (additive). Kind is first, retry (same model group as
	// the attempt before) or fallback (another group: a hop from
	// FallbackFrom to ModelGroup). Timeout: the call ended because a
	// timeout expired (ErrorClass Timeout, ErrorCode 408).
	Kind         string `json:"kind"`
	FallbackFrom string `json:"fallback_from"`
	Timeout      bool   `json:"timeout"`
}

// Budget is the budget state as seen at the call (pre-call spend).
type Budget struct {
	Key     BudgetState `json:"key"`
	User    BudgetState `json:"user"`
	Team    BudgetState `json:"team"`
	EndUser BudgetState `json:"end_user"`
	// MaxPctUsed is the highest PctUsed of the entities above.
	MaxPctUsed *float64 `json:"max_pct_used"`
	// Alerts holds the latest budget alert per entity received before the call ended.
	Alerts []BudgetAlert `json:"alerts"`
	Denial BudgetDenial  `json:"denial"`
}

// BudgetState is one entity's budget. Nil means unknown.
type BudgetState struct {
	Spend     *float64 `json:"spend"`
	MaxBudget *float64 `json:"max_budget"`
	PctUsed   *float64 `json:"pct_used"` // 100 × spend / max_budget
	ResetAt   string   `json:"reset_at"` // ISO-8601 as LiteLLM sent it
}

// BudgetAlert is one LiteLLM alerting webhook.
type BudgetAlert struct {
	EventID    string   `json:"event_id"`
	EntityType string   `json:"entity_type"` // key, user, team, end_user, organization, project, proxy
	EntityID   string   `json:"entity_id"`
	Event      string   `json:"event"` // budget_crossed, threshold_crossed, …
	Spend      *float64 `json:"spend"`
	MaxBudget  *float64 `json:"max_budget"`
	ReceivedAt Time     `json:"received_at"`
}

// BudgetDenial is set when the proxy refused the call for budget.
type BudgetDenial struct {
	Denied     bool     `json:"denied" col:"budget_denied"`
	EntityType string   `json:"entity_type"`
	EntityID   string   `json:"entity_id"`
	Limit      *float64 `json:"limit"`
	Spend      *float64 `json:"spend"`
}

// Guardrail is one guardrail run on the request.
type Guardrail struct {
	Name              string   `json:"name"`
	Provider          string   `json:"provider"`
	Mode              string   `json:"mode"`   // pre_call, during_call, post_call, …
	Status            string   `json:"status"` // normalised: passed, intervened, failed, not_run
	RawStatus         string   `json:"raw_status"`
	Action            string   `json:"action"`
	MaskedEntityCount int64    `json:"masked_entity_count"`
	MaskedEntities    []string `json:"masked_entities"` // "TYPE=count", sorted
	RiskScore         *float64 `json:"risk_score"`
	Categories        []string `json:"categories"`
}

// Policy is the gateway's policy outcome.
type Policy struct {
	Decision    string           `json:"decision"` // the strictest: block > review > modify > allow; "" if none
	PolicyID    string           `json:"id"`
	Version     string           `json:"version"`
	DataClasses []string         `json:"data_classes"`
	Decisions   []PolicyDecision `json:"decisions"`
}

// PolicyDecision is one gateway or policy-engine event.
type PolicyDecision struct {
	EventID     string   `json:"event_id"`
	Gateway     string   `json:"gateway"`
	PolicyID    string   `json:"policy_id"`
	Version     string   `json:"version"`
	Decision    string   `json:"decision"` // allow, block, review, modify
	Reason      string   `json:"reason"`
	DataClasses []string `json:"data_classes"`
	At          Time     `json:"at"`
	Stage       string   `json:"stage"`      // pre_call, during_call, post_call, tool_call, other
	RuleIDs     []string `json:"rule_ids"`   // the policy rules that matched, sorted
	RiskScore   *float64 `json:"risk_score"` // the gateway's score, 0..1; nil if none
}

// Oversight is one human oversight action on the request.
type Oversight struct {
	EventID   string `json:"event_id"`
	Kind      string `json:"kind"`    // approval, override, escalation, review
	Outcome   string `json:"outcome"` // approve, flag, escalate, override, reject
	Reviewer  string `json:"reviewer"`
	Role      string `json:"role"`
	Rationale string `json:"rationale"`
	At        Time   `json:"at"`
	// RecordVersion is the version the reviewer saw (0 if not given).
	RecordVersion int64  `json:"record_version"`
	Tenant        string `json:"tenant"` // the reviewer's tenant

	// ---- issue 18: bound identity, trusted time, and what the entry did.
	// Sender is the name of the ingest token that posted the event (sealed
	// by ingest, never taken from the event): who vouched for Reviewer.
	Sender string `json:"sender"`
	// ReceivedAt is ingest's receive time: entries are ordered by it, never
	// by At (the sender's clock).
	ReceivedAt Time `json:"received_at"`
	// Effect is what the entry did to the record: OversightApplied, or why
	// not (OversightStale, OversightSelfReview, OversightAwaitingSecond,
	// OversightSameReviewer).
	Effect string `json:"effect"`
}

// Oversight effects.
const (
	OversightApplied = "applied" // it set the review status (or counted as an approval)
	// OversightStale: the reviewer saw a version older than one a review
	// received before had already acted on; it is kept and shown as
	// conflicting, never silently overriding the newer review.
	OversightStale          = "stale"
	OversightSelfReview     = "self_review"              // the reviewer is the request's subject (separation of duties)
	OversightAwaitingSecond = "awaiting_second_reviewer" // four eyes: waits for a second, different reviewer
	OversightSameReviewer   = "same_reviewer"            // four eyes: the same reviewer again counts once
	OversightNoEffect       = "recorded"                 // kept, changes nothing (an escalation after the decision)
)

// Approval is approval before action (EU AI Act Art. 14): whether the
// request needed a human's approval before it executed, whether it had it,
// and who gave it. Every time that decides is ingest's receive time of an
// event (trusted: stamped by ingest, sealed in the evidence), never a
// sender's clock. Approval and execution are compared on those times: an
// approval counts for an execution only if ingest received it before it
// received the first evidence of that execution.
type Approval struct {
	// Required says a rule or the gateway required approval before the
	// request executed; RequiredBy says which: "gateway" (an
	// approval_requested event) or "tier:<tier>" (enrich.approval.tiers).
	Required   bool   `json:"required"`
	RequiredBy string `json:"required_by"`
	// Needed is the distinct approvers required: 2 under four eyes
	// (enrich.approval.four_eyes_tiers), or what the gateway asked.
	Needed int32 `json:"needed"`
	// Status is one of the Approval* values; "" when there is nothing to judge.
	Status string `json:"status"`
	// Approvers are the distinct approvers counted, in the order ingest
	// received their decisions; RejectedBy those who rejected.
	Approvers  []string `json:"approvers"`
	RejectedBy []string `json:"rejected_by"`
	// Receive times (ingest's clock, ms): the first approval_requested, the
	// approval that completed the needed count, the first counted
	// rejection, the first evidence of execution (a LiteLLM event).
	RequestedAt Time `json:"requested_at"`
	ApprovedAt  Time `json:"approved_at"`
	RejectedAt  Time `json:"rejected_at"`
	ExecutedAt  Time `json:"executed_at"`
	// Decisions lists every approval decision received (gateway approval
	// events and oversight events of kind approval or override), in receive
	// order, whether or not it counted.
	Decisions []ApprovalDecision `json:"decisions"`
}

// Approval statuses.
const (
	ApprovalNotRequired      = "not_required"
	ApprovalPending          = "awaiting_approval"         // required, not decided, not executed
	ApprovalApproved         = "approved"                  // approved, not (yet) executed
	ApprovalRejected         = "rejected"                  // rejected, not executed
	ApprovalExecutedAfter    = "executed_after_approval"   // the required approval was received before execution
	ApprovalExecutedWithout  = "executed_without_approval" // executed before the required approval (or without one): a violation
	ApprovalExecutedRejected = "executed_after_rejection"  // executed although rejected: a violation
)

// ApprovalDecision is one decision on an approval.
type ApprovalDecision struct {
	EventID  string `json:"event_id"`
	Source   string `json:"source"` // approval (a gateway's event) or oversight (a review tool's)
	Kind     string `json:"kind"`   // approved, rejected, override, escalation
	Approver string `json:"approver"`
	Role     string `json:"role"`
	Sender   string `json:"sender"` // the ingest token that posted it
	Reason   string `json:"reason"`
	// At is the sender's clock (shown only); ReceivedAt is ingest's, which
	// decides.
	At         Time `json:"at"`
	ReceivedAt Time `json:"received_at"`
	Counted    bool `json:"counted"`
	// Note says why a decision did not count: self_approval,
	// same_approver, after_execution, after_decision, awaiting_second_reviewer.
	Note string `json:"note"`
}

// Access is set on a record that logs one access to the audit trail: who
// read what, when, through which credential. Records of requests leave it
// empty (Action "").
type Access struct {
	Action string `json:"action"` // login, login_failed, logout, record_view, proof_download, export
	Actor  string `json:"actor"`
	Role   string `json:"role"`
	Via    string `json:"via"`    // password, sso, token
	Client string `json:"client"` // the client's address as the tool saw it
	Sender string `json:"sender"` // the ingest token that posted it
	// Target is the record read (record_view, proof_download) and its version.
	Target        string `json:"target"`
	TargetVersion int64  `json:"target_version"`
	// Format and Query describe an export (csv or json; the filter as a
	// dashboard URL query).
	Format string `json:"format"`
	Query  string `json:"query"`
	At     Time   `json:"at"` // the tool's clock; the record's evidence has ingest's
}

// Outcome is how the request ended and what it cost.
type Outcome struct {
	Status           string  `json:"status" col:"outcome"` // OutcomeSuccess, …
	BlockedBy        string  `json:"blocked_by"`           // guardrail, policy, budget, rate_limit, ""
	ErrorCode        string  `json:"error_code"`
	ErrorClass       string  `json:"error_class"`
	ErrorMessage     string  `json:"error_message"`
	GuardrailStatus  string  `json:"guardrail_status"` // worst of the guardrails; not_run if none
	CostUSD          float64 `json:"cost_usd"`         // sum over attempts
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	CacheHit         bool    `json:"cache_hit"`
	SavedCostUSD     float64 `json:"saved_cost_usd"`
}

// Content is the request and response text kept per the capture policy.
type Content struct {
	CapturePolicy  string `json:"capture_policy"`  // full, redacted, hash, none
	MessagesSHA256 string `json:"messages_sha256"` // of the JSON bytes of messages as received; always set when present
	ResponseSHA256 string `json:"response_sha256"`
	Messages       string `json:"messages"` // JSON; empty under hash and none
	Response       string `json:"response"`
	// Truncated is set when Messages or Response was cut to the configured
	// maximum size (the SHA-256s are always of the whole bytes).
	Truncated bool `json:"truncated" col:"content_truncated"`
}

// NearMiss says whether the request was nearly (or actually) stopped.
type NearMiss struct {
	Flagged bool     `json:"flagged" col:"near_miss"`
	Reasons []string `json:"reasons"` // sorted, e.g. budget_over_threshold, fallback_after_429
}

// Risk is the risk tier and sampling decision.
type Risk struct {
	Tier         string   `json:"tier"`
	Reasons      []string `json:"reasons"` // the rules that chose the tier
	Sampled      bool     `json:"sampled" col:"sampled"`
	SampleReason string   `json:"sample_reason" col:"sample_reason"` // baseline, burst, always, ""
	SampleRate   float64  `json:"sample_rate" col:"sample_rate"`
	ReviewStatus string   `json:"review_status" col:"review_status"` // outcome of the latest oversight event; "" if none
}

// Evidence lists the source events the record was built from.
type Evidence struct {
	Sources         []Source `json:"sources"`
	FirstReceivedAt Time     `json:"first_received_at"`
	LastReceivedAt  Time     `json:"last_received_at"`
}

// Source is one source event: its id and the SHA-256 of its original bytes.
type Source struct {
	EventID    string `json:"event_id"`
	Source     string `json:"source"` // litellm, gateway, oversight, alert
	SHA256     string `json:"sha256"`
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	Offset     int64  `json:"offset"`
	ReceivedAt Time   `json:"received_at"`
	// Issue 14: the plugin emitter that sent the event and its gap-free
	// sequence number ("" and 0 for events not sent by the LiteLLM plugin).
	Emitter string `json:"emitter"`
	Seq     int64  `json:"seq"`
}

// ID returns the record id of a request key: the first 128 bits of
// SHA-256("auditline.decision.v1" ‖ 0x00 ‖ key), in hex.
func ID(requestKey string) string {
	var buf [128]byte // on the stack for keys up to 106 bytes
	sum := sha256.Sum256(append(append(buf[:0], "auditline.decision.v1\x00"...), requestKey...))
	return hex.EncodeToString(sum[:16])
}

// Canonical returns the RFC 8785 (JCS) bytes of d: the bytes the archive
// hashes (see AppendCanonical).
func (d *Decision) Canonical() ([]byte, error) { return d.AppendCanonical(nil) }
