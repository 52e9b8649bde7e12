package event

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditline/auditline/enrich/record"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLiteLLM(t *testing.T) {
	for _, tc := range []struct {
		file                     string
		key, status, group, prov string
		cost                     float64
		prompt, completion       int64
		guardrails               int
		keySpend                 float64 // -1: unknown
		errCode, errClass, gstat string
		hasMessages, hasResponse bool
		legacy, stream, cacheHit bool
	}{
		{file: "litellm/01_success_plain_openai.json", key: "b980db26-9512-45cc-b1da-c511a363b83f", status: "success", group: "gpt-4o", prov: "openai",
			cost: 0.00097, prompt: 128, completion: 65, keySpend: 12.4187, gstat: "not_run", hasMessages: true, hasResponse: true},
		{file: "litellm/02_success_streaming_azure.json", status: "success", prov: "azure", stream: true, keySpend: -2, gstat: "not_run", hasMessages: true, hasResponse: true, group: "gpt-4o",
			key: "0d3f5a7c-2b4e-4f61-8a9c-1e3b5d7f9a2c", cost: 0.00341, prompt: 412, completion: 238},
		{file: "litellm/03a_fallback_attempt1_failure_azure_429.json", key: "7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47", status: "failure", group: "gpt-4o", prov: "azure",
			keySpend: 12.4187, errCode: "429", errClass: "RateLimitError", gstat: "not_run", hasMessages: true},
		{file: "litellm/05_guardrail_pre_call_block.json", key: "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", status: "failure", guardrails: 1,
			keySpend: 12.4187, errCode: "400", errClass: "HTTPException", gstat: "guardrail_intervened", hasMessages: true},
		{file: "litellm/07_cache_hit.json", key: "9e1f3a5b-7c9d-4e1f-a3b5-c7d9e1f3a5b7", status: "success", group: "gpt-4o", prov: "openai", cacheHit: true,
			prompt: 128, completion: 65, keySpend: 12.4187, gstat: "not_run", hasMessages: true, hasResponse: true},
		{file: "events/litellm_legacy_v1.json", key: "chatcmpl-AX1legacy0001", status: "success", legacy: true, cost: 0.000197, prompt: 31, completion: 12,
			keySpend: -1, hasMessages: true, hasResponse: true},
		{file: "events/litellm_python_nan.json", key: "c-nan-1", status: "success", guardrails: 1, keySpend: -1},
		{file: "events/litellm_old_call_id.json", key: "c-old-1", status: "success", keySpend: -1, cost: 0.0012, guardrails: 1},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			l, err := ParseLiteLLM(read(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			check := func(name string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			check("key", l.RequestKey(), tc.key)
			check("status", l.Status, tc.status)
			check("model_group", l.ModelGroup, tc.group)
			check("provider", l.Provider, tc.prov)
			check("cost", l.CostUSD, tc.cost)
			check("prompt", l.PromptTokens, tc.prompt)
			check("completion", l.CompletionTokens, tc.completion)
			check("guardrails", len(l.Guardrails), tc.guardrails)
			check("error code", l.Error.Code, tc.errCode)
			check("error class", l.Error.Class, tc.errClass)
			check("guardrail status", l.GuardrailStatus, tc.gstat)
			check("messages", l.MessagesSHA256 != "", tc.hasMessages)
			check("response", l.ResponseSHA256 != "", tc.hasResponse)
			check("legacy", l.Legacy, tc.legacy)
			check("stream", l.Stream, tc.stream)
			check("cache hit", l.CacheHit, tc.cacheHit)
			switch {
			case tc.keySpend == -1:
				check("key spend", l.Budget.KeySpend == nil, true)
			case tc.keySpend >= 0:
				check("key spend", l.Budget.KeySpend != nil && *l.Budget.KeySpend == tc.keySpend, true)
			}
		})
	}
}

func TestLegacyV1(t *testing.T) {
	l, err := ParseLiteLLM(read(t, "events/litellm_legacy_v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Identity.KeyAlias != "svc-billing-prod" || l.Identity.TeamID != "0b9f6c3e" {
		t.Errorf("metadata from the Python dict: %+v", l.Identity)
	}
	if got := l.Start.String(); got != "2025-11-22T10:30:01.220Z" {
		t.Errorf("start = %s", got)
	}
	if l.CacheHit {
		t.Error(`cache_hit "None" read as true`)
	}
}

func TestPythonTokens(t *testing.T) {
	l, err := ParseLiteLLM(read(t, "events/litellm_python_nan.json"))
	if err != nil {
		t.Fatal(err)
	}
	if l.CostUSD != 0 || l.SavedCostUSD != 0 {
		t.Errorf("NaN/Infinity read as numbers: cost %v saved %v", l.CostUSD, l.SavedCostUSD)
	}
	if len(l.Guardrails) != 1 || l.Guardrails[0].Status != GuardrailPassed {
		t.Errorf("guardrail object: %+v", l.Guardrails)
	}
}

func TestLenientValues(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		check      func(*LiteLLM) bool
	}{
		{"numbers as strings", `{"id":"a","status":"success","response_cost":"0.5","prompt_tokens":"12","startTime":"1763807445.5"}`,
			func(l *LiteLLM) bool {
				return l.CostUSD == 0.5 && l.PromptTokens == 12 && l.Start == record.Time(1763807445500)
			}},
		{"None strings", `{"id":"a","status":"success","response_cost":"None","model_group":"None"}`,
			func(l *LiteLLM) bool { return l.CostUSD == 0 && l.ModelGroup == "" }},
		{"guardrail list with junk", `{"id":"a","status":"failure","guardrail_information":[1,{"guardrail_name":"g","guardrail_status":"blocked","masked_entity_count":{"EMAIL_ADDRESS":2,"PHONE":"1"},"guardrail_mode":["pre_call","post_call"]},null]}`,
			func(l *LiteLLM) bool {
				g := l.Guardrails
				return len(g) == 1 && g[0].Status == GuardrailIntervened && g[0].MaskedEntityCount == 3 &&
					strings.Join(g[0].MaskedEntities, ",") == "EMAIL_ADDRESS=2,PHONE=1" && g[0].Mode == "pre_call,post_call"
			}},
		{"guardrail mode object", `{"id":"a","status":"success","guardrail_information":{"guardrail_mode":{"tags":{"x":"y"},"default":"during_call"},"guardrail_status":"guardrail_failed_to_respond"}}`,
			func(l *LiteLLM) bool {
				return l.Guardrails[0].Mode == "during_call" && l.Guardrails[0].Status == GuardrailFailed
			}},
		{"wrong types ignored", `{"id":"a","status":"success","metadata":[1],"request_tags":"one","stream":"True","cache_hit":1}`,
			func(l *LiteLLM) bool {
				return len(l.Identity.Tags) == 1 && l.Stream && l.CacheHit
			}},
		{"call_id", `{"id":"x","call_id":"c","trace_id":"t","status":"failure"}`, func(l *LiteLLM) bool { return l.RequestKey() == "c" }},
		{"trace only", `{"id":"x","trace_id":"t","status":"failure"}`, func(l *LiteLLM) bool { return l.RequestKey() == "t" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseLiteLLM([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(l) {
				t.Errorf("%+v", l)
			}
		})
	}
	if _, err := ParseLiteLLM([]byte(`[1]`)); err == nil {
		t.Error("a list parsed as a payload")
	}
}

func TestGuardrailStatus(t *testing.T) {
	for in, want := range map[string]string{
		"success": "passed", "passed": "passed", "guardrail_intervened": "intervened", "blocked": "intervened",
		"intervened": "intervened", "failure": "failed", "guardrail_failed_to_respond": "failed", "not_run": "not_run",
		"": "not_run", "GUARDRAIL_INTERVENED": "intervened", "provider_error": "failed", "something": "not_run",
	} {
		if got := GuardrailStatus(in); got != want {
			t.Errorf("GuardrailStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPyLiteral(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{'a': 1, "b": [None, True, False], 'c': (1.5, 'x\'y')}`, `map[a:1 b:[<nil> true false] c:[1.5 x'y]]`},
		{`{}`, `map[]`},
		{`'caf\xe9'`, `café`},
		{`{1: 'one'}`, `map[1:one]`},
	} {
		v, err := pyLiteral(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := fmtValue(v); got != tc.want {
			t.Errorf("pyLiteral(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{`ModelResponse(id='x')`, `{'a': }`, `[1, 2`, `'open`, `{'a' 1}`, strings.Repeat("[", 100)} {
		if _, err := pyLiteral(bad); err == nil {
			t.Errorf("pyLiteral(%q) accepted", bad)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": NaN, "b": -Infinity, "c": Infinity}`: `{"a": null, "b": null, "c": null}`,
		`{"s": "NaN in a string", "n": NaN}`:        `{"s": "NaN in a string", "n": null}`,
		`{"s": "esc \" NaN", "n": 1}`:               `{"s": "esc \" NaN", "n": 1}`,
		`{"plain": 1}`:                              `{"plain": 1}`,
	} {
		if got := string(sanitize([]byte(in))); got != want {
			t.Errorf("sanitize(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestOwnEvents(t *testing.T) {
	g, err := ParseGateway(read(t, "events/gateway_block.json"))
	if err != nil || g.Decision != "block" || g.Tenant != "acme-finance" || g.RiskScore == nil || *g.RiskScore != 0.93 || g.OccurredAt.String() != "2025-11-22T10:36:40.498Z" {
		t.Errorf("gateway: %+v, %v", g, err)
	}
	o, err := ParseOversight(read(t, "events/oversight_review.json"))
	if err != nil || o.Ref == nil || o.Ref.Offset != 1041 || o.Outcome != "approve" || o.Reviewer != "lee" {
		t.Errorf("oversight: %+v, %v", o, err)
	}
	s, err := ParseOversight(read(t, "events/oversight_sampling.json"))
	if err != nil || s.Kind != KindSamplingControl || !s.Burst || len(s.Tiers) != 1 {
		t.Errorf("sampling control: %+v, %v", s, err)
	}
	a, err := ParseAlert(read(t, "litellm/11_alert_webhook_threshold_crossed_team.json"), "")
	if err != nil || a.EntityType != "team" || a.EntityID != "0b9f6c3e-5d8a-4f8e-9c61-2a7e4d1b3f90" || *a.Spend != 962.5 {
		t.Errorf("alert: %+v, %v", a, err)
	}
	a, err = ParseAlert(read(t, "litellm/13_alert_webhook_spend_tracked_end_user.json"), "customer:customer-8812")
	if err != nil || a.EntityType != "end_user" || a.EntityID != "customer-8812" {
		t.Errorf("alert by key: %+v, %v", a, err)
	}
	for _, bad := range []string{`{"event_id":"x"}`, `{"event_id":"x","request_key":"k","policy":{"decision":"perhaps"}}`, `[`} {
		if _, err := ParseGateway([]byte(bad)); err == nil {
			t.Errorf("gateway %s accepted", bad)
		}
	}
	if _, err := ParseOversight([]byte(`{"event_id":"x","kind":"review"}`)); err == nil {
		t.Error("review without request_key accepted")
	}
}
