package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/auditline/auditline/enrich/record"
)

// LiteLLM is one LiteLLM payload (one attempt of a request), reduced to what a
// Decision needs.
type LiteLLM struct {
	ID       string
	TraceID  string
	CallID   string // litellm_call_id, else call_id
	CallType string
	Stream   bool
	Status   string // "success" or "failure" ("success" for the legacy v1 dict, which LiteLLM sent for successes only)
	Legacy   bool   // decoded from the legacy v1 flat dict

	Start, End record.Time

	Model, ModelID, ModelGroup, APIBase, Provider, ProviderModel string

	CostUSD          float64
	SavedCostUSD     float64
	PromptTokens     int64
	CompletionTokens int64
	CacheHit         bool

	// AttemptedRetries and AttemptedFallbacks are LiteLLM's own counters from
	// hidden_params.additional_headers["x-litellm-attempted-retries"|
	// "x-litellm-attempted-fallbacks"] (LiteLLM 1.106: success payloads of
	// non-streamed requests only); -1 when absent.
	AttemptedRetries, AttemptedFallbacks int64

	Identity Identity
	Budget   Budget
	Error    Error

	GuardrailStatus   string // status_fields.guardrail_status as sent
	Guardrails        []record.Guardrail
	AppliedGuardrails []string

	// Messages and Response are the JSON bytes of those members as received
	// (nil when absent, null, "", {} or []); their SHA-256s (hex) stay set
	// after DropContent.
	Messages, Response             []byte
	MessagesSHA256, ResponseSHA256 string

	// Emission is the "auditline" member auditline's LiteLLM plugin adds
	// (zero for the stock generic_api callback).
	Emission Emission

	floats [8]float64 // what Budget's and Error's pointers point to (see keep)
}

// keep returns f's value as a pointer into l's own storage (slot i, one per
// field), or nil when unknown: one allocation for the LiteLLM instead of one
// per known amount.
func (l *LiteLLM) keep(i int, f flexFloat) *float64 {
	if !f.ok {
		return nil
	}
	l.floats[i] = f.v
	return &l.floats[i]
}

// DropContent releases Messages and Response (their hashes stay), for capture
// policies that keep no content.
func (l *LiteLLM) DropContent() { l.Messages, l.Response = nil, nil }

func sha(b []byte) string {
	if b == nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Identity is who made the call, from the payload's metadata.
type Identity struct {
	KeyHash, KeyAlias, UserID, UserEmail, TeamID, TeamAlias string
	OrgID, OrgAlias, ProjectID, EndUser, RequesterIP        string
	UserAgent, Route                                        string
	Tags                                                    []string
}

// Budget is the spend and budgets as of auth (before this call's cost).
type Budget struct {
	KeySpend, KeyMax   *float64
	KeyResetAt         string
	UserSpend, UserMax *float64
	TeamSpend, TeamMax *float64
}

// Error is error_information.
type Error struct {
	Code, Class, Message, Provider   string
	Normalized                       string // normalized_error, e.g. "429_RATE_LIMIT_EXCEEDED" (LiteLLM 1.106)
	RateLimitCategory, RateLimitType string
	BudgetEntityType, BudgetEntityID string
	BudgetLimit, BudgetSpend         *float64
}

type wireLiteLLM struct {
	ID               flexString        `json:"id"`
	TraceID          flexString        `json:"trace_id"`
	CallID           flexString        `json:"litellm_call_id"`
	OldCallID        flexString        `json:"call_id"`
	CallType         flexString        `json:"call_type"`
	Stream           flexBool          `json:"stream"`
	ResponseCost     flexFloat         `json:"response_cost"`
	Cost             flexFloat         `json:"cost"` // legacy v1
	Status           flexString        `json:"status"`
	StatusFields     *wireStatusFields `json:"status_fields"`
	Provider         flexString        `json:"custom_llm_provider"`
	PromptTokens     flexFloat         `json:"prompt_tokens"`
	CompletionTokens flexFloat         `json:"completion_tokens"`
	StartTime        flexTime          `json:"startTime"`
	EndTime          flexTime          `json:"endTime"`
	Model            flexString        `json:"model"`
	ModelID          flexString        `json:"model_id"`
	ModelGroup       flexString        `json:"model_group"`
	APIBase          flexString        `json:"api_base"`
	Metadata         wireMeta          `json:"metadata"`
	CacheHit         flexBool          `json:"cache_hit"`
	SavedCacheCost   flexFloat         `json:"saved_cache_cost"`
	RequestTags      flexStrings       `json:"request_tags"`
	EndUser          flexString        `json:"end_user"`
	User             flexString        `json:"user"` // legacy v1
	RequesterIP      flexString        `json:"requester_ip_address"`
	UserAgent        flexString        `json:"user_agent"`
	Messages         jsontext.Value    `json:"messages"`
	Response         jsontext.Value    `json:"response"`
	ErrorStr         flexString        `json:"error_str"`
	ErrorInformation *wireError        `json:"error_information"`
	HiddenParams     *wireHidden       `json:"hidden_params"`
	Guardrails       jsontext.Value    `json:"guardrail_information"`
	Usage            flexString        `json:"usage"` // legacy v1: "Usage(completion_tokens=12, prompt_tokens=31, …)"
	Auditline        *wireEmission     `json:"auditline"`
}

type wireStatusFields struct {
	GuardrailStatus flexString `json:"guardrail_status"`
}

type wireError struct {
	Code              flexString `json:"error_code"`
	Class             flexString `json:"error_class"`
	Provider          flexString `json:"llm_provider"`
	Message           flexString `json:"error_message"`
	Normalized        flexString `json:"normalized_error"`
	RateLimitCategory flexString `json:"error_rate_limit_category"`
	RateLimitType     flexString `json:"error_rate_limit_type"`
	BudgetEntityType  flexString `json:"error_budget_entity_type"`
	BudgetEntityID    flexString `json:"error_budget_entity_id"`
	BudgetLimit       flexFloat  `json:"error_budget_limit"`
	BudgetSpend       flexFloat  `json:"error_budget_spend"`
}

type wireHidden struct {
	ModelID          flexString   `json:"model_id"`
	APIBase          flexString   `json:"api_base"`
	LiteLLMModelName flexString   `json:"litellm_model_name"`
	Headers          *wireHeaders `json:"additional_headers"`
}

type wireHeaders struct {
	Retries   flexFloat `json:"x-litellm-attempted-retries"`
	Fallbacks flexFloat `json:"x-litellm-attempted-fallbacks"`
}

type wireMetaFields struct {
	KeyHash           flexString  `json:"user_api_key_hash"`
	KeyAlias          flexString  `json:"user_api_key_alias"`
	KeySpend          flexFloat   `json:"user_api_key_spend"`
	KeyMax            flexFloat   `json:"user_api_key_max_budget"`
	KeyResetAt        flexString  `json:"user_api_key_budget_reset_at"`
	UserSpend         flexFloat   `json:"user_api_key_user_spend"`
	UserMax           flexFloat   `json:"user_api_key_user_max_budget"`
	TeamSpend         flexFloat   `json:"user_api_key_team_spend"`
	TeamMax           flexFloat   `json:"user_api_key_team_max_budget"`
	OrgID             flexString  `json:"user_api_key_org_id"`
	OrgAlias          flexString  `json:"user_api_key_org_alias"`
	TeamID            flexString  `json:"user_api_key_team_id"`
	TeamAlias         flexString  `json:"user_api_key_team_alias"`
	TeamID2           flexString  `json:"team_id"`
	TeamAlias2        flexString  `json:"team_alias"`
	ProjectID         flexString  `json:"user_api_key_project_id"`
	UserID            flexString  `json:"user_api_key_user_id"`
	UserEmail         flexString  `json:"user_api_key_user_email"`
	EndUser           flexString  `json:"user_api_key_end_user_id"`
	Route             flexString  `json:"user_api_key_request_route"`
	RequesterIP       flexString  `json:"requester_ip_address"`
	UserAgent         flexString  `json:"user_agent"`
	AppliedGuardrails flexStrings `json:"applied_guardrails"`
	Tags              flexStrings `json:"tags"`
}

// wireMeta is metadata as an object, or (legacy v1) as the Python str() of a
// dict; anything else decodes as empty.
type wireMeta struct{ wireMetaFields }

// UnmarshalJSONFrom decodes an object in place from the decoder (metadata
// is a third of a payload: UnmarshalJSON alone had it copied out and parsed
// twice); the legacy string form goes through UnmarshalJSON.
func (m *wireMeta) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '{' {
		b, err := dec.ReadValue()
		if err != nil {
			return err
		}
		return m.UnmarshalJSON(b)
	}
	*m = wireMeta{}
	return jsonv2.UnmarshalDecode(dec, &m.wireMetaFields, decodeOptions)
}

func (m *wireMeta) UnmarshalJSON(b []byte) error {
	*m = wireMeta{}
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '{':
		_ = unmarshal(b, &m.wireMetaFields)
	case '"':
		var s string
		if unmarshal(b, &s) != nil {
			return nil
		}
		v, err := pyLiteral(s)
		if err != nil {
			return nil
		}
		if d, ok := v.(map[string]any); ok {
			if j, err := jsonv2.Marshal(d); err == nil {
				_ = unmarshal(j, &m.wireMetaFields)
			}
		}
	}
	return nil
}

type wireGuardrail struct {
	Name       flexString           `json:"guardrail_name"`
	Provider   flexString           `json:"guardrail_provider"`
	Mode       flexMode             `json:"guardrail_mode"`
	Status     flexString           `json:"guardrail_status"`
	Masked     map[string]flexFloat `json:"masked_entity_count"`
	RiskScore  flexFloat            `json:"risk_score"`
	Categories flexStrings          `json:"violation_categories"`
	Action     flexString           `json:"guardrail_action"`
	// LiteLLM 1.106's built-in content filter: what it did per match
	// ("BLOCK", "MASK"); a mask is reported with status "success".
	MatchDetails []struct {
		ActionTaken flexString `json:"action_taken"`
	} `json:"match_details"`
}

// flexMode is guardrail_mode: a string, a list of strings (joined by ","), or
// {"tags": {…}, "default": …} (its default).
type flexMode string

func (f *flexMode) UnmarshalJSON(b []byte) error {
	*f = ""
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var s flexString
		_ = s.UnmarshalJSON(b)
		*f = flexMode(s)
	case '[':
		var l flexStrings
		_ = l.UnmarshalJSON(b)
		*f = flexMode(strings.Join(l, ","))
	case '{':
		var o struct {
			Default jsontext.Value `json:"default"`
		}
		if unmarshal(b, &o) == nil && len(o.Default) > 0 {
			var d flexMode
			_ = d.UnmarshalJSON(o.Default)
			*f = d
		}
	}
	return nil
}

var usageRe = regexp.MustCompile(`(prompt_tokens|completion_tokens)=(\d+)`)

// ParseLiteLLM decodes one LiteLLM payload. It fails only when b is not a JSON
// object. The result holds no reference to b.
func ParseLiteLLM(b []byte) (*LiteLLM, error) { return parseLiteLLM(b, true) }

// wires recycles the wire form (a kilobyte, needed only while one payload
// is decoded; literal copies out everything it keeps).
var wires = sync.Pool{New: func() any { return new(wireLiteLLM) }}

// parseLiteLLM is ParseLiteLLM; without content, Messages and Response are
// hashed in place and left nil (as DropContent leaves them), never copied.
func parseLiteLLM(b []byte, content bool) (*LiteLLM, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("litellm payload: want a JSON object")
	}
	w := wires.Get().(*wireLiteLLM)
	defer wires.Put(w)
	*w = wireLiteLLM{}
	if !fastLiteLLM(b, w) {
		// The fast path's values may alias b; the general path's are copies.
		*w = wireLiteLLM{}
		if err := unmarshal(sanitize(b), w); err != nil {
			*w = wireLiteLLM{}
			return nil, fmt.Errorf("litellm payload: %w", err)
		}
	}
	l := w.literal()
	if content {
		l.Messages, l.Response = bytes.Clone(l.Messages), bytes.Clone(l.Response)
	} else {
		l.DropContent()
	}
	*w = wireLiteLLM{} // the pool holds no reference to b
	return l, nil
}

// literal maps the decoded wire form to a LiteLLM.
func (w *wireLiteLLM) literal() *LiteLLM {
	m := &w.Metadata.wireMetaFields
	l := &LiteLLM{
		ID:               string(w.ID),
		TraceID:          string(w.TraceID),
		CallID:           first(string(w.CallID), string(w.OldCallID)),
		CallType:         string(w.CallType),
		Stream:           bool(w.Stream),
		Status:           strings.ToLower(string(w.Status)),
		Start:            record.Time(w.StartTime),
		End:              record.Time(w.EndTime),
		Model:            string(w.Model),
		ModelID:          string(w.ModelID),
		ModelGroup:       string(w.ModelGroup),
		APIBase:          strings.TrimSuffix(string(w.APIBase), "/"),
		Provider:         string(w.Provider),
		CostUSD:          w.ResponseCost.v,
		SavedCostUSD:     w.SavedCacheCost.v,
		PromptTokens:     w.PromptTokens.int(),
		CompletionTokens: w.CompletionTokens.int(),
		CacheHit:         bool(w.CacheHit),
		AttemptedRetries: -1, AttemptedFallbacks: -1,
		Identity: Identity{
			KeyHash: string(m.KeyHash), KeyAlias: string(m.KeyAlias),
			UserID: string(m.UserID), UserEmail: string(m.UserEmail),
			TeamID: first(string(m.TeamID), string(m.TeamID2)), TeamAlias: first(string(m.TeamAlias), string(m.TeamAlias2)),
			OrgID: string(m.OrgID), OrgAlias: string(m.OrgAlias), ProjectID: string(m.ProjectID),
			EndUser:     first(string(w.EndUser), string(m.EndUser), string(w.User)),
			RequesterIP: first(string(w.RequesterIP), string(m.RequesterIP)),
			UserAgent:   first(string(w.UserAgent), string(m.UserAgent)),
			Route:       string(m.Route),
			Tags:        []string(w.RequestTags),
		},
		AppliedGuardrails: []string(m.AppliedGuardrails),
		Messages:          content(w.Messages),
		Response:          content(w.Response),
	}
	l.Budget = Budget{
		KeySpend: l.keep(0, m.KeySpend), KeyMax: l.keep(1, m.KeyMax), KeyResetAt: string(m.KeyResetAt),
		UserSpend: l.keep(2, m.UserSpend), UserMax: l.keep(3, m.UserMax),
		TeamSpend: l.keep(4, m.TeamSpend), TeamMax: l.keep(5, m.TeamMax),
	}
	l.MessagesSHA256, l.ResponseSHA256 = sha(l.Messages), sha(l.Response)
	l.Emission = w.Auditline.emission()
	if len(l.Identity.Tags) == 0 {
		l.Identity.Tags = []string(m.Tags)
	}
	if !w.ResponseCost.ok {
		l.CostUSD = w.Cost.v
	}
	if h := w.HiddenParams; h != nil {
		l.ModelID = first(l.ModelID, string(h.ModelID))
		l.APIBase = first(l.APIBase, strings.TrimSuffix(string(h.APIBase), "/"))
		l.ProviderModel = string(h.LiteLLMModelName)
		if c := h.Headers; c != nil {
			if c.Retries.ok {
				l.AttemptedRetries = c.Retries.int()
			}
			if c.Fallbacks.ok {
				l.AttemptedFallbacks = c.Fallbacks.int()
			}
		}
	}
	if e := w.ErrorInformation; e != nil {
		l.Error = Error{
			Code: string(e.Code), Class: string(e.Class), Message: string(e.Message), Provider: string(e.Provider),
			Normalized:        string(e.Normalized),
			RateLimitCategory: string(e.RateLimitCategory), RateLimitType: string(e.RateLimitType),
			BudgetEntityType: string(e.BudgetEntityType), BudgetEntityID: string(e.BudgetEntityID),
			BudgetLimit: l.keep(6, e.BudgetLimit), BudgetSpend: l.keep(7, e.BudgetSpend),
		}
	}
	if l.Error.Message == "" && l.Status == "failure" {
		l.Error.Message = string(w.ErrorStr)
	}
	if w.StatusFields != nil {
		l.GuardrailStatus = string(w.StatusFields.GuardrailStatus)
	}
	l.Guardrails = guardrails(w.Guardrails)
	if l.Status == "" {
		// The legacy v1 dict has no status; LiteLLM sent it for successes only.
		l.Legacy, l.Status = true, "success"
		for _, m := range usageRe.FindAllStringSubmatch(string(w.Usage), -1) {
			n, _ := strconv.ParseInt(m[2], 10, 64)
			if m[1] == "prompt_tokens" {
				l.PromptTokens = n
			} else {
				l.CompletionTokens = n
			}
		}
	}
	return l
}

// RequestKey is the join key of DESIGN.md §2 as this payload names it.
func (l *LiteLLM) RequestKey() string { return first(l.CallID, l.TraceID, l.ID) }

// content returns a messages/response member as received, or nil when it
// carries nothing (absent, null, "", {} or []).
func content(b jsontext.Value) []byte {
	switch string(b) {
	case "", "null", `""`, "{}", "[]":
		return nil
	}
	return b
}

func guardrails(b jsontext.Value) []record.Guardrail {
	if len(b) == 0 {
		return nil
	}
	var ws []wireGuardrail
	switch b[0] {
	case '[':
		var raw []jsontext.Value
		if unmarshal(b, &raw) != nil {
			return nil
		}
		for _, r := range raw {
			var g wireGuardrail
			if len(r) > 0 && r[0] == '{' && unmarshal(r, &g) == nil {
				ws = append(ws, g)
			}
		}
	case '{':
		var g wireGuardrail
		if unmarshal(b, &g) == nil {
			ws = append(ws, g)
		}
	}
	out := make([]record.Guardrail, 0, len(ws))
	for _, w := range ws {
		g := record.Guardrail{
			Name: string(w.Name), Provider: string(w.Provider), Mode: string(w.Mode),
			RawStatus: string(w.Status), Status: GuardrailStatus(string(w.Status)),
			Action: string(w.Action), RiskScore: w.RiskScore.ptr(), Categories: []string(w.Categories),
		}
		for typ, n := range w.Masked {
			if c := n.int(); c > 0 {
				g.MaskedEntityCount += c
				g.MaskedEntities = append(g.MaskedEntities, typ+"="+strconv.FormatInt(c, 10))
			}
		}
		slices.Sort(g.MaskedEntities)
		g.Categories = sortedUnique(g.Categories)
		if g.Action == "" {
			var acts []string
			for _, m := range w.MatchDetails {
				if a := strings.ToLower(strings.TrimSpace(string(m.ActionTaken))); a != "" {
					acts = append(acts, a)
				}
			}
			g.Action = strings.Join(sortedUnique(acts), ",")
		}
		out = append(out, g)
	}
	return out
}

// Normalised guardrail statuses.
const (
	GuardrailPassed     = "passed"
	GuardrailIntervened = "intervened"
	GuardrailFailed     = "failed"
	GuardrailNotRun     = "not_run"
)

// GuardrailStatus maps every spelling LiteLLM has used to passed, intervened,
// failed or not_run: newest success / guardrail_intervened /
// guardrail_failed_to_respond / not_run; legacy success / blocked / failure
// (as LiteLLM's own _get_status_fields maps them). Unknown spellings are
// "failed" when they look like an error, else "intervened" if they look like a
// block, else not_run.
func GuardrailStatus(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "success", "passed", "pass", "allowed", "allow":
		return GuardrailPassed
	case "guardrail_intervened", "intervened", "blocked", "block", "masked", "modified":
		return GuardrailIntervened
	case "failure", "failed", "guardrail_failed_to_respond", "error":
		return GuardrailFailed
	case "", "not_run", "skipped":
		return GuardrailNotRun
	}
	ls := strings.ToLower(s)
	switch {
	case strings.Contains(ls, "fail") || strings.Contains(ls, "error"):
		return GuardrailFailed
	case strings.Contains(ls, "block") || strings.Contains(ls, "interven"):
		return GuardrailIntervened
	}
	return GuardrailNotRun
}

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func sortedUnique(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}
