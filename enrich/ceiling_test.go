package enrich

import (
	"encoding/json"

	jsonv2 "github.com/go-json-experiment/json"
	gojson "github.com/goccy/go-json"

	"github.com/auditline/auditline/ingest/raw"
)

// Enrich's ceiling: a typed decode of the same payloads into structs of the
// fields enrich reads, with plain types (no lenient decoding, no join, no
// record). BenchmarkEnrich measures it with three decoders; the fastest is
// the ceiling. goccy/go-json is the fastest we found (bench/PROFILE.md has
// five), and is used only here: it has open memory-safety bugs on malformed
// input, and enrich decodes whatever a webhook sent.

type ceilingMeta struct {
	KeyHash           string   `json:"user_api_key_hash"`
	KeyAlias          string   `json:"user_api_key_alias"`
	KeySpend          *float64 `json:"user_api_key_spend"`
	KeyMax            *float64 `json:"user_api_key_max_budget"`
	KeyResetAt        *string  `json:"user_api_key_budget_reset_at"`
	UserSpend         *float64 `json:"user_api_key_user_spend"`
	UserMax           *float64 `json:"user_api_key_user_max_budget"`
	TeamSpend         *float64 `json:"user_api_key_team_spend"`
	TeamMax           *float64 `json:"user_api_key_team_max_budget"`
	OrgID             *string  `json:"user_api_key_org_id"`
	OrgAlias          *string  `json:"user_api_key_org_alias"`
	TeamID            *string  `json:"user_api_key_team_id"`
	TeamAlias         *string  `json:"user_api_key_team_alias"`
	ProjectID         *string  `json:"user_api_key_project_id"`
	UserID            *string  `json:"user_api_key_user_id"`
	UserEmail         *string  `json:"user_api_key_user_email"`
	EndUser           *string  `json:"user_api_key_end_user_id"`
	Route             *string  `json:"user_api_key_request_route"`
	RequesterIP       *string  `json:"requester_ip_address"`
	UserAgent         *string  `json:"user_agent"`
	AppliedGuardrails []string `json:"applied_guardrails"`
	Tags              []string `json:"tags"`
}

type ceilingLiteLLM struct {
	ID           string   `json:"id"`
	TraceID      string   `json:"trace_id"`
	CallID       string   `json:"litellm_call_id"`
	CallType     string   `json:"call_type"`
	Stream       *bool    `json:"stream"`
	ResponseCost *float64 `json:"response_cost"`
	Status       string   `json:"status"`
	StatusFields *struct {
		GuardrailStatus string `json:"guardrail_status"`
	} `json:"status_fields"`
	Provider         string          `json:"custom_llm_provider"`
	PromptTokens     float64         `json:"prompt_tokens"`
	CompletionTokens float64         `json:"completion_tokens"`
	StartTime        float64         `json:"startTime"`
	EndTime          float64         `json:"endTime"`
	Model            string          `json:"model"`
	ModelID          *string         `json:"model_id"`
	ModelGroup       *string         `json:"model_group"`
	APIBase          *string         `json:"api_base"`
	Metadata         ceilingMeta     `json:"metadata"`
	CacheHit         *bool           `json:"cache_hit"`
	SavedCacheCost   *float64        `json:"saved_cache_cost"`
	RequestTags      []string        `json:"request_tags"`
	EndUser          *string         `json:"end_user"`
	RequesterIP      *string         `json:"requester_ip_address"`
	UserAgent        *string         `json:"user_agent"`
	Messages         json.RawMessage `json:"messages"`
	Response         json.RawMessage `json:"response"`
	ErrorStr         *string         `json:"error_str"`
	ErrorInformation *struct {
		Code             *string  `json:"error_code"`
		Class            *string  `json:"error_class"`
		Provider         *string  `json:"llm_provider"`
		Message          *string  `json:"error_message"`
		Normalized       *string  `json:"normalized_error"`
		BudgetEntityType *string  `json:"error_budget_entity_type"`
		BudgetEntityID   *string  `json:"error_budget_entity_id"`
		BudgetLimit      *float64 `json:"error_budget_limit"`
		BudgetSpend      *float64 `json:"error_budget_spend"`
	} `json:"error_information"`
	HiddenParams *struct {
		ModelID          *string `json:"model_id"`
		APIBase          *string `json:"api_base"`
		LiteLLMModelName *string `json:"litellm_model_name"`
	} `json:"hidden_params"`
	Guardrails json.RawMessage `json:"guardrail_information"`
}

type ceilingGateway struct {
	EventID    string `json:"event_id"`
	RequestKey string `json:"request_key"`
	TraceID    string `json:"trace_id"`
	OccurredAt string `json:"occurred_at"`
	Gateway    string `json:"gateway"`
	Stage      string `json:"stage"`
	Subject    struct {
		ID     string   `json:"id"`
		Tenant string   `json:"tenant"`
		Roles  []string `json:"roles"`
	} `json:"subject"`
	Policy struct {
		ID       string `json:"id"`
		Version  string `json:"version"`
		Decision string `json:"decision"`
	} `json:"policy"`
	DataClassification []string `json:"data_classification"`
	RiskScore          *float64 `json:"risk_score"`
}

// ceilingDecoders decode one raw record's value into its typed struct.
var ceilingDecoders = []struct {
	name   string
	decode func(src string, b []byte) error
}{
	{"goccy-go-json", func(src string, b []byte) error {
		if src == string(raw.SourceLiteLLM) {
			var v ceilingLiteLLM
			return gojson.Unmarshal(b, &v)
		}
		var v ceilingGateway
		return gojson.Unmarshal(b, &v)
	}},
	{"go-json-experiment", func(src string, b []byte) error {
		if src == string(raw.SourceLiteLLM) {
			var v ceilingLiteLLM
			return jsonv2.Unmarshal(b, &v)
		}
		var v ceilingGateway
		return jsonv2.Unmarshal(b, &v)
	}},
	{"encoding-json", func(src string, b []byte) error {
		if src == string(raw.SourceLiteLLM) {
			var v ceilingLiteLLM
			return json.Unmarshal(b, &v)
		}
		var v ceilingGateway
		return json.Unmarshal(b, &v)
	}},
}
