package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/privacy/capture"
)

// sent is one event we posted: its exact bytes and where it must land.
type sent struct {
	topic, key, eventID, format string
	value                       []byte
}

func checkLanded(t *testing.T, h *harness, want []sent) {
	t.Helper()
	byTopic := map[string][]sent{}
	for _, s := range want {
		byTopic[s.topic] = append(byTopic[s.topic], s)
	}
	got := h.allRaw()
	for tp, ws := range byTopic {
		rs := slices.Clone(got[tp])
		if len(rs) != len(ws) {
			t.Fatalf("%s: %d records, want %d", tp, len(rs), len(ws))
		}
		// Match each sent event to a record with the same bytes (records of one
		// millisecond on different partitions have no order to compare).
		for i, w := range ws {
			j := slices.IndexFunc(rs, func(r *kgo.Record) bool {
				return r != nil && bytes.Equal(r.Value, w.value) && raw.Header(r, raw.HeaderFormat) == or(w.format, raw.Header(r, raw.HeaderFormat))
			})
			if j < 0 {
				t.Errorf("%s: event %d (%.80q) is not in Kafka byte for byte", tp, i, w.value)
				continue
			}
			r := rs[j]
			rs[j] = nil
			if w.key != "" && string(r.Key) != w.key {
				t.Errorf("%s[%d]: key %q, want %q", tp, i, r.Key, w.key)
			}
			if w.eventID != "" && raw.Header(r, raw.HeaderEventID) != w.eventID {
				t.Errorf("%s[%d]: event id %q, want %q", tp, i, raw.Header(r, raw.HeaderEventID), w.eventID)
			}
			if raw.Header(r, raw.HeaderSender) == "" || raw.Header(r, raw.HeaderReceivedAt) == "" || raw.Header(r, raw.HeaderSource) == "" {
				t.Errorf("%s[%d]: missing headers %v", tp, i, r.Headers)
			}
		}
	}
	for tp, rs := range got {
		if len(byTopic[tp]) == 0 {
			t.Errorf("%s: %d unexpected records", tp, len(rs))
		}
	}
}

// TestExamplesRoundTrip posts every reference example as LiteLLM sends it and
// checks that Kafka holds each event's exact bytes.
func TestExamplesRoundTrip(t *testing.T) {
	h := start(t, testenv.Kafka(t), nil)
	var want []sent
	for _, tc := range []struct {
		file, path, topic, key, eventID string
	}{
		{"01_success_plain_openai.json", "/v1/litellm", h.topics.RawLiteLLM(), "", ""},
		{"02_success_streaming_azure.json", "/v1/litellm", h.topics.RawLiteLLM(), "", ""},
		{"03a_fallback_attempt1_failure_azure_429.json", "/v1/litellm", h.topics.RawLiteLLM(), "7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47", "litellm:7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47:failure"},
		{"03b_fallback_attempt2_success_anthropic.json", "/v1/litellm", h.topics.RawLiteLLM(), "7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47", ""},
		{"05_guardrail_pre_call_block.json", "/v1/litellm", h.topics.RawLiteLLM(), "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", ""},
		{"07_cache_hit.json", "/v1/litellm", h.topics.RawLiteLLM(), "", ""},
		{"08_budget_near_limit_key_user_team_end_user.json", "/v1/litellm", h.topics.RawLiteLLM(), "", ""},
		{"10_alert_webhook_budget_crossed_key.json", "/v1/litellm/alerts", h.topics.RawAlerts(), "key:88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b", ""},
		{"11_alert_webhook_threshold_crossed_team.json", "/v1/litellm/alerts", h.topics.RawAlerts(), "team:0b9f6c3e-5d8a-4f8e-9c61-2a7e4d1b3f90", ""},
		{"13_alert_webhook_spend_tracked_end_user.json", "/v1/litellm/alerts", h.topics.RawAlerts(), "end_user:customer-8812", ""},
		{"14_audit_log_key_budget_update.json", "/v1/litellm/audit", h.topics.RawAdmin(), "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b", "admin:5f7a9c1e-3b5d-4f7a-9c1e-3b5d7f9a1c3e"},
	} {
		b := example(t, tc.file)
		r := h.post(tc.path, tokAll, b)
		if r.code != 200 || r.ok.Accepted != 1 || r.ok.Format != "single" {
			t.Fatalf("%s: %d %s", tc.file, r.code, r.body)
		}
		want = append(want, sent{topic: tc.topic, key: tc.key, eventID: tc.eventID, format: "single", value: bytes.TrimSpace(b)})
	}
	// auditline's LiteLLM plugin: its payloads, markers and gateway provenance,
	// as captured from the real proxy (one strict endpoint each for the last two).
	for _, tc := range []struct {
		file, path, topic, key, eventID string
	}{
		{"plugin_success.json", "/v1/litellm", h.topics.RawLiteLLM(), "d366f4cf-0a4e-4f06-bb79-73327cf86b78", ""},
		{"plugin_request_started.json", "/v1/litellm/started", h.topics.RawLiteLLM(), "d366f4cf-0a4e-4f06-bb79-73327cf86b78", "request_started:vm-w1-aa753859623e/2"},
		{"plugin_attempt_failure.json", "/v1/litellm/attempt", h.topics.RawLiteLLM(), "d366f4cf-0a4e-4f06-bb79-73327cf86b78", "attempt:vm-w1-aa753859623e/3"},
		{"plugin_gateway_config.json", "/v1/litellm/config", h.topics.RawAdmin(), "vm-w0-a5f25d26bab4", "gateway_config:vm-w0-a5f25d26bab4/1"},
	} {
		b := event(t, tc.file)
		r := h.post(tc.path, tokAll, b)
		if r.code != 200 || r.ok.Accepted != 1 {
			t.Fatalf("%s: %d %s", tc.file, r.code, r.body)
		}
		want = append(want, sent{topic: tc.topic, key: tc.key, eventID: tc.eventID, format: "single", value: bytes.TrimSpace(b)})
	}
	// 09 is the exact json_array body LiteLLM posts: three payloads, one line.
	b09 := example(t, "09_generic_api_batch_post_body_json_array.json")
	r := h.post("/v1/litellm", tokAll, b09)
	if r.code != 200 || r.ok.Accepted != 3 || r.ok.Format != "json_array" {
		t.Fatalf("09: %d %s", r.code, r.body)
	}
	_, els, err := body.Split(b09, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rebuilt [][]byte
	for _, e := range els {
		want = append(want, sent{topic: h.topics.RawLiteLLM(), format: "json_array", value: e.Bytes(b09)})
		rebuilt = append(rebuilt, e.Bytes(b09))
	}
	// The three slices are the body: "[" + joined by ", " + "]" (json.dumps).
	if got := "[" + string(bytes.Join(rebuilt, []byte(", "))) + "]"; got != string(bytes.TrimSpace(b09)) {
		t.Fatal("elements of 09 do not rebuild its body")
	}
	checkLanded(t, h, want)
}

// compact returns the example's payload as json.dumps writes it in a batch
// (taken from example 09, so the bytes are LiteLLM's own).
func batchElements(t *testing.T) [][]byte {
	b09 := example(t, "09_generic_api_batch_post_body_json_array.json")
	_, els, err := body.Split(b09, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range els {
		out = append(out, e.Bytes(b09))
	}
	return out
}

// TestWireForms posts the same payloads in every wire form LiteLLM has.
func TestWireForms(t *testing.T) {
	h := start(t, testenv.Kafka(t), nil)
	els := batchElements(t)
	nan := event(t, "litellm_python_nan.json")
	old := event(t, "litellm_old_call_id.json")
	legacy := event(t, "litellm_legacy_v1.json")
	var want []sent
	add := func(format string, vals ...[]byte) {
		for _, v := range vals {
			want = append(want, sent{topic: h.topics.RawLiteLLM(), format: format, value: v})
		}
	}
	cases := []struct {
		name, ctype string
		body        []byte
		accepted    int
		nulls       int
		format      string
		expect      func()
	}{
		{"json_array with nulls, NaN, old call_id", "application/json",
			[]byte("[" + string(els[0]) + ", null, " + string(nan) + ", " + string(old) + ", null]"), 3, 2, "json_array",
			func() { add("json_array", els[0], nan, old) }},
		{"ndjson as LiteLLM sends it (application/json, no trailing newline)", "application/json",
			bytes.Join([][]byte{els[1], els[2], nan}, []byte("\n")), 3, 0, "ndjson",
			func() { add("ndjson", els[1], els[2], nan) }},
		{"ndjson with its own content type and CRLF", "application/x-ndjson",
			[]byte(string(els[0]) + "\r\n" + string(old) + "\r\n"), 2, 0, "ndjson",
			func() { add("ndjson", els[0], old) }},
		{"single", "application/json; charset=utf-8", els[2], 1, 0, "single", func() { add("single", els[2]) }},
		{"legacy v1 batch", "application/json", []byte("[" + string(legacy) + "]"), 1, 0, "json_array",
			func() { add(string(raw.FormatLegacyV1), legacy) }},
		{"legacy v1 single", "application/json", legacy, 1, 0, "single", func() { add(string(raw.FormatLegacyV1), legacy) }},
		{"empty batch", "application/json", []byte("[]"), 0, 0, "json_array", func() {}},
	}
	for _, c := range cases {
		r := h.post("/v1/litellm", tokAll, c.body, "Content-Type", c.ctype)
		if r.code != 200 || r.ok.Accepted != c.accepted || r.ok.SkippedNulls != c.nulls || r.ok.Format != c.format {
			t.Fatalf("%s: %d %s", c.name, r.code, r.body)
		}
		c.expect()
	}
	checkLanded(t, h, want)
	if n := h.counter("auditline_ingest_null_elements_total"); n != 2 {
		t.Errorf("null elements counted %v, want 2", n)
	}
}

// TestGatewayAndOversight covers auditline's own schemas, including the
// sampling_control fan-out to every partition of raw.gateway.
func TestGatewayAndOversight(t *testing.T) {
	h := start(t, testenv.Kafka(t), nil)
	gwBlock, gwAllow := event(t, "gateway_block.json"), event(t, "gateway_allow.json")
	review, sampling := event(t, "oversight_review.json"), event(t, "oversight_sampling.json")

	if r := h.post("/v1/gateway", tokAll, []byte("["+string(gwBlock)+", "+string(gwAllow)+"]")); r.code != 200 || r.ok.Accepted != 2 {
		t.Fatalf("gateway: %d %s", r.code, r.body)
	}
	// The dashboards' token posts oversight events only.
	if r := h.post("/v1/oversight", tokDash, review); r.code != 200 || r.ok.Accepted != 1 {
		t.Fatalf("review: %d %s", r.code, r.body)
	}
	if r := h.post("/v1/oversight", tokDash, sampling); r.code != 200 || r.ok.Accepted != 1 {
		t.Fatalf("sampling: %d %s", r.code, r.body)
	}
	rs := h.records(h.topics.RawGateway())
	perPartition := map[int32]int{}
	var others []string
	for _, r := range rs {
		if raw.Header(r, raw.HeaderEventID) == "oversight:dash-0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f" {
			perPartition[r.Partition]++
			if raw.Header(r, raw.HeaderExplicitPartition) != fmt.Sprint(r.Partition) || !bytes.Equal(r.Value, sampling) {
				t.Errorf("control copy on partition %d: header %q", r.Partition, raw.Header(r, raw.HeaderExplicitPartition))
			}
			continue
		}
		others = append(others, raw.Header(r, raw.HeaderEventID)+"="+string(r.Key))
	}
	for p := range int32(h.kafka.Partitions) {
		if perPartition[p] != 1 {
			t.Errorf("partition %d has %d sampling_control copies, want 1 (%v)", p, perPartition[p], perPartition)
		}
	}
	wantOthers := []string{
		"gateway:gw-7f1c2a90-0001=2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24",
		"gateway:gw-7f1c2a90-0002=7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47",
		"oversight:dash-5b1e0c7d9a8f4e3b2c1d0e9f8a7b6c5d=2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24",
	}
	if strings.Join(others, " ") != strings.Join(wantOthers, " ") {
		t.Errorf("raw.gateway events %v, want %v", others, wantOthers)
	}
}

// TestCoPartitioning: a gateway event lands on the same partition number of
// raw.gateway as the LiteLLM events of its request on raw.litellm.
func TestCoPartitioning(t *testing.T) {
	h := start(t, testenv.Kafka(t), nil)
	gw := event(t, "gateway_block.json") // request_key of example 05
	if r := h.post("/v1/gateway", tokAll, gw); r.code != 200 {
		t.Fatal(r.code, string(r.body))
	}
	if r := h.post("/v1/litellm", tokAll, example(t, "05_guardrail_pre_call_block.json")); r.code != 200 {
		t.Fatal(r.code, string(r.body))
	}
	a, b := h.records(h.topics.RawGateway()), h.records(h.topics.RawLiteLLM())
	if len(a) != 1 || len(b) != 1 || a[0].Partition != b[0].Partition {
		t.Fatalf("gateway partition %v, litellm partition %v", a, b)
	}
}

// TestAuthFailures: every auth failure is refused before anything is written.
func TestAuthFailures(t *testing.T) {
	secret := "an-hmac-secret-of-32-bytes-xxxxx"
	h := start(t, testenv.Kafka(t), func(c *Config) {
		c.Auth.HMAC = auth.HMACConfig{Required: true, Secrets: []string{secret}}
	})
	b := example(t, "01_success_plain_openai.json")
	sig := auth.Sign([]byte(secret), b)
	tests := []struct {
		name, path, token string
		hdr               []string
		code              int
		reason            string
	}{
		{"no token", "/v1/litellm", "", []string{auth.DefaultSignatureHeader, sig}, 401, "missing_token"},
		{"bad token", "/v1/litellm", "wrong-token", []string{auth.DefaultSignatureHeader, sig}, 401, "invalid_token"},
		{"wrong scope", "/v1/litellm", tokDash, []string{auth.DefaultSignatureHeader, sig}, 403, "insufficient_scope"},
		{"dashboard token on gateway", "/v1/gateway", tokDash, []string{auth.DefaultSignatureHeader, sig}, 403, "insufficient_scope"},
		{"missing signature", "/v1/litellm", tokAll, nil, 401, "missing_signature"},
		{"bad signature", "/v1/litellm", tokAll, []string{auth.DefaultSignatureHeader, auth.Sign([]byte("another-secret-of-some-length"), b)}, 401, "bad_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post(tt.path, tt.token, b, tt.hdr...)
			if r.code != tt.code || r.err.Reason != tt.reason {
				t.Fatalf("%d %s, want %d %s", r.code, r.body, tt.code, tt.reason)
			}
			if tt.code == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") && !strings.Contains(tt.reason, "signature") {
				t.Errorf("401 without a Bearer challenge: %q", r.header.Get("WWW-Authenticate"))
			}
			if strings.Contains(string(r.body), tokAll) || strings.Contains(string(r.body), tokDash) {
				t.Error("response leaks a token")
			}
		})
	}
	if got := h.allRaw(); len(got) != 0 {
		t.Fatalf("refused requests wrote records: %v", got)
	}
	// The same body, correctly signed, is accepted.
	if r := h.post("/v1/litellm", tokAll, b, auth.DefaultSignatureHeader, sig); r.code != 200 {
		t.Fatalf("signed: %d %s", r.code, r.body)
	}
}

// TestDuplicateDeliveries: LiteLLM may send a batch twice; both are accepted
// and carry the same event ids, so that enrich drops the second copy.
func TestDuplicateDeliveries(t *testing.T) {
	h := start(t, testenv.Kafka(t), nil)
	b := example(t, "09_generic_api_batch_post_body_json_array.json")
	for range 2 {
		if r := h.post("/v1/litellm", tokAll, b); r.code != 200 || r.ok.Accepted != 3 {
			t.Fatalf("%d %s", r.code, r.body)
		}
	}
	ids := map[string][][]byte{}
	for _, r := range h.records(h.topics.RawLiteLLM()) {
		id := raw.Header(r, raw.HeaderEventID)
		ids[id] = append(ids[id], r.Value)
	}
	if len(ids) != 3 {
		t.Fatalf("%d distinct event ids, want 3: %v", len(ids), ids)
	}
	for id, vs := range ids {
		if len(vs) != 2 || !bytes.Equal(vs[0], vs[1]) {
			t.Errorf("event %s: %d copies", id, len(vs))
		}
	}
}

// TestDLQ: undecodable bodies and unusable elements are kept on the DLQ,
// acknowledged before the sender is answered. Under the capture policy full
// the DLQ keeps their bytes (TestDLQCapture: under hash it keeps no content).
func TestDLQ(t *testing.T) {
	h := start(t, testenv.Kafka(t), func(c *Config) { c.MaxEventBytes = 4096 })
	h.srv.capt = capture.New(capture.Full)
	good := batchElements(t)[0]
	if len(good) > 4096 {
		h.srv.cfg.MaxEventBytes = len(good) + 1
	}

	// 1. Invalid JSON on line 2: 400 with the position, body kept whole.
	broken := []byte("{\"id\": \"a\", \"trace_id\": \"t\"}\n{\"id\": \"b\", oops}")
	r := h.post("/v1/litellm", tokAll, broken)
	if r.code != 400 || r.err.Reason != "invalid_json" || r.err.Line != 2 || r.err.Column != 13 || *r.err.Offset != 41 || !r.err.DeadLettered {
		t.Fatalf("invalid json: %d %s", r.code, r.body)
	}
	// 2. A LiteLLM batch with one unusable element: 200, the element alone on the DLQ.
	mixed := []byte("[" + string(good) + ", 42, {\"status\": \"success\"}]")
	r = h.post("/v1/litellm", tokAll, mixed)
	if r.code != 200 || r.ok.Accepted != 1 || r.ok.DeadLettered != 2 || len(r.ok.Errors) != 2 || r.ok.Errors[1].Field != "id" {
		t.Fatalf("mixed: %d %s", r.code, r.body)
	}
	// 3. A gateway batch with one invalid event: 400 naming it, nothing on raw.gateway.
	gw := event(t, "gateway_allow.json")
	bad := bytes.Replace(gw, []byte(`"decision": "allow"`), []byte(`"decision": "maybe"`), 1)
	gwBody := []byte("[" + string(gw) + ", " + string(bad) + "]")
	r = h.post("/v1/gateway", tokAll, gwBody)
	if r.code != 400 || r.err.Reason != "invalid_event" || r.err.Element == nil || *r.err.Element != 1 || r.err.Field != "policy.decision" || !r.err.DeadLettered {
		t.Fatalf("gateway: %d %s", r.code, r.body)
	}
	// 4. An invalid body larger than max_event_bytes is kept in parts.
	big := append([]byte("["), bytes.Repeat([]byte(`{"id": "x", "trace_id": "y"}, `), 400)...) // ~11 KB, no closing bracket
	r = h.post("/v1/litellm", tokAll, big)
	if r.code != 400 || r.err.Reason != "invalid_json" {
		t.Fatalf("big: %d %s", r.code, r.body)
	}

	dlq := h.records(h.topics.DLQ())
	var parts [][]byte
	var reasons []string
	for _, rec := range dlq {
		if raw.Header(rec, raw.HeaderPart) != "" {
			parts = append(parts, rec.Value)
			continue
		}
		reasons = append(reasons, raw.Header(rec, raw.HeaderReason))
	}
	if len(dlq)-len(parts) != 4 {
		t.Fatalf("%d whole DLQ records, want 4: %q", len(dlq)-len(parts), reasons)
	}
	if !bytes.Equal(dlq[0].Value, broken) || !strings.HasPrefix(reasons[0], "invalid_json: invalid JSON at line 2, column 13") {
		t.Errorf("invalid json DLQ: %q %q", dlq[0].Value, reasons[0])
	}
	if string(dlq[1].Value) != "42" || !strings.Contains(reasons[1], "element 1") || !strings.Contains(reasons[2], "element 2: id:") {
		t.Errorf("element DLQ: %q %q", dlq[1].Value, reasons[1:3])
	}
	if !bytes.Equal(dlq[3].Value, gwBody) || !strings.Contains(reasons[3], "element 1: policy.decision") {
		t.Errorf("gateway DLQ: %q", reasons[3])
	}
	if len(parts) < 2 || !bytes.Equal(bytes.Join(parts, nil), big) {
		t.Errorf("big body in %d parts does not rebuild it", len(parts))
	}
	if n := len(h.records(h.topics.RawGateway())); n != 0 {
		t.Errorf("raw.gateway has %d records after a refused batch", n)
	}
	if n := len(h.records(h.topics.RawLiteLLM())); n != 1 {
		t.Errorf("raw.litellm has %d records, want 1", n)
	}
}

// TestLimits covers each limit on the real broker: nothing is written.
func TestLimits(t *testing.T) {
	h := start(t, testenv.Kafka(t), func(c *Config) {
		c.MaxBodyBytes = 64 << 10
		c.MaxInflightBytes = 64 << 10
		c.MaxEvents = 3
		c.MaxEventBytes = 8 << 10
	})
	one := batchElements(t)[0] // ~5 KB
	four := []byte("[" + strings.Repeat(`{"id": "a", "trace_id": "t"}, `, 3) + `{"id": "b", "trace_id": "t"}]`)
	huge := bytes.Repeat([]byte(" "), 65<<10)
	tests := []struct {
		name   string
		body   []byte
		hdr    []string
		code   int
		reason string
	}{
		{"body too large", append(huge, one...), nil, 413, "body_too_large"},
		{"too many events", four, nil, 413, "too_many_events"},
		{"event too large", []byte(`{"id": "x", "trace_id": "y", "pad": "` + strings.Repeat("p", 9<<10) + `"}`), nil, 413, "event_too_large"},
		{"form content type", one, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"latin1", one, []string{"Content-Type", "application/json; charset=iso-8859-1"}, 415, "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post("/v1/litellm", tokAll, tt.body, tt.hdr...)
			if r.code != tt.code || r.err.Reason != tt.reason {
				t.Fatalf("%d %s, want %d %s", r.code, r.body, tt.code, tt.reason)
			}
		})
	}
	// A chunked body (no Content-Length) past the limit is cut off while read.
	req, _ := http.NewRequest("POST", h.url+"/v1/litellm", struct{ *bytes.Reader }{bytes.NewReader(append(huge, one...))})
	req.Header.Set("Authorization", "Bearer "+tokAll)
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked: %d", resp.StatusCode)
	}
	if got := h.allRaw(); len(got) != 0 {
		t.Fatalf("refused requests wrote records: %d topics", len(got))
	}
	if n := h.counter("auditline_ingest_inflight_bytes"); n != 0 {
		t.Errorf("in-flight bytes %v after all requests, want 0", n)
	}
	// And a body within every limit passes.
	if r := h.post("/v1/litellm", tokAll, one); r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestGracefulShutdownKafka: shutdown with requests in flight on the real
// broker: each request that reached ingest is answered 200 after its events
// are acknowledged, Run returns nil, and Kafka holds every event answered 200.
func TestGracefulShutdownKafka(t *testing.T) {
	// The broker is given time to acknowledge (start's produce_timeout): this
	// test is about shutdown, and a produce timeout would answer 503 whether
	// or not shutdown was graceful.
	h := start(t, testenv.Kafka(t), nil)
	const n = 8
	type result struct {
		code int
		body string
		ids  []string
		err  error
	}
	results := make(chan result, n)
	for i := range n {
		b, ids := uniqueBatch(fmt.Sprintf("shut%d", i), 512)
		go func() {
			req, _ := http.NewRequest("POST", h.url+"/v1/litellm", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+tokAll)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{code: resp.StatusCode, body: string(body), ids: ids}
		}()
	}
	// Stop as soon as requests are being handled.
	deadline := time.Now().Add(10 * time.Second)
	for h.counter("auditline_ingest_inflight_requests") < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	inflight := h.counter("auditline_ingest_inflight_requests")
	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	acked := map[string]bool{}
	ok := 0
	for range n {
		r := <-results
		switch {
		case r.err != nil: // never reached ingest: refused at connect
		case r.code == 200:
			ok++
			for _, id := range r.ids {
				acked[id] = true
			}
		default:
			t.Errorf("status %d during shutdown: %s", r.code, r.body)
		}
	}
	if ok < int(inflight) {
		t.Errorf("%d requests were in flight at shutdown, only %d answered 200", int(inflight), ok)
	}
	inKafka := map[string]bool{}
	for _, r := range h.records(h.topics.RawLiteLLM()) {
		inKafka[raw.Header(r, raw.HeaderEventID)] = true
	}
	for id := range acked {
		if !inKafka[id] {
			t.Fatalf("event %s answered 200 is not in Kafka", id)
		}
	}
	t.Logf("%v requests in flight at shutdown; %d answered 200 (%d events, all in Kafka)", inflight, ok, len(acked))
}

// TestDLQCapture: under the default capture policy (hash) a dead-lettered
// body that is not JSON is a stub naming its SHA-256 and size, and an
// unusable element keeps every member but content, whose values become their
// SHA-256; the headers still name the original body's SHA-256.
func TestDLQCapture(t *testing.T) {
	fp := &fakeProducer{}
	h := startFake(t, fp, nil)
	broken := []byte(`[{"id": "a", "messages": "secret prompt"`)
	if r := h.post("/v1/litellm", tokAll, broken); r.code != 400 || !r.err.DeadLettered {
		t.Fatalf("invalid json: %d %s", r.code, r.body)
	}
	mixed := []byte(`[{"status": "success", "messages": [{"content": "secret prompt"}], "metadata": {"requester_custom_headers": {"x-a": "secret header"}}}]`)
	if r := h.post("/v1/litellm", tokAll, mixed); r.code != 200 || r.ok.DeadLettered != 1 {
		t.Fatalf("element: %d %s", r.code, r.body)
	}
	fp.mu.Lock()
	recs := slices.Clone(fp.recs)
	fp.mu.Unlock()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2 on the DLQ", len(recs))
	}
	if got, want := recs[0].Value, capture.Stub(capture.Hash, broken); !bytes.Equal(got, want) {
		t.Errorf("not-JSON body on the DLQ: %s, want %s", got, want)
	}
	if b := raw.Header(recs[0], raw.HeaderBatch); !strings.HasPrefix(b, sha256Hex(broken)+"/") {
		t.Errorf("batch header %q does not name the original body", b)
	}
	el := recs[1].Value
	if bytes.Contains(el, []byte("secret")) || !bytes.Contains(el, []byte(`"status": "success"`)) || !bytes.Contains(el, []byte(`"messages": "sha256:`)) {
		t.Errorf("element on the DLQ: %s", el)
	}
}
