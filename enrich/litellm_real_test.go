package enrich

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
)

// Payloads captured from the real LiteLLM proxy (deploy/litellm/captured,
// docs/litellm.md §7): every body goes through ingest's splitter and decoder
// (enrich/internal/fixture) and the Processor, as in production.

const realLiteLLMVersion = "1.106.2"

func capturedDir() string { return filepath.Join("..", "deploy", "litellm", "captured") }

// capturedBodies returns the bodies of one capture case in one log format
// ("json_array", "ndjson", "single"), in the order they were sent.
func capturedBodies(t *testing.T, name, format string) [][]byte {
	t.Helper()
	var out [][]byte
	if b, err := os.ReadFile(filepath.Join(capturedDir(), name+"."+format+".body")); err == nil {
		out = append(out, b)
	}
	for i := 1; ; i++ {
		b, err := os.ReadFile(filepath.Join(capturedDir(), name+"."+format+"."+itoa(i)+".body"))
		if err != nil {
			break
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		t.Fatalf("no captured %s body for %s in %s", format, name, capturedDir())
	}
	return out
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// capturedRecords splits the bodies and decodes each payload as ingest does;
// drop removes payloads (by litellm_call_id + status) to simulate a lost batch.
func capturedRecords(t *testing.T, r *rig, bodies [][]byte, drop func(callID, status string) bool) []*kgo.Record {
	t.Helper()
	var recs []*kgo.Record
	for _, b := range bodies {
		_, els, err := body.Split(b, false, 0)
		if err != nil {
			t.Fatalf("split: %v", err)
		}
		for _, el := range els {
			elem := el.Bytes(b)
			ev, err := r.f.Event(raw.SourceLiteLLM, elem)
			if err != nil {
				t.Fatalf("ingest decoder refused a real payload: %v", err)
			}
			l, err := event.ParseLiteLLM(elem)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Key != l.CallID {
				t.Errorf("Kafka key %q, want litellm_call_id %q", ev.Key, l.CallID)
			}
			if drop != nil && drop(l.CallID, l.Status) {
				continue
			}
			recs = append(recs, r.f.Raw(ev, eventTime(t, raw.SourceLiteLLM, ev.Value).Add(2*time.Second)))
		}
	}
	return recs
}

func runCaptured(t *testing.T, name, format string, drop func(callID, status string) bool) []record.Decision {
	t.Helper()
	r := newRig(t, testConfig(), nil, nil)
	recs := capturedRecords(t, r, capturedBodies(t, name, format), drop)
	slices.SortStableFunc(recs, func(a, b *kgo.Record) int { return raw.ReceivedAt(a).Compare(raw.ReceivedAt(b)) })
	r.feed(recs...)
	r.idle(2 * time.Hour)
	ds := r.k.decisions(t)
	slices.SortFunc(ds, func(a, b record.Decision) int { return strings.Compare(a.Request.CallID, b.Request.CallID) })
	return ds
}

// realSummary is what docs/litellm.md §8 says a decision must get right.
type realSummary struct {
	CallID, Completeness, RequestedAlias, ServedGroup, ServedModel string
	Deployment, Provider, APIBase, CallType                        string
	Fallback                                                       bool
	Retries, Attempts                                              int32
	Outcome, BlockedBy, ErrorCode, GuardrailStatus                 string
	Guardrails                                                     []string // name:status:action:masked
	EndUser                                                        string
	Tags                                                           []string
	CostUSD, SavedUSD                                              float64
	CacheHit, Stream                                               bool
	NearMiss                                                       []string
}

func summarize(d record.Decision) realSummary {
	s := realSummary{
		CallID: d.Request.CallID, Completeness: d.Completeness, RequestedAlias: d.Routing.RequestedAlias,
		ServedGroup: d.Routing.ServedModelGroup, ServedModel: d.Routing.ServedModel, Deployment: d.Routing.DeploymentID,
		Provider: d.Routing.Provider, APIBase: d.Routing.APIBase, CallType: d.Request.CallType,
		Fallback: d.Routing.FallbackUsed, Retries: d.Routing.RetryCount, Attempts: d.Routing.AttemptCount,
		Outcome: d.Outcome.Status, BlockedBy: d.Outcome.BlockedBy, ErrorCode: d.Outcome.ErrorCode,
		GuardrailStatus: d.Outcome.GuardrailStatus, EndUser: d.Identity.EndUser, Tags: d.Identity.Tags,
		CostUSD: d.Outcome.CostUSD, SavedUSD: d.Outcome.SavedCostUSD, CacheHit: d.Outcome.CacheHit,
		Stream: d.Request.Stream, NearMiss: d.NearMiss.Reasons,
	}
	for _, g := range d.Guardrails {
		s.Guardrails = append(s.Guardrails, g.Name+":"+g.Status+":"+g.Action+":"+strings.Join(g.MaskedEntities, "+"))
	}
	return s
}

// want is a partial expectation: zero-valued fields are not checked, except
// the booleans and counts, which always are.
type want struct {
	alias, group, model, deployment, provider string
	fallback                                  bool
	retries, attempts                         int32
	outcome, blockedBy, errorCode, guardrail  string
	guardrails                                []string
	endUser                                   string
	tag                                       string
	cost                                      float64
	cacheHit, stream                          bool
	nearMiss                                  []string
	completeness                              string
}

func (w want) check(t *testing.T, s realSummary) {
	t.Helper()
	str := func(field, got, want string) {
		if want != "" && got != want {
			t.Errorf("%s: %s = %q, want %q", s.CallID, field, got, want)
		}
	}
	str("requested_alias", s.RequestedAlias, w.alias)
	str("served_model_group", s.ServedGroup, w.group)
	str("served_model", s.ServedModel, w.model)
	str("deployment_id", s.Deployment, w.deployment)
	str("provider", s.Provider, w.provider)
	str("outcome", s.Outcome, w.outcome)
	str("blocked_by", s.BlockedBy, w.blockedBy)
	str("error_code", s.ErrorCode, w.errorCode)
	str("guardrail_status", s.GuardrailStatus, w.guardrail)
	str("end_user", s.EndUser, w.endUser)
	str("completeness", s.Completeness, first(w.completeness, record.Complete))
	if s.Fallback != w.fallback || s.Retries != w.retries || s.Attempts != w.attempts {
		t.Errorf("%s: fallback/retries/attempts = %v/%d/%d, want %v/%d/%d", s.CallID, s.Fallback, s.Retries, s.Attempts, w.fallback, w.retries, w.attempts)
	}
	if s.CacheHit != w.cacheHit || s.Stream != w.stream {
		t.Errorf("%s: cache_hit/stream = %v/%v, want %v/%v", s.CallID, s.CacheHit, s.Stream, w.cacheHit, w.stream)
	}
	if w.guardrails != nil && !slices.Equal(s.Guardrails, w.guardrails) {
		t.Errorf("%s: guardrails = %q, want %q", s.CallID, s.Guardrails, w.guardrails)
	}
	if w.tag != "" && !slices.Contains(s.Tags, w.tag) {
		t.Errorf("%s: tags %q lack %q", s.CallID, s.Tags, w.tag)
	}
	if math.Abs(s.CostUSD-w.cost) > 1e-12 {
		t.Errorf("%s: cost_usd = %g, want %g", s.CallID, s.CostUSD, w.cost)
	}
	if w.nearMiss != nil && !slices.Equal(s.NearMiss, w.nearMiss) {
		t.Errorf("%s: near_miss = %q, want %q", s.CallID, s.NearMiss, w.nearMiss)
	}
}

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

var passed2 = []string{"auditline-marker:passed::", "content-filter:passed::"}

// realCases: one entry per capture case, each request in call id order.
var realCases = []struct {
	name string
	want []want
}{
	{"plain", []want{{alias: "chat-a", group: "chat-a", model: "openai/gpt-a-east", deployment: "chat-a-openai-east", provider: "openai",
		attempts: 1, outcome: "success", guardrail: "passed", guardrails: passed2, endUser: "end-user-42", tag: "team:billing", cost: 8.8e-05, nearMiss: []string{}}}},
	{"stream", []want{{alias: "chat-b", group: "chat-b", model: "azure/gpt-b-2", deployment: "chat-b-azure-2", provider: "azure",
		attempts: 1, outcome: "success", stream: true, endUser: "end-user-42", cost: 4.4e-05}}},
	{"retry_429", []want{{alias: "chat-a", group: "chat-a", model: "azure/gpt-a-west", deployment: "chat-a-azure-west", provider: "azure",
		retries: 1, attempts: 2, outcome: "success", endUser: "end-user-42", cost: 9.8e-05, nearMiss: []string{"retries"}}}},
	{"retry_500", []want{{alias: "chat-a", group: "chat-a", model: "azure/gpt-a-west", provider: "azure",
		retries: 1, attempts: 2, outcome: "success", cost: 9.8e-05, nearMiss: []string{"retries"}}}},
	{"fallback_429", []want{{alias: "chat-a", group: "chat-b", model: "openai/gpt-b-1", deployment: "chat-b-openai-1", provider: "openai",
		fallback: true, attempts: 2, outcome: "success", cost: 4.9e-05, nearMiss: []string{"fallback_after_429"}}}},
	{"fallback_broken", []want{{alias: "chat-broken", group: "chat-a", model: "openai/gpt-a-east", provider: "openai",
		fallback: true, attempts: 2, outcome: "success", cost: 0.000118, nearMiss: []string{"fallback_after_5xx"}}}},
	// The streamed success's startTime precedes the failure's: the alias must
	// still come from the failure payload.
	{"stream_fallback", []want{{alias: "chat-broken", group: "chat-a", model: "azure/gpt-a-west", deployment: "chat-a-azure-west", provider: "azure",
		fallback: true, attempts: 2, outcome: "success", stream: true, cost: 7.8e-05, nearMiss: []string{"fallback_after_429"}}}},
	{"all_fail", []want{{alias: "chat-broken", group: "chat-broken", model: "openai/fail-429", provider: "openai",
		attempts: 1, outcome: "failure", errorCode: "429", endUser: "end-user-42"}}},
	{"guardrail_block_filter", []want{{alias: "chat-a", attempts: 1, outcome: "blocked", blockedBy: "guardrail", errorCode: "400",
		guardrail: "intervened", guardrails: []string{"content-filter:intervened:block:"}, endUser: "end-user-42",
		nearMiss: []string{"guardrail_intervened"}}}},
	{"guardrail_block_custom", []want{{alias: "chat-a", attempts: 1, outcome: "blocked", blockedBy: "guardrail",
		guardrail: "intervened", guardrails: []string{"auditline-marker:intervened::", "content-filter:passed::"}}}},
	// Masking is status "success": passed, with the mask as action and count.
	{"guardrail_mask", []want{{alias: "chat-a", group: "chat-a", attempts: 1, outcome: "success", guardrail: "passed",
		guardrails: []string{"auditline-marker:passed::", "content-filter:passed:mask:email=1"}, cost: 9.8e-05}}},
	{"cache", []want{
		{alias: "chat-a", group: "chat-a", model: "openai/gpt-a-east", attempts: 1, outcome: "success", cost: 9.8e-05},
		{alias: "chat-a", group: "chat-a", model: "openai/gpt-a-east", attempts: 1, outcome: "success", cacheHit: true, cost: 0},
	}},
	{"unknown_model", []want{{alias: "no-such-alias", attempts: 1, outcome: "failure", errorCode: "400", endUser: ""}}},
	{"bad_key", []want{{alias: "chat-a", attempts: 1, outcome: "failure", errorCode: "400", guardrail: "not_run"}}},
	{"embedding", []want{{alias: "embed-a", group: "embed-a", model: "openai/embed-small", attempts: 1, outcome: "success", cost: 4e-07}}},
	// One trace_id (litellm_session_id) over three requests: three records.
	{"session", []want{
		{alias: "chat-b", attempts: 1, outcome: "success", cost: 3.4e-05},
		{alias: "chat-a", attempts: 1, outcome: "success", cost: 6.8e-05},
		{alias: "chat-a", attempts: 1, outcome: "success", cost: 6.8e-05},
	}},
}

// TestRealLiteLLMPayloads feeds every captured real payload through ingest's
// decoder and the Processor, checks the decision fields of docs/litellm.md §8,
// and compares the whole records with golden files.
func TestRealLiteLLMPayloads(t *testing.T) {
	for _, c := range realCases {
		t.Run(c.name, func(t *testing.T) {
			ds := runCaptured(t, c.name, "json_array", nil)
			if len(ds) != len(c.want) {
				t.Fatalf("%d decisions, want %d (one per request)", len(ds), len(c.want))
			}
			var sums []realSummary
			for i, d := range ds {
				if d.Version != 1 {
					t.Errorf("%s: version %d, want 1 (no amendment)", d.Request.CallID, d.Version)
				}
				s := summarize(d)
				c.want[i].check(t, s)
				sums = append(sums, s)
			}
			// The other two log formats carry the same payloads: same decisions.
			for _, f := range []string{"ndjson", "single"} {
				var other []realSummary
				for _, d := range runCaptured(t, c.name, f, nil) {
					other = append(other, summarize(d))
				}
				if a, b := mustJSON(sums), mustJSON(other); a != b {
					t.Errorf("%s decisions differ from json_array:\n%s\nwant\n%s", f, b, a)
				}
			}
			goldenCompare(t, filepath.Join("testdata", "golden", "litellm-"+realLiteLLMVersion, c.name+".json"), ds)
		})
	}
}

// TestRealLiteLLMLostFailure drops the failure payload of a real fallback
// (as a lost logger batch would): the record still says a fallback happened
// (LiteLLM's x-litellm-attempted-fallbacks) and is emitted timed_out, because
// a payload LiteLLM says exists never came.
func TestRealLiteLLMLostFailure(t *testing.T) {
	for _, c := range []struct {
		name string
		w    want
	}{
		{"fallback_429", want{alias: "chat-b", group: "chat-b", fallback: true, attempts: 1, outcome: "success", cost: 4.9e-05, completeness: record.TimedOut}},
		{"retry_429", want{alias: "chat-a", group: "chat-a", retries: 1, attempts: 1, outcome: "success", cost: 9.8e-05, completeness: record.TimedOut}},
		// Streamed successes carry no counters: the loss is invisible.
		{"stream_fallback", want{alias: "chat-a", group: "chat-a", attempts: 1, outcome: "success", stream: true, cost: 7.8e-05}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ds := runCaptured(t, c.name, "json_array", func(_, status string) bool { return status == "failure" })
			if len(ds) != 1 {
				t.Fatalf("%d decisions, want 1", len(ds))
			}
			c.w.check(t, summarize(ds[0]))
		})
	}
}

// TestRealLiteLLMAlert: the real budget alert (no Authorization header; the
// token travels as access_token, see ingest/auth) decodes with its new keys.
func TestRealLiteLLMAlert(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(capturedDir(), "alert_test.alert.body"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := os.ReadFile(filepath.Join(capturedDir(), "alert_test.alert.headers"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ToLower(h), []byte("authorization")) {
		t.Errorf("the captured alert has an Authorization header; docs/litellm.md §7.7 says it has none")
	}
	r := newRig(t, testConfig(), nil, nil)
	ev, err := r.f.Event(raw.SourceAlert, b)
	if err != nil {
		t.Fatalf("ingest refused the real alert: %v", err)
	}
	a, err := event.ParseAlert(ev.Value, ev.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(a); !strings.Contains(got, "budget_crossed") {
		t.Errorf("alert decoded without its event: %s", got)
	}
}

func goldenCompare(t *testing.T, path string, ds []record.Decision) {
	t.Helper()
	var got bytes.Buffer
	got.WriteString("[\n")
	for i, d := range ds {
		cb, err := d.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Indent(&got, cb, "", "  "); err != nil {
			t.Fatal(err)
		}
		if i < len(ds)-1 {
			got.WriteString(",")
		}
		got.WriteString("\n")
	}
	got.WriteString("]\n")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantB, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diffs := fieldDiff(wantB, got.Bytes()); len(diffs) > 0 {
		t.Errorf("%s differs field by field (run with -update if intended):\n%s", path, joinLines(diffs))
	}
}
