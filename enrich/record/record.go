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
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
)

// SchemaVersion of Decision. Bump it on any change of field names, types or
// meaning; readers must accept every version they ever wrote.
const SchemaVersion = 1

// Completeness values.
const (
	Complete = "complete"  // the request's final event arrived
	TimedOut = "timed_out" // emitted after waiting in vain for the final event
	Amended  = "amended"   // a new version after a late event changed a sealed record
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
	Completeness  string `json:"completeness"` // Complete, TimedOut or Amended

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
}

// Attempt is one provider call as LiteLLM reported it.
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
}

// ID returns the record id of a request key: the first 128 bits of
// SHA-256("auditline.decision.v1" ‖ 0x00 ‖ key), in hex.
func ID(requestKey string) string {
	h := sha256.New()
	h.Write([]byte("auditline.decision.v1\x00"))
	h.Write([]byte(requestKey))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Canonical returns the RFC 8785 (JCS) bytes of d: the bytes the archive hashes.
func (d *Decision) Canonical() ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("marshal decision %s: %w", d.RecordID, err)
	}
	c, err := jcs.Transform(b)
	if err != nil {
		return nil, fmt.Errorf("canonicalise decision %s: %w", d.RecordID, err)
	}
	return c, nil
}
