package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"

	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
)

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// one splits a single-element body.
func one(t testing.TB, b []byte) ([]byte, body.Kind) {
	t.Helper()
	_, els, err := body.Split(b, false, 0)
	if err != nil || len(els) != 1 {
		t.Fatalf("split: %v (%d elements)", err, len(els))
	}
	return els[0].Bytes(b), els[0].Kind
}

type decoder func([]byte, body.Kind, raw.Format) (Event, error)

func TestDecoders(t *testing.T) {
	sch, err := NewSchemas()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		dec        decoder
		key, id    string
		format     raw.Format
		all        bool
	}{
		{"success", "examples/01_success_plain_openai.json", LiteLLM, "", "litellm:chatcmpl-", raw.FormatSingle, false},
		{"fallback failure", "examples/03a_fallback_attempt1_failure_azure_429.json", LiteLLM,
			"7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47", "litellm:7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47:failure", raw.FormatSingle, false},
		{"guardrail block", "examples/05_guardrail_pre_call_block.json", LiteLLM,
			"2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", "litellm:2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24:failure", raw.FormatSingle, false},
		{"python NaN and guardrail object", "events/litellm_python_nan.json", LiteLLM, "c-nan-1", "litellm:chatcmpl-NaN0001:success", raw.FormatSingle, false},
		{"old call_id spelling", "events/litellm_old_call_id.json", LiteLLM, "c-old-1", "litellm:chatcmpl-old0001:success", raw.FormatSingle, false},
		{"legacy v1", "events/litellm_legacy_v1.json", LiteLLM, "chatcmpl-AX1legacy0001", "litellm:chatcmpl-AX1legacy0001:legacy_v1", raw.FormatLegacyV1, false},
		{"alert key", "examples/10_alert_webhook_budget_crossed_key.json", Alert,
			"key:88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b", "alert:", raw.FormatSingle, false},
		{"alert team", "examples/11_alert_webhook_threshold_crossed_team.json", Alert,
			"team:0b9f6c3e-5d8a-4f8e-9c61-2a7e4d1b3f90", "alert:", raw.FormatSingle, false},
		{"alert end user", "examples/13_alert_webhook_spend_tracked_end_user.json", Alert, "end_user:customer-8812", "alert:", raw.FormatSingle, false},
		{"admin", "examples/14_audit_log_key_budget_update.json", Admin,
			"88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b", "admin:5f7a9c1e-3b5d-4f7a-9c1e-3b5d7f9a1c3e", raw.FormatSingle, false},
		{"gateway block", "events/gateway_block.json", sch.Gateway, "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", "gateway:gw-7f1c2a90-0001", raw.FormatSingle, false},
		{"gateway allow", "events/gateway_allow.json", sch.Gateway, "7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47", "gateway:gw-7f1c2a90-0002", raw.FormatSingle, false},
		{"oversight review", "events/oversight_review.json", sch.Oversight, "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", "oversight:dash-5b1e0c7d9a8f4e3b2c1d0e9f8a7b6c5d", raw.FormatSingle, false},
		{"oversight sampling", "events/oversight_sampling.json", sch.Oversight, "sampling_control", "oversight:dash-0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", raw.FormatSingle, true},
		// Captured from auditline's LiteLLM plugin inside the real proxy (deploy/litellm/auditline_litellm).
		{"plugin success", "events/plugin_success.json", LiteLLM, "d366f4cf-0a4e-4f06-bb79-73327cf86b78", "litellm:chatcmpl-fake", raw.FormatSingle, false},
		{"plugin marker", "events/plugin_request_started.json", sch.RequestStarted, "d366f4cf-0a4e-4f06-bb79-73327cf86b78", "request_started:vm-w1-aa753859623e/2", raw.FormatSingle, false},
		{"plugin attempt", "events/plugin_attempt_failure.json", sch.Attempt, "d366f4cf-0a4e-4f06-bb79-73327cf86b78", "attempt:vm-w1-aa753859623e/3", raw.FormatSingle, false},
		{"plugin fallback attempt", "events/plugin_attempt_fallback.json", sch.Attempt, "d366f4cf-0a4e-4f06-bb79-73327cf86b78", "attempt:vm-w1-aa753859623e/6", raw.FormatSingle, false},
		{"plugin gateway config", "events/plugin_gateway_config.json", sch.GatewayConfig, "vm-w0-a5f25d26bab4", "gateway_config:vm-w0-a5f25d26bab4/1", raw.FormatSingle, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			elem, k := one(t, read(t, tt.file))
			ev, err := tt.dec(elem, k, raw.FormatSingle)
			if err != nil {
				t.Fatal(err)
			}
			if tt.key != "" && ev.Key != tt.key {
				t.Errorf("key %q, want %q", ev.Key, tt.key)
			}
			if !strings.HasPrefix(ev.EventID, tt.id) {
				t.Errorf("event id %q, want prefix %q", ev.EventID, tt.id)
			}
			if ev.Format != tt.format || ev.AllPartitions != tt.all {
				t.Errorf("format %s all %v", ev.Format, ev.AllPartitions)
			}
			if &ev.Value[0] != &elem[0] || len(ev.Value) != len(elem) {
				t.Error("value is not the element's own bytes")
			}
		})
	}
}

func TestAlertGroups(t *testing.T) {
	tests := []struct{ body, key string }{
		{`{"event": "budget_crossed", "event_group": "key", "token": "h1"}`, "key:h1"},
		{`{"event": "budget_crossed", "event_group": "internal_user", "user_id": "u1"}`, "user:u1"},
		{`{"event": "budget_crossed", "event_group": "user", "user_id": "u1"}`, "user:u1"},
		{`{"event": "spend_tracked", "event_group": "customer", "customer_id": "c1"}`, "end_user:c1"},
		{`{"event": "spend_tracked", "event_group": "end_user", "customer_id": "c1"}`, "end_user:c1"},
		{`{"event": "threshold_crossed", "event_group": "team", "team_id": "t1"}`, "team:t1"},
		{`{"event": "budget_crossed", "event_group": "team_member", "team_id": "t1", "user_id": "u1"}`, "team_member:t1/u1"},
		{`{"event": "soft_budget_crossed", "event_group": "organization", "organization_id": "o1"}`, "organization:o1"},
		{`{"event": "budget_crossed", "event_group": "project", "project_id": "p1"}`, "project:p1"},
		{`{"event": "projected_limit_exceeded", "event_group": "proxy", "token": null}`, "proxy:"},
		{`{"event": "key_created", "event_group": "key", "token": "h2", "spend": NaN}`, "key:h2"},
		{`{"event": "internal_user_created", "event_group": "internal_user", "user_id": "u9"}`, "user:u9"},
		{`{"event": "budget_crossed", "event_group": "galaxy", "team_id": "t7"}`, "galaxy:t7"},
	}
	for _, tt := range tests {
		elem, k := one(t, []byte(tt.body))
		ev, err := Alert(elem, k, raw.FormatSingle)
		if err != nil || ev.Key != tt.key {
			t.Errorf("%s: key %q err %v, want %q", tt.body, ev.Key, err, tt.key)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	sch, err := NewSchemas()
	if err != nil {
		t.Fatal(err)
	}
	gw := string(read(t, "events/gateway_block.json"))
	tests := []struct {
		name  string
		dec   decoder
		body  string
		field string
		msg   string
	}{
		{"litellm not an object", LiteLLM, `[1]`, "", "want a JSON object"},
		{"litellm string", LiteLLM, `"x"`, "", "got string"},
		{"litellm id number", LiteLLM, `{"id": 12, "status": "success"}`, "id", "want a string, got number"},
		{"litellm call id object", LiteLLM, `{"id": "a", "litellm_call_id": {}}`, "litellm_call_id", "got object"},
		{"litellm no key", LiteLLM, `{"status": "success", "model": "x"}`, "id", "cannot be joined"},
		{"alert no event", Alert, `{"event_group": "key"}`, "event", "missing"},
		{"alert no group", Alert, `{"event": "budget_crossed"}`, "event_group", "missing"},
		{"alert token number", Alert, `{"event": "x", "event_group": "key", "token": 5}`, "token", "got number"},
		{"admin no object id", Admin, `{"id": "a"}`, "object_id", "missing"},
		{"gateway no schema", sch.Gateway, `{"event_id": "x"}`, "schema", "missing"},
		{"gateway wrong schema", sch.Gateway, `{"schema": "auditline.oversight.v1"}`, "schema", "not accepted here"},
		{"gateway future schema", sch.Gateway, `{"schema": "auditline.gateway.v9"}`, "schema", "auditline.gateway.v1"},
		{"gateway missing request key", sch.Gateway, strings.Replace(gw, `"request_key": "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", `, "", 1), "request_key", "missing"},
		{"gateway bad decision", sch.Gateway, strings.Replace(gw, `"decision": "block"`, `"decision": "deny"`, 1), "policy.decision", "value must be one of"},
		{"gateway missing policy id", sch.Gateway, strings.Replace(gw, `"id": "pii-egress", `, "", 1), "policy.id", "missing"},
		{"gateway bad time", sch.Gateway, strings.Replace(gw, `2025-11-22T10:36:40.498Z`, `yesterday`, 1), "occurred_at", "date-time"},
		{"gateway bad risk", sch.Gateway, strings.Replace(gw, `0.93`, `3`, 1), "risk_score", "maximum"},
		{"gateway role not string", sch.Gateway, strings.Replace(gw, `"billing"`, `7`, 1), "subject.roles.1", "want string"},
		{"gateway NaN", sch.Gateway, strings.Replace(gw, `0.93`, `NaN`, 1), "", "NaN"},
		{"oversight review without outcome", sch.Oversight, `{"schema": "auditline.oversight.v1", "event_id": "e", "kind": "review", "request_key": "k", "reviewer": {"id": "r"}, "occurred_at": "2025-11-22T11:02:00Z"}`, "outcome", "missing"},
		{"oversight sampling without sampling", sch.Oversight, `{"schema": "auditline.oversight.v1", "event_id": "e", "kind": "sampling_control", "reviewer": {"id": "r"}, "occurred_at": "2025-11-22T11:02:00Z"}`, "sampling", "missing"},
		{"marker without seq", sch.RequestStarted, `{"schema": "auditline.request_started.v1", "event_id": "e/1", "emitter": "e", "request_key": "k", "occurred_at": "2025-11-22T11:02:00Z", "config_hash": ""}`, "seq", "missing"},
		{"marker seq zero", sch.RequestStarted, `{"schema": "auditline.request_started.v1", "event_id": "e/0", "emitter": "e", "seq": 0, "request_key": "k", "occurred_at": "2025-11-22T11:02:00Z", "config_hash": ""}`, "seq", "minimum"},
		{"marker bad emitter", sch.RequestStarted, `{"schema": "auditline.request_started.v1", "event_id": "e/1", "emitter": "é w", "seq": 1, "request_key": "k", "occurred_at": "2025-11-22T11:02:00Z", "config_hash": ""}`, "emitter", "pattern"},
		{"marker on the config endpoint", sch.GatewayConfig, `{"schema": "auditline.request_started.v1"}`, "schema", "not accepted here"},
		{"attempt ok but on the marker endpoint", sch.RequestStarted, `{"schema": "auditline.attempt.v1", "event_id": "e/1", "emitter": "e", "seq": 1, "request_key": "k", "attempt": 1, "kind": "first", "model_group": "g", "status": "failure", "start_time": "2025-11-22T11:02:00Z", "end_time": "2025-11-22T11:02:01Z"}`, "schema", "not accepted here"},
		{"attempt without kind", sch.Attempt, strings.Replace(`{"schema": "auditline.attempt.v1", "event_id": "e/1", "emitter": "e", "seq": 1, "request_key": "k", "attempt": 1, "kind": "first", "model_group": "g", "status": "failure", "start_time": "2025-11-22T11:02:00Z", "end_time": "2025-11-22T11:02:01Z"}`, `"kind": "first", `, "", 1), "kind", "missing"},
		{"attempt bad kind", sch.Attempt, strings.Replace(`{"schema": "auditline.attempt.v1", "event_id": "e/1", "emitter": "e", "seq": 1, "request_key": "k", "attempt": 1, "kind": "first", "model_group": "g", "status": "failure", "start_time": "2025-11-22T11:02:00Z", "end_time": "2025-11-22T11:02:01Z"}`, `"first"`, `"hedge"`, 1), "kind", "value must be one of"},
		{"attempt zero", sch.Attempt, strings.Replace(`{"schema": "auditline.attempt.v1", "event_id": "e/1", "emitter": "e", "seq": 1, "request_key": "k", "attempt": 1, "kind": "first", "model_group": "g", "status": "failure", "start_time": "2025-11-22T11:02:00Z", "end_time": "2025-11-22T11:02:01Z"}`, `"attempt": 1`, `"attempt": 0`, 1), "attempt", "minimum"},
		{"attempt bad status", sch.Attempt, strings.Replace(`{"schema": "auditline.attempt.v1", "event_id": "e/1", "emitter": "e", "seq": 1, "request_key": "k", "attempt": 1, "kind": "first", "model_group": "g", "status": "failure", "start_time": "2025-11-22T11:02:00Z", "end_time": "2025-11-22T11:02:01Z"}`, `"failure"`, `"timeout"`, 1), "status", "value must be one of"},
		{"attempt bad end time", sch.Attempt, strings.Replace(`{"schema": "auditline.attempt.v1", "event_id": "e/1", "emitter": "e", "seq": 1, "request_key": "k", "attempt": 1, "kind": "first", "model_group": "g", "status": "failure", "start_time": "2025-11-22T11:02:00Z", "end_time": "2025-11-22T11:02:01Z"}`, `2025-11-22T11:02:01Z`, `soon`, 1), "end_time", "date-time"},
		{"config bad hash", sch.GatewayConfig, `{"schema": "auditline.gateway_config.v1", "event_id": "e/1", "emitter": "e", "seq": 1, "occurred_at": "2025-11-22T11:02:00Z", "config_hash": "md5:x", "config": {}}`, "config_hash", "pattern"},
		{"oversight bad kind", sch.Oversight, `{"schema": "auditline.oversight.v1", "event_id": "e", "kind": "vibes", "request_key": "k", "outcome": "approve", "reviewer": {"id": "r"}, "occurred_at": "2025-11-22T11:02:00Z"}`, "kind", "value must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			elem, k := one(t, []byte(tt.body))
			_, err := tt.dec(elem, k, raw.FormatSingle)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("got field %q msg %q; want field %q msg containing %q", fe.Field, fe.Msg, tt.field, tt.msg)
			}
		})
	}
}

// TestSchemaErrorStable: an event with several schema errors gets the same
// one named every time (the validator visits properties in map order), so
// one body always gets one answer and one DLQ reason. The first by instance
// path wins.
func TestSchemaErrorStable(t *testing.T) {
	sch, err := NewSchemas()
	if err != nil {
		t.Fatal(err)
	}
	elem, k := one(t, []byte(`{"schema": "auditline.oversight.v1", "event_id": "1", "kind": "0", "reviewer": "00", "occurred_at": "", "outcome": 5}`))
	for range 50 {
		_, err := sch.Oversight(elem, k, raw.FormatSingle)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "request_key" || fe.Msg != "missing (required)" {
			t.Fatalf("got %v, want request_key: missing (required)", err)
		}
	}
}

// fuzzDecoder seeds a fuzz target with files and checks the decoder's
// contract on any element: a FieldError or an event whose value is the
// element's own bytes, with a non-empty event id; never a panic.
func fuzzDecoder(f *testing.F, d decoder, files ...string) {
	for _, name := range files {
		f.Add(read(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, els, err := body.Split(b, false, 0)
		if err != nil {
			return
		}
		for _, e := range els {
			elem := e.Bytes(b)
			ev, err := d(elem, e.Kind, raw.FormatJSONArray)
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("error of type %T: %v", err, err)
				}
				continue
			}
			if string(ev.Value) != string(elem) || ev.EventID == "" {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}

func examples(prefix string) []string {
	m, _ := filepath.Glob(filepath.Join("..", "testdata", prefix))
	var out []string
	for _, p := range m {
		out = append(out, strings.TrimPrefix(p, filepath.Join("..", "testdata")+"/"))
	}
	return out
}

func FuzzLiteLLM(f *testing.F) {
	fuzzDecoder(f, LiteLLM, append(examples("examples/0*.json"), examples("events/litellm_*.json")...)...)
}

func FuzzAlert(f *testing.F) {
	fuzzDecoder(f, Alert, examples("examples/1[013]_*.json")...)
}

func FuzzAdmin(f *testing.F) {
	fuzzDecoder(f, Admin, examples("examples/14_*.json")...)
}

func schemasFor(f *testing.F) *Schemas {
	s, err := NewSchemas()
	if err != nil {
		f.Fatal(err)
	}
	return s
}

func FuzzGateway(f *testing.F) {
	fuzzDecoder(f, schemasFor(f).Gateway, examples("events/gateway_*.json")...)
}

func FuzzOversight(f *testing.F) {
	fuzzDecoder(f, schemasFor(f).Oversight, examples("events/oversight_*.json")...)
}

func FuzzApproval(f *testing.F) {
	fuzzDecoder(f, schemasFor(f).Gateway, examples("events/approval_*.json")...)
}

func FuzzAttempt(f *testing.F) {
	fuzzDecoder(f, schemasFor(f).Attempt, examples("events/plugin_attempt_*.json")...)
}

func FuzzAccess(f *testing.F) {
	fuzzDecoder(f, schemasFor(f).Access, examples("events/access_*.json")...)
}

// TestLiteLLMKeyOrder: reading stops early only once nothing later can
// change the key or the event id.
func TestLiteLLMKeyOrder(t *testing.T) {
	tests := []struct{ body, key, id string }{
		{`{"id": "a", "status": "success", "litellm_call_id": null, "n": 1, "call_id": "c9"}`, "c9", "litellm:a:success"},
		{`{"id": "a", "litellm_call_id": "", "status": "failure", "n": 1, "trace_id": "t1"}`, "t1", "litellm:a:failure"},
		{`{"litellm_call_id": "c1", "n": 1, "id": "a", "status": "success", "trace_id": "t1"}`, "c1", "litellm:a:success"},
		{`{"litellm_call_id": "c1", "n": 1, "id": "a", "status": "success", "id2": {"id": "inner"}}`, "c1", "litellm:a:success"},
	}
	for _, tt := range tests {
		elem, k := one(t, []byte(tt.body))
		ev, err := LiteLLM(elem, k, raw.FormatSingle)
		if err != nil || ev.Key != tt.key || ev.EventID != tt.id {
			t.Errorf("%s: key %q id %q err %v; want %q %q", tt.body, ev.Key, ev.EventID, err, tt.key, tt.id)
		}
	}
}

// TestGatewayConfigHash recomputes the config_hash of a gateway_config event
// the Python plugin wrote inside the real proxy: RFC 8785 (gowebpki/jcs) of
// its config object, so the plugin's canonical form (canonical.py) and any
// auditor's JCS library agree on real data (floats such as 2e-06 included).
func TestGatewayConfigHash(t *testing.T) {
	var ev struct {
		ConfigHash string          `json:"config_hash"`
		Config     json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(read(t, "events/plugin_gateway_config.json"), &ev); err != nil {
		t.Fatal(err)
	}
	c, err := jcs.Transform(ev.Config)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != ev.ConfigHash {
		t.Fatalf("JCS hash %s, the plugin said %s", got, ev.ConfigHash)
	}
}
