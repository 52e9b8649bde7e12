package fold

import (
	"fmt"
	"slices"
	"testing"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
)

// try is one attempt event of the plugin: n, group, deployment, status ("" =
// success, else an error class with its code).
func try(n int64, kind, group, from, dep, class, code string) *event.Event {
	a := &event.Attempt{EventID: fmt.Sprintf("em/%d", n+10), RequestKey: "k", N: n, Kind: kind, ModelGroup: group,
		FallbackFrom: from, DeploymentID: dep, Status: "success", Start: record.Time(1000 + 100*n), End: record.Time(1050 + 100*n),
		Emission: event.Emission{Emitter: "em", Seq: n + 10}}
	if class != "" {
		a.Status, a.ErrorClass, a.ErrorCode, a.Timeout = "failure", class, code, class == "Timeout"
	}
	return &event.Event{ID: "attempt:" + a.EventID, Source: "litellm_attempt", Key: "k", Topic: "raw.litellm", Offset: 100 + n, Attempt: a}
}

// announced marks a payload as the plugin's, with n attempts spooled before it.
func announced(n int64) func(*event.LiteLLM) {
	return func(l *event.LiteLLM) {
		l.Emission = event.Emission{Emitter: "em", Seq: 99, Attempts: n, AttemptsKnown: true}
	}
}

func TestRoute(t *testing.T) {
	b := NewBuilder(NewDefaultRules())
	failed := func(code, class string, n int64) func(*event.LiteLLM) {
		return func(l *event.LiteLLM) {
			l.Error.Code, l.Error.Class = code, class
			announced(n)(l)
		}
	}
	type want struct {
		completeness string
		attempts     []string // "kind group deployment status"
		retries      int32
		fallback     bool
		targets      []string
		reasons      []string
		outcome      string
	}
	for _, tc := range []struct {
		name   string
		events []*event.Event
		want   want
	}{
		{"all deployments and the fallback fail 503", []*event.Event{
			lite("p1", "failure", "chat-a", 1100, failed("503", "ServiceUnavailableError", 1)),
			try(1, "first", "chat-a", "", "a-west", "ServiceUnavailableError", "503"),
			try(2, "retry", "chat-a", "", "a-west", "ServiceUnavailableError", "503"),
			try(3, "retry", "chat-a", "", "a-east", "ServiceUnavailableError", "503"),
			try(4, "fallback", "chat-b", "chat-a", "b-1", "ServiceUnavailableError", "503"),
			try(5, "retry", "chat-b", "", "b-2", "ServiceUnavailableError", "503"),
			try(6, "retry", "chat-b", "", "b-2", "ServiceUnavailableError", "503"),
		}, want{record.RoutingComplete, []string{
			"first chat-a a-west failure", "retry chat-a a-west failure", "retry chat-a a-east failure",
			"fallback chat-b b-1 failure", "retry chat-b b-2 failure", "retry chat-b b-2 failure"},
			4, true, []string{"chat-b"}, []string{ReasonAllAttemptsFailed, ReasonFallbackAfter5xx, ReasonRetries}, record.OutcomeFailure}},
		{"timeouts, the fallback times out too", []*event.Event{
			try(2, "fallback", "chat-a", "chat-b", "a-east", "Timeout", "408"),
			try(1, "first", "chat-b", "", "b-1", "Timeout", "408"),
			lite("p1", "failure", "chat-b", 1100, failed("408", "Timeout", 1)),
		}, want{record.RoutingComplete, []string{"first chat-b b-1 failure", "fallback chat-a a-east failure"},
			0, true, []string{"chat-a"}, []string{ReasonAllAttemptsFailed, ReasonFallbackAfterTimeout}, record.OutcomeFailure}},
		{"429 then success on the second deployment", []*event.Event{
			try(1, "first", "chat-a", "", "a-west", "RateLimitError", "429"),
			try(2, "retry", "chat-a", "", "a-east", "", ""),
			lite("p1", "failure", "chat-a", 1100, failed("429", "RateLimitError", 1)),
			lite("p2", "success", "chat-a", 1200, func(l *event.LiteLLM) { l.ModelID, l.CostUSD = "a-east", 0.25; announced(2)(l) }),
		}, want{record.RoutingComplete, []string{"first chat-a a-west failure", "retry chat-a a-east success"},
			1, false, []string{}, []string{ReasonRetries}, record.OutcomeSuccess}},
		{"chain A to B to C", []*event.Event{
			try(1, "first", "A", "", "a1", "ServiceUnavailableError", "503"),
			try(2, "fallback", "B", "A", "b1", "RateLimitError", "429"),
			try(3, "fallback", "C", "B", "c1", "", ""),
			lite("p2", "success", "C", 1300, func(l *event.LiteLLM) { l.ModelID = "c1"; announced(3)(l) }),
		}, want{record.RoutingComplete, []string{"first A a1 failure", "fallback B b1 failure", "fallback C c1 success"},
			0, true, []string{"B", "C"}, []string{ReasonFallbackAfter429, ReasonFallbackAfter5xx}, record.OutcomeSuccess}},
		{"a hole in the numbers is partial", []*event.Event{
			try(1, "first", "A", "", "a1", "ServiceUnavailableError", "503"),
			try(3, "fallback", "B", "A", "b1", "", ""),
			lite("p2", "success", "B", 1300, announced(3)),
		}, want{record.RoutingPartial, []string{"first A a1 failure", "fallback B b1 success"},
			0, true, []string{"B"}, []string{ReasonFallbackAfter5xx}, record.OutcomeSuccess}},
		{"fewer than announced is partial", []*event.Event{
			try(1, "first", "A", "", "a1", "", ""),
			lite("p2", "success", "A", 1300, announced(2)),
		}, want{record.RoutingPartial, []string{"first A a1 success"}, 0, false, []string{}, []string{}, record.OutcomeSuccess}},
		{"attempts without an outcome are partial", []*event.Event{
			try(1, "first", "A", "", "a1", "ServiceUnavailableError", "503"),
		}, want{record.RoutingPartial, []string{"first A a1 failure"}, 0, false, []string{}, []string{}, record.OutcomePending}},
		{"the plugin saw no upstream call (cache hit)", []*event.Event{
			lite("p1", "success", "A", 1300, func(l *event.LiteLLM) { l.CacheHit = true; announced(0)(l) }),
		}, want{record.RoutingComplete, []string{"first A  success"}, 0, false, []string{}, []string{}, record.OutcomeSuccess}},
		{"stock callback: final attempt only", []*event.Event{
			lite("p1", "failure", "chat-a", 1100, func(l *event.LiteLLM) { l.Error.Code = "503" }),
		}, want{record.RoutingFinalAttemptOnly, []string{"first chat-a  failure"}, 0, false, []string{}, []string{ReasonAllAttemptsFailed}, record.OutcomeFailure}},
		{"stock callback: a streamed fallback's success sorts first", []*event.Event{
			lite("p2", "success", "chat-a", 1000, nil),
			lite("p1", "failure", "chat-broken", 1100, func(l *event.LiteLLM) { l.Error.Code = "429" }),
		}, want{record.RoutingFinalAttemptOnly, []string{"fallback chat-a  success", "first chat-broken  failure"},
			0, true, []string{"chat-a"}, []string{ReasonFallbackAfter429}, record.OutcomeSuccess}},
		{"no routing event", []*event.Event{{ID: "gateway:g", Source: "gateway", Key: "k", Gateway: &event.Gateway{EventID: "g", Decision: "allow"}}},
			want{record.RoutingNone, nil, 0, false, []string{}, []string{}, record.OutcomePending}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := b.Build(tc.events, Context{})
			rt := d.Routing
			var got []string
			for _, a := range rt.Attempts {
				got = append(got, a.Kind+" "+a.ModelGroup+" "+a.DeploymentID+" "+a.Status)
			}
			w := tc.want
			if rt.Completeness != w.completeness {
				t.Errorf("completeness %q, want %q", rt.Completeness, w.completeness)
			}
			if !slices.Equal(got, w.attempts) || rt.AttemptCount != int32(len(w.attempts)) {
				t.Errorf("attempts (%d) %q\nwant %q", rt.AttemptCount, got, w.attempts)
			}
			if rt.RetryCount != w.retries || rt.FallbackUsed != w.fallback || !slices.Equal(rt.FallbackTargets, w.targets) {
				t.Errorf("retries %d fallback %v targets %q, want %d %v %q", rt.RetryCount, rt.FallbackUsed, rt.FallbackTargets, w.retries, w.fallback, w.targets)
			}
			if !slices.Equal(d.NearMiss.Reasons, w.reasons) {
				t.Errorf("near miss %q, want %q", d.NearMiss.Reasons, w.reasons)
			}
			if d.Outcome.Status != w.outcome {
				t.Errorf("outcome %s, want %s", d.Outcome.Status, w.outcome)
			}
		})
	}
}

// TestRouteOrderIndependent: the attempt list is the same whatever order the
// events arrive in, and the successful call carries the cost.
func TestRouteOrderIndependent(t *testing.T) {
	b := NewBuilder(NewDefaultRules())
	evs := []*event.Event{
		try(1, "first", "A", "", "a1", "RateLimitError", "429"),
		try(2, "retry", "A", "", "a1", "RateLimitError", "429"),
		try(3, "retry", "A", "", "a2", "RateLimitError", "429"),
		try(4, "fallback", "B", "A", "b1", "", ""),
		lite("p2", "success", "B", 1400, func(l *event.LiteLLM) { l.ModelID, l.CostUSD, l.PromptTokens = "b1", 0.5, 7; announced(4)(l) }),
	}
	want := b.Build(evs, Context{})
	if c := want.Routing.Attempts[3]; c.CostUSD != 0.5 || c.PromptTokens != 7 {
		t.Fatalf("cost on the serving attempt: %+v", c)
	}
	for i := range 20 {
		perm := slices.Clone(evs)
		for j := range perm {
			k := (j*7 + i) % len(perm)
			perm[j], perm[k] = perm[k], perm[j]
		}
		got := b.Build(perm, Context{})
		a, _ := got.Canonical()
		w, _ := want.Canonical()
		if string(a) != string(w) {
			t.Fatalf("order %d gives another record:\n%s\n%s", i, a, w)
		}
	}
}
