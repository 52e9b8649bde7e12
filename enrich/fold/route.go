package fold

import (
	"slices"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
)

// Issue 21: the real route of a request. LiteLLM's own payloads carry at
// most the first failed call and the final outcome of a request (1.106: one
// failure payload per request, behind a de-duplication gate); the calls in
// between, and every call of a request that failed entirely, are invisible
// to them. auditline's LiteLLM plugin reports each upstream call as an
// attempt event (event.Attempt, from the router's deployment hooks), numbered
// per request. When a request has such events they are its route; when it
// has none the route is what the payloads say, marked final_attempt_only.

// routeTimes widens the request's start and end to its attempt events (a
// request whose outcome never arrived is known from them and its marker).
func routeTimes(d *record.Decision, tries []*event.Event) {
	r := &d.Request
	for _, e := range tries {
		a := e.Attempt
		if a.Start != 0 && (r.StartTime == 0 || a.Start < r.StartTime) {
			r.StartTime = a.Start
		}
		r.EndTime = max(r.EndTime, a.End)
	}
	if r.EndTime < r.StartTime {
		r.EndTime = r.StartTime
	}
	r.DurationMS = int64(r.EndTime - r.StartTime)
}

// route sets the routing completeness and, from the plugin's attempt events
// when there are any, the true ordered attempts, retry count, fallback use
// and fallback targets. routing() has filled the summary from the payloads
// before; served is the payload that decided the outcome.
func (b *Builder) route(d *record.Decision, payloads, tries []*event.Event, served *event.LiteLLM) {
	rt := &d.Routing
	var announced int64
	known := false
	for _, p := range payloads {
		if em := p.LiteLLM.Emission; em.AttemptsKnown {
			known = true
			announced = max(announced, em.Attempts)
		}
	}
	if len(tries) == 0 {
		payloadKinds(rt)
		switch {
		case known && announced == 0:
			// The plugin saw no upstream call: a cache hit, or a request
			// refused before routing. The payloads are the whole story.
			rt.Completeness = record.RoutingComplete
		case known:
			rt.Completeness = record.RoutingPartial // announced calls, none arrived
		case len(payloads) > 0:
			rt.Completeness = record.RoutingFinalAttemptOnly
		default:
			rt.Completeness = record.RoutingNone
		}
		return
	}

	rt.Attempts = make([]record.Attempt, 0, len(tries))
	rt.RetryCount, rt.FallbackUsed, rt.FallbackTargets = 0, false, []string{}
	contiguous := true
	for i, e := range tries {
		a := e.Attempt
		contiguous = contiguous && a.N == int64(i+1)
		rt.Attempts = append(rt.Attempts, record.Attempt{
			EventID: e.ID, Status: a.Status, ModelGroup: a.ModelGroup, Model: a.Model, DeploymentID: a.DeploymentID,
			Provider: a.Provider, APIBase: a.APIBase, ErrorCode: a.ErrorCode, ErrorClass: a.ErrorClass,
			ErrorMessage: b.errorText(a.ErrorMessage), StartTime: a.Start, EndTime: a.End,
			Kind: a.Kind, FallbackFrom: a.FallbackFrom, Timeout: a.Timeout || a.ErrorClass == "Timeout",
		})
		switch a.Kind {
		case event.AttemptRetry:
			rt.RetryCount++
		case event.AttemptFallback:
			rt.FallbackUsed = true
			rt.FallbackTargets = append(rt.FallbackTargets, a.ModelGroup)
		}
	}
	if first := tries[0].Attempt; first.N == 1 && first.ModelGroup != "" {
		rt.RequestedAlias = first.ModelGroup
	}
	rt.AttemptCount = int32(len(rt.Attempts))
	// What the call cost is on LiteLLM's success payload: it belongs to the
	// successful call that served it (the last success of its deployment).
	if served != nil && served.Status == "success" {
		for i := len(rt.Attempts) - 1; i >= 0; i-- {
			at := &rt.Attempts[i]
			if at.Status == "success" && (served.ModelID == "" || at.DeploymentID == "" || at.DeploymentID == served.ModelID) {
				at.CostUSD, at.PromptTokens, at.CompletionTokens = served.CostUSD, served.PromptTokens, served.CompletionTokens
				break
			}
		}
	}
	switch {
	case contiguous && len(payloads) > 0 && int64(len(tries)) >= announced:
		rt.Completeness = record.RoutingComplete
	default:
		// A hole in the numbers (an attempt event lost or late), fewer than
		// the outcome announced, or no outcome yet.
		rt.Completeness = record.RoutingPartial
	}
}

// payloadKinds labels attempts known only from LiteLLM's payloads: those in
// the requested group are the first try and retries, those in another group
// fallbacks (where from is unknown: hops between are not in the payloads).
func payloadKinds(rt *record.Routing) {
	rt.FallbackTargets = []string{}
	seenFirst := false
	for i := range rt.Attempts {
		a := &rt.Attempts[i]
		a.Timeout = a.ErrorClass == "Timeout"
		switch {
		case a.ModelGroup == "" || a.ModelGroup == rt.RequestedAlias:
			a.Kind = event.AttemptFirst
			if seenFirst {
				a.Kind = event.AttemptRetry
			}
			seenFirst = true
		default:
			a.Kind = event.AttemptFallback
			if !slices.Contains(rt.FallbackTargets, a.ModelGroup) {
				rt.FallbackTargets = append(rt.FallbackTargets, a.ModelGroup)
			}
		}
	}
}

type causes struct{ rateLimit, serverError, timeout bool }

// fallbackCauses says why the request fell back: the status of the failed
// calls before a fallback hop (from the attempt events), or, with payloads
// only, of the failed payloads other than the one that decided the outcome.
func fallbackCauses(d *record.Decision, payloads []*event.Event, fromEvents bool, served *event.LiteLLM) causes {
	var c causes
	note := func(e event.Error, timeout bool) {
		st := HTTPStatus(e)
		c.rateLimit = c.rateLimit || st == "429"
		c.serverError = c.serverError || (len(st) == 3 && st[0] == '5')
		c.timeout = c.timeout || timeout || st == "408"
	}
	if !d.Routing.FallbackUsed {
		return c
	}
	if fromEvents {
		lastHop := 0
		for i, a := range d.Routing.Attempts {
			if a.Kind == event.AttemptFallback {
				lastHop = i
			}
		}
		for _, a := range d.Routing.Attempts[:lastHop] {
			if a.Status == "failure" {
				note(event.Error{Code: a.ErrorCode, Class: a.ErrorClass}, a.Timeout)
			}
		}
		return c
	}
	for _, a := range payloads {
		// A failed attempt other than the one that decided the outcome (a
		// streamed fallback's failure payload may sort after its success).
		if l := a.LiteLLM; l != served && l.Status == "failure" {
			note(l.Error, l.Error.Class == "Timeout")
		}
	}
	return c
}

// allAttemptsFailed: the request failed after reaching the router, and no
// upstream call it made succeeded.
func allAttemptsFailed(d *record.Decision) bool {
	if d.Outcome.Status != record.OutcomeFailure {
		return false
	}
	routed := false
	for _, a := range d.Routing.Attempts {
		if a.Status == "success" {
			return false
		}
		routed = routed || a.ModelGroup != "" || a.DeploymentID != ""
	}
	return routed
}
