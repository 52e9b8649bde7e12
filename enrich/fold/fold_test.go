package fold

import (
	"slices"
	"testing"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
)

func TestSampleUnit(t *testing.T) {
	// printf 'auditline.sample.v1\0b66918b533b9993e7de9bc35f4d9f480' | sha256sum | cut -c1-16
	// → ecdd43309e63095b; (0xecdd43309e63095b >> 11) / 2^53 = 0.9252511972139353
	if u := SampleUnit("b66918b533b9993e7de9bc35f4d9f480"); u != 0.9252511972139353 {
		t.Fatalf("SampleUnit = %v", u)
	}
	// Uniform enough that rates mean what they say.
	n := 0
	for i := range 20000 {
		if SampleUnit(record.ID(string(rune('a'+i%26))+string(rune(i)))) < 0.1 {
			n++
		}
	}
	if n < 1800 || n > 2200 {
		t.Fatalf("%d of 20000 below 0.1", n)
	}
}

func TestDefaultsValid(t *testing.T) {
	r := NewDefaultRules()
	if err := r.Validate(""); err != nil {
		t.Fatal(err)
	}
}

func lite(id, status, group string, start int64, mod func(*event.LiteLLM)) *event.Event {
	l := &event.LiteLLM{ID: id, CallID: "k", Status: status, ModelGroup: group, Start: record.Time(start), End: record.Time(start + 100)}
	if mod != nil {
		mod(l)
	}
	return &event.Event{ID: "litellm:" + id + ":" + status, Source: "litellm", Key: "k", Topic: "raw.litellm", Offset: start, LiteLLM: l}
}

// TestNearMissAndOutcome pins each derived rule on minimal events.
func TestNearMissAndOutcome(t *testing.T) {
	b := NewBuilder(NewDefaultRules())
	f64 := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name      string
		events    []*event.Event
		outcome   string
		blockedBy string
		reasons   []string
		fallback  bool
		retries   int32
	}{
		{"fallback after 503", []*event.Event{
			lite("a", "failure", "g1", 1000, func(l *event.LiteLLM) { l.Error.Code = "503" }),
			lite("b", "success", "g2", 2000, nil)},
			record.OutcomeSuccess, "", []string{ReasonFallbackAfter5xx}, true, 0},
		{"retry in place", []*event.Event{
			lite("a", "failure", "g1", 1000, func(l *event.LiteLLM) { l.Error.Code = "429" }),
			lite("b", "success", "g1", 2000, nil)},
			record.OutcomeSuccess, "", []string{ReasonRetries}, false, 1},
		{"all failed at the provider", []*event.Event{
			lite("a", "failure", "g1", 1000, func(l *event.LiteLLM) { l.Error.Code = "500" })},
			record.OutcomeFailure, "", []string{ReasonAllAttemptsFailed}, false, 0},
		{"proxy rate limit", []*event.Event{
			lite("a", "failure", "", 1000, func(l *event.LiteLLM) {
				l.Error.Code, l.Error.RateLimitCategory, l.Error.RateLimitType = "429", "litellm_rate_limit", "requests"
			})},
			record.OutcomeBlocked, "rate_limit", []string{ReasonRateLimited}, false, 0},
		{"guardrail failed to respond, near its score", []*event.Event{
			lite("a", "success", "g1", 1000, func(l *event.LiteLLM) {
				l.Guardrails = []record.Guardrail{{Name: "x", Status: event.GuardrailFailed, RiskScore: f64(7.5)}}
			})},
			record.OutcomeSuccess, "", []string{ReasonGuardrailFailed, ReasonRiskScoreNear}, false, 0},
		{"post-call guardrail masks without blocking", []*event.Event{
			lite("a", "failure", "g1", 1000, func(l *event.LiteLLM) {
				l.Guardrails = []record.Guardrail{{Name: "pii", Mode: "post_call", Status: event.GuardrailIntervened}}
			})},
			record.OutcomeFailure, "", []string{ReasonAllAttemptsFailed, ReasonGuardrailIntervened}, false, 0},
		{"budget over threshold", []*event.Event{
			lite("a", "success", "g1", 1000, func(l *event.LiteLLM) { l.Budget.TeamSpend, l.Budget.TeamMax = f64(850), f64(1000) })},
			record.OutcomeSuccess, "", []string{ReasonBudgetOverThreshold}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := b.Build(tc.events, Context{})
			if d.Outcome.Status != tc.outcome || d.Outcome.BlockedBy != tc.blockedBy {
				t.Errorf("outcome %s/%s, want %s/%s", d.Outcome.Status, d.Outcome.BlockedBy, tc.outcome, tc.blockedBy)
			}
			if !slices.Equal(d.NearMiss.Reasons, tc.reasons) || d.NearMiss.Flagged != (len(tc.reasons) > 0) {
				t.Errorf("near miss %v %v, want %v", d.NearMiss.Flagged, d.NearMiss.Reasons, tc.reasons)
			}
			if d.Routing.FallbackUsed != tc.fallback || d.Routing.RetryCount != tc.retries {
				t.Errorf("fallback %v retries %d, want %v %d", d.Routing.FallbackUsed, d.Routing.RetryCount, tc.fallback, tc.retries)
			}
		})
	}
}

func TestDedupKeepsLowestOffset(t *testing.T) {
	a := lite("a", "success", "g", 5, nil)
	again := lite("a", "success", "g", 9, nil)
	got := Dedup([]*event.Event{again, a, again})
	if len(got) != 1 || got[0].Offset != 5 {
		t.Fatalf("Dedup = %d events, offset %d", len(got), got[0].Offset)
	}
}

func TestStickySampling(t *testing.T) {
	r := NewDefaultRules()
	r.Sampling.Rates = TierRates{"high": 0, "medium": 0, "low": 0}
	b := NewBuilder(r)
	ev := []*event.Event{lite("a", "success", "g", 1000, nil)}
	if d := b.Build(ev, Context{}); d.Risk.Sampled {
		t.Fatal("sampled at rate 0")
	}
	d := b.Build(ev, Context{Prior: &Sample{Sampled: true, Reason: "baseline", Rate: 0.01}})
	if !d.Risk.Sampled || d.Risk.SampleReason != "baseline" || d.Risk.SampleRate != 0.01 {
		t.Fatalf("an amendment un-sampled the record: %+v", d.Risk)
	}
}

// TestErrorTextFollowsCapturePolicy: error messages quote requests, so every
// policy but full masks personal data and secrets in them, in the attempts
// and in the outcome; a refused request has no served deployment.
func TestErrorTextFollowsCapturePolicy(t *testing.T) {
	const msg = "400: Content blocked for jane.doe@example.com (key sk-abcdefghijklmnopqrstuv)"
	ev := lite("a", "failure", "", 1000, func(l *event.LiteLLM) {
		l.Model, l.Error.Code, l.Error.Message = "chat-a", "400", msg
	})
	for _, policy := range []string{CaptureFull, CaptureRedacted, CaptureHash, CaptureNone} {
		rules := NewDefaultRules()
		rules.Content.Policy = policy
		d := NewBuilder(rules).Build([]*event.Event{ev}, Context{})
		want := "400: Content blocked for [EMAIL] (key [SECRET])"
		if policy == CaptureFull {
			want = msg
		}
		if d.Outcome.ErrorMessage != want || d.Routing.Attempts[0].ErrorMessage != want {
			t.Errorf("%s: outcome %q, attempt %q, want %q", policy, d.Outcome.ErrorMessage, d.Routing.Attempts[0].ErrorMessage, want)
		}
		if d.Routing.RequestedAlias != "chat-a" || d.Routing.ServedModel != "" || d.Routing.Provider != "" {
			t.Errorf("%s: requested %q served %q provider %q, want chat-a and nothing served", policy, d.Routing.RequestedAlias, d.Routing.ServedModel, d.Routing.Provider)
		}
	}
}
