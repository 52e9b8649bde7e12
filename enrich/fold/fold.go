// Package fold computes a Decision from the set of a request's source events:
// the one place where every field of record.Decision is derived.
//
// Guarantee: Build is a pure function of (the set of events, the Rules, the
// Context). Arrival order and duplicates do not matter:
//
//   - events are de-duplicated by event id; of two copies the one at the lower
//     (topic, offset) is kept, so the evidence does not depend on which copy
//     came first;
//   - attempts are ordered by start time, then event id; guardrails by name,
//     mode and content; policy decisions and oversight actions by time, then
//     event id; evidence by event id;
//   - identity and budget come from the earliest attempt (the state at auth);
//     what was served from the last successful attempt;
//   - every derived field (routing summary, fallback vs retry, outcome,
//     near miss, risk tier, sampling) is recomputed from those lists.
//
// The Context supplies what is not an event of the request: the budget alerts
// known for its entities and whether burst sampling is on. Those are looked up
// at the call's end time, so they too are the same on replay as long as the
// alert or control event was received before the record was built.
package fold

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/privacy/pseudonym"
	"github.com/auditline/auditline/privacy/redact"
)

// AlertLookup returns the latest budget alert for an entity received at or
// before at, or nil. entityType is key, user, team, end_user or organization.
type AlertLookup interface {
	Latest(entityType, entityID string, at record.Time) *record.BudgetAlert
}

// Sample is a previous version's sampling decision. Sampling is sticky: a
// record once sampled stays sampled in every later version (with the reason
// and rate of the version that sampled it, unless the new version is sampled
// on its own), so an amendment never drops a record from a review queue.
type Sample struct {
	Sampled bool
	Reason  string
	Rate    float64
}

// Context is what Build needs besides the events.
type Context struct {
	Alerts AlertLookup // nil: no alerts attached
	// Burst reports whether burst sampling applies to a record of tier whose
	// request started at start. Nil means never.
	Burst func(tier string, start record.Time) bool
	// Prior is the previous version's sampling decision (amendments), or nil.
	Prior *Sample
}

// Builder builds Decisions under one set of Rules. Safe for concurrent use.
type Builder struct {
	rules     Rules
	rulesHash string // Rules.Canonical's hash, carried by every record
	reasons   map[string]bool
	always    map[string]bool
	red       *redact.Redactor
	pseud     *pseudonym.Pseudonymiser // nil: identities stay in clear
}

// NewBuilder returns a Builder for rules (which must be valid).
func NewBuilder(rules Rules) *Builder {
	b := &Builder{rules: rules, reasons: map[string]bool{}, always: map[string]bool{}, red: redact.New(),
		pseud: pseudonym.New(rules.Content.Pseudonymise)}
	_, b.rulesHash, _ = rules.Canonical() // plain data: it cannot fail
	for _, r := range rules.NearMiss.Reasons {
		b.reasons[r] = true
	}
	for _, t := range rules.Sampling.Always {
		b.always[t] = true
	}
	return b
}

// KeepsContent reports whether the capture policy keeps message text, i.e.
// whether callers must keep event.LiteLLM.Messages/Response alive.
func (b *Builder) KeepsContent() bool {
	return b.rules.Content.Policy == CaptureFull || b.rules.Content.Policy == CaptureRedacted
}

// Dedup returns events de-duplicated by id (lowest topic, offset wins) and
// sorted by id. The input slice is not modified.
func Dedup(events []*event.Event) []*event.Event {
	out := slices.Clone(events)
	slices.SortFunc(out, func(a, b *event.Event) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Offset, b.Offset))
	})
	return slices.CompactFunc(out, func(a, b *event.Event) bool { return a.ID == b.ID })
}

// Build returns the Decision of one request (all events share its key).
// Version and Completeness are left for the caller. It never fails: events
// missing every useful field still yield a record naming them as evidence.
func (b *Builder) Build(events []*event.Event, ctx Context) record.Decision {
	evs := Dedup(events)
	var d record.Decision
	d.SchemaVersion = record.SchemaVersion
	d.RulesHash = b.rulesHash
	var attempts []*event.Event
	var gateways, oversights, markers, approvals, accesses, tries []*event.Event
	for _, e := range evs {
		switch {
		case e.LiteLLM != nil:
			attempts = append(attempts, e)
		case e.Started != nil:
			markers = append(markers, e)
		case e.Attempt != nil:
			tries = append(tries, e)
		case e.Gateway != nil:
			gateways = append(gateways, e)
		case e.Oversight != nil && e.Oversight.Kind != event.KindSamplingControl:
			oversights = append(oversights, e)
		case e.Approval != nil:
			approvals = append(approvals, e)
		case e.Access != nil:
			accesses = append(accesses, e)
		}
	}
	slices.SortStableFunc(attempts, func(x, y *event.Event) int {
		return cmp.Or(cmp.Compare(x.LiteLLM.Start, y.LiteLLM.Start), strings.Compare(x.ID, y.ID))
	})
	// The plugin numbers a request's upstream calls in the order they
	// started: that order is the route (start times of calls a millisecond
	// apart need not be).
	slices.SortStableFunc(tries, func(x, y *event.Event) int {
		return cmp.Or(cmp.Compare(x.Attempt.N, y.Attempt.N), cmp.Compare(x.Attempt.Start, y.Attempt.Start), strings.Compare(x.ID, y.ID))
	})
	byTime := func(x, y *event.Event) int {
		return cmp.Or(cmp.Compare(x.Time(), y.Time()), strings.Compare(x.ID, y.ID))
	}
	slices.SortStableFunc(gateways, byTime)
	// Oversight and approval decisions are ordered by ingest's receive time
	// (trusted), never by the reviewer's tool's clock.
	slices.SortStableFunc(oversights, byReceipt)
	slices.SortStableFunc(approvals, byReceipt)

	if len(evs) > 0 {
		d.Request.RequestKey = evs[0].Key
	}
	d.RecordID = record.ID(d.Request.RequestKey)
	b.evidence(&d, evs)
	if len(accesses) > 0 {
		// An access event is a record of its own (its key is its id).
		b.access(&d, accesses[0])
		b.pseudonymise(&d)
		normalize(&d)
		return d
	}
	b.markers(&d, evs, markers, attempts)
	b.request(&d, attempts, gateways)
	routeTimes(&d, tries)
	b.identity(&d, attempts, gateways)
	for _, e := range approvals {
		// A gateway that held the request names its subject and tenant.
		if a := e.Approval; a.Kind == event.ApprovalRequested {
			d.Identity.Subject = first(d.Identity.Subject, a.SubjectID)
			if d.Identity.Tenant == "default" && a.Tenant != "" && d.Identity.OrgID == "" {
				d.Identity.Tenant = a.Tenant
			}
		}
	}
	served := b.routing(&d, attempts, gateways)
	b.route(&d, attempts, tries, served)
	b.markerIdentity(&d, markers, attempts)
	b.budget(&d, attempts, ctx.Alerts)
	b.guardrails(&d, attempts)
	b.policy(&d, gateways)
	b.outcome(&d, attempts, served)
	b.content(&d, attempts, served)
	b.nearMiss(&d, attempts, tries, served)
	b.risk(&d, ctx)
	// Approval is judged on the tier just computed; a violation adds its
	// near-miss reason, and the tier is computed again with it (it can only
	// rise: tier rules match on more, never on less). The approval is not
	// judged again on the new tier.
	decs := b.approval(&d, attempts, approvals, oversights)
	if b.approvalReasons(&d) {
		b.risk(&d, ctx)
	}
	var who map[string]bool // read only for an oversight event: built only when there is one
	if len(oversights) > 0 {
		who = subjects(&d, approvals)
	}
	b.oversight(&d, oversights, who, decs)
	// Last: every rule above (separation of duties compares subjects and
	// approvers, tiers match teams and tags) decided on the clear values.
	b.pseudonymise(&d)
	normalize(&d)
	return d
}

// pseudonymise replaces the configured identity fields by their pseudonyms
// (enrich.content.pseudonymise), so that no copy of the record — the
// decisions topic, ClickHouse, the archive — holds them in clear.
func (b *Builder) pseudonymise(d *record.Decision) {
	p := b.pseud
	if p == nil {
		return
	}
	id := &d.Identity
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"identity.key_hash", &id.KeyHash}, {"identity.key_alias", &id.KeyAlias}, {"identity.user_id", &id.UserID},
		{"identity.user_email", &id.UserEmail}, {"identity.end_user", &id.EndUser}, {"identity.requester_ip", &id.RequesterIP},
		{"identity.user_agent", &id.UserAgent}, {"identity.subject", &id.Subject},
		{"access.actor", &d.Access.Actor}, {"access.client", &d.Access.Client},
	} {
		*f.v = p.Field(f.name, *f.v)
	}
}

// normalize makes every absent list an empty one, so that the JSON form never
// mixes null and [] for the same field.
func normalize(d *record.Decision) {
	nonNil(&d.Identity.Roles)
	nonNil(&d.Identity.Tags)
	for i := range d.Guardrails {
		nonNil(&d.Guardrails[i].MaskedEntities)
		nonNil(&d.Guardrails[i].Categories)
	}
	for i := range d.Policy.Decisions {
		nonNil(&d.Policy.Decisions[i].DataClasses)
		nonNil(&d.Policy.Decisions[i].RuleIDs)
	}
}

func nonNil(s *[]string) {
	if *s == nil {
		*s = []string{}
	}
}

func (b *Builder) evidence(d *record.Decision, evs []*event.Event) {
	d.Evidence.Sources = make([]record.Source, 0, len(evs))
	for _, e := range evs {
		em := e.Emission()
		d.Evidence.Sources = append(d.Evidence.Sources, record.Source{
			EventID: e.ID, Source: string(e.Source), SHA256: e.SHA256, Topic: e.Topic,
			Partition: e.Partition, Offset: e.Offset, ReceivedAt: e.ReceivedAt,
			Emitter: em.Emitter, Seq: em.Seq,
		})
		if t := e.ReceivedAt; t != 0 {
			if d.Evidence.FirstReceivedAt == 0 || t < d.Evidence.FirstReceivedAt {
				d.Evidence.FirstReceivedAt = t
			}
			d.Evidence.LastReceivedAt = max(d.Evidence.LastReceivedAt, t)
		}
	}
}

func (b *Builder) request(d *record.Decision, attempts, gateways []*event.Event) {
	r := &d.Request
	for _, a := range attempts {
		l := a.LiteLLM
		r.TraceID = first(r.TraceID, l.TraceID)
		r.CallID = first(r.CallID, l.CallID)
		r.CallType = first(r.CallType, l.CallType)
		r.Stream = r.Stream || l.Stream
		if l.Start != 0 && (r.StartTime == 0 || l.Start < r.StartTime) {
			r.StartTime = l.Start
		}
		r.EndTime = max(r.EndTime, l.End)
	}
	if len(attempts) == 0 {
		// No LiteLLM event: the gateway's decision times bound the request.
		for _, g := range gateways {
			t := g.Time()
			if r.StartTime == 0 || t < r.StartTime {
				r.StartTime = t
			}
			r.EndTime = max(r.EndTime, t)
		}
	}
	if r.StartTime == 0 {
		// No event says when the request ran (a payload without times): the
		// first receive time is the best bound we have.
		r.StartTime = d.Evidence.FirstReceivedAt
	}
	for _, g := range gateways {
		r.TraceID = first(r.TraceID, g.Gateway.TraceID)
	}
	if r.EndTime < r.StartTime {
		r.EndTime = r.StartTime
	}
	r.DurationMS = int64(r.EndTime - r.StartTime)
}

func (b *Builder) identity(d *record.Decision, attempts, gateways []*event.Event) {
	id := &d.Identity
	if len(attempts) > 0 {
		l := attempts[0].LiteLLM.Identity
		*id = record.Identity{
			KeyHash: l.KeyHash, KeyAlias: l.KeyAlias, UserID: l.UserID, UserEmail: l.UserEmail,
			TeamID: l.TeamID, TeamAlias: l.TeamAlias, OrgID: l.OrgID, OrgAlias: l.OrgAlias, ProjectID: l.ProjectID,
			EndUser: l.EndUser, RequesterIP: l.RequesterIP, UserAgent: l.UserAgent, Route: l.Route,
			Tags: slices.Clone(l.Tags),
		}
	}
	for _, g := range gateways {
		gw := g.Gateway
		if id.Subject == "" && gw.SubjectID != "" {
			id.Subject, id.Roles = gw.SubjectID, slices.Clone(gw.Roles)
		}
		id.Tenant = first(id.Tenant, gw.Tenant)
	}
	id.Tenant = first(id.Tenant, id.OrgID, "default")
}

// routing fills the routing summary and returns the served attempt (the last
// success, else the last attempt), or nil.
func (b *Builder) routing(d *record.Decision, attempts, gateways []*event.Event) *event.LiteLLM {
	rt := &d.Routing
	rt.Attempts = make([]record.Attempt, 0, len(attempts))
	var served *event.LiteLLM
	prevGroup := ""
	for i, a := range attempts {
		l := a.LiteLLM
		rt.Attempts = append(rt.Attempts, record.Attempt{
			EventID: a.ID, Status: l.Status, ModelGroup: l.ModelGroup, Model: l.Model, DeploymentID: l.ModelID,
			Provider: l.Provider, APIBase: l.APIBase, ErrorCode: l.Error.Code, ErrorClass: l.Error.Class,
			ErrorMessage: b.errorText(l.Error.Message), StartTime: l.Start, EndTime: l.End, CostUSD: l.CostUSD,
			PromptTokens: l.PromptTokens, CompletionTokens: l.CompletionTokens, CacheHit: l.CacheHit,
		})
		if i == 0 {
			rt.RequestedAlias = l.ModelGroup
		} else if l.ModelGroup != "" && l.ModelGroup == prevGroup {
			rt.RetryCount++
		}
		if l.ModelGroup != "" {
			prevGroup = l.ModelGroup
		}
		if l.Status == "success" || served == nil || served.Status != "success" {
			served = l
		}
	}
	// LiteLLM 1.106 sends at most one failure payload per request, for its
	// first failed attempt: its model group is the alias the client asked
	// for. It can sort after the success (a streamed success's startTime is
	// the start of the whole request), so it is looked up, not taken first.
	for _, a := range attempts {
		if l := a.LiteLLM; l.Status == "failure" && l.ModelGroup != "" {
			rt.RequestedAlias = l.ModelGroup
			break
		}
	}
	if rt.RequestedAlias == "" {
		// A pre-call block never reached routing: model_group is "". Fall back
		// to the alias the gateway saw, then to the model the client named.
		for _, g := range gateways {
			rt.RequestedAlias = first(rt.RequestedAlias, g.Gateway.ModelAlias)
		}
		if len(attempts) > 0 {
			rt.RequestedAlias = first(rt.RequestedAlias, attempts[0].LiteLLM.Model)
		}
	}
	for _, a := range attempts {
		if g := a.LiteLLM.ModelGroup; g != "" && rt.RequestedAlias != "" && g != rt.RequestedAlias {
			rt.FallbackUsed = true
		}
	}
	rt.AttemptCount = int32(len(attempts))
	if served != nil {
		// LiteLLM's own counters (x-litellm-attempted-retries|fallbacks on
		// the success payload) see attempts that sent no payload of their own.
		if served.AttemptedFallbacks > 0 {
			rt.FallbackUsed = true
		}
		rt.RetryCount = max(rt.RetryCount, int32(min(served.AttemptedRetries, math.MaxInt32)))
		// A request refused before routing (a pre-call guardrail, an unknown
		// model, a bad key) reached no deployment: LiteLLM's "model" is then
		// the alias as sent, not a model served, so nothing is served.
		if served.Status == "success" || served.ModelGroup != "" || served.ModelID != "" || served.Provider != "" {
			rt.ServedModelGroup, rt.ServedModel, rt.DeploymentID = served.ModelGroup, served.Model, served.ModelID
			rt.Provider, rt.APIBase, rt.ProviderModel = served.Provider, served.APIBase, served.ProviderModel
		}
	}
	return served
}

func pct(spend, max *float64) *float64 {
	if spend == nil || max == nil || *max <= 0 {
		return nil
	}
	v := math.Round(100**spend / *max * 1e4) / 1e4
	return &v
}

func (b *Builder) budget(d *record.Decision, attempts []*event.Event, alerts AlertLookup) {
	bu := &d.Budget
	if len(attempts) > 0 {
		l := attempts[0].LiteLLM.Budget
		bu.Key = record.BudgetState{Spend: l.KeySpend, MaxBudget: l.KeyMax, PctUsed: pct(l.KeySpend, l.KeyMax), ResetAt: l.KeyResetAt}
		bu.User = record.BudgetState{Spend: l.UserSpend, MaxBudget: l.UserMax, PctUsed: pct(l.UserSpend, l.UserMax)}
		bu.Team = record.BudgetState{Spend: l.TeamSpend, MaxBudget: l.TeamMax, PctUsed: pct(l.TeamSpend, l.TeamMax)}
	}
	for _, s := range []*record.BudgetState{&bu.Key, &bu.User, &bu.Team, &bu.EndUser} {
		if s.PctUsed != nil && (bu.MaxPctUsed == nil || *s.PctUsed > *bu.MaxPctUsed) {
			v := *s.PctUsed
			bu.MaxPctUsed = &v
		}
	}
	bu.Alerts = []record.BudgetAlert{}
	if alerts != nil {
		id := d.Identity
		at := d.Request.EndTime
		for _, ent := range [...]struct{ typ, id string }{
			{"key", id.KeyHash}, {"user", id.UserID}, {"team", id.TeamID}, {"end_user", id.EndUser}, {"organization", id.OrgID},
		} {
			if ent.id == "" {
				continue
			}
			if a := alerts.Latest(ent.typ, ent.id, at); a != nil {
				bu.Alerts = append(bu.Alerts, *a)
			}
		}
	}
	for _, a := range attempts {
		e := a.LiteLLM.Error
		if isBudgetDenial(e) {
			bu.Denial = record.BudgetDenial{Denied: true, EntityType: e.BudgetEntityType, EntityID: e.BudgetEntityID,
				Limit: e.BudgetLimit, Spend: e.BudgetSpend}
			break
		}
	}
}

func isBudgetDenial(e event.Error) bool {
	return e.BudgetEntityType != "" || e.BudgetLimit != nil || e.Class == "BudgetExceededError" ||
		e.RateLimitType == "budget" || strings.Contains(e.Message, "ExceededBudget") || strings.Contains(e.Message, "Budget has been exceeded")
}

// HTTPStatus is the HTTP status of a failed attempt as a 3-digit string, or
// "". error_code is not always one (LiteLLM 1.106 sends the upstream body's
// code, e.g. "server_error" for an OpenAI 500); normalized_error
// ("500_PROVIDER_INTERNAL_ERROR") and then the exception class fill in.
func HTTPStatus(e event.Error) string {
	isStatus := func(s string) bool {
		return len(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
	}
	if isStatus(e.Code) {
		return e.Code
	}
	if p, _, ok := strings.Cut(e.Normalized, "_"); ok && isStatus(p) {
		return p
	}
	switch e.Class {
	case "RateLimitError":
		return "429"
	case "InternalServerError":
		return "500"
	case "ServiceUnavailableError":
		return "503"
	case "Timeout":
		return "408"
	}
	return ""
}

// MissingFailure reports whether the events lack a failure payload that
// LiteLLM says exists: a success counts attempted retries or fallbacks but no
// failure payload of the request is among the events. LiteLLM 1.106 logs a
// request's first failed attempt as its own payload; when that payload is
// missing, a batch of the generic_api logger was lost on the way (docs/litellm.md §7.1).
func MissingFailure(events []*event.Event) bool {
	counted := false
	for _, e := range events {
		l := e.LiteLLM
		if l == nil {
			continue
		}
		if l.Status == "failure" {
			return false
		}
		counted = counted || l.AttemptedRetries > 0 || l.AttemptedFallbacks > 0
	}
	return counted
}

func isProxyRateLimit(e event.Error) bool {
	return strings.HasPrefix(e.RateLimitCategory, "litellm_") && e.RateLimitType != "budget"
}

func statusRank(s string) int {
	switch s {
	case event.GuardrailIntervened:
		return 3
	case event.GuardrailFailed:
		return 2
	case event.GuardrailPassed:
		return 1
	}
	return 0
}

func (b *Builder) guardrails(d *record.Decision, attempts []*event.Event) {
	type keyed struct {
		g   record.Guardrail
		key string
	}
	var all []keyed
	worst := event.GuardrailNotRun
	for _, a := range attempts {
		for _, g := range a.LiteLLM.Guardrails {
			j, _ := json.Marshal(g)
			all = append(all, keyed{g, string(j)})
		}
		if s := event.GuardrailStatus(a.LiteLLM.GuardrailStatus); statusRank(s) > statusRank(worst) {
			worst = s
		}
	}
	slices.SortFunc(all, func(x, y keyed) int {
		return cmp.Or(strings.Compare(x.g.Name, y.g.Name), strings.Compare(x.g.Mode, y.g.Mode), strings.Compare(x.key, y.key))
	})
	all = slices.CompactFunc(all, func(x, y keyed) bool { return x.key == y.key })
	d.Guardrails = make([]record.Guardrail, 0, len(all))
	for _, k := range all {
		d.Guardrails = append(d.Guardrails, k.g)
		if statusRank(k.g.Status) > statusRank(worst) {
			worst = k.g.Status
		}
	}
	if len(all) > 0 {
		// The list is the detail; status_fields only fills in when it is empty.
		worst = event.GuardrailNotRun
		for _, g := range d.Guardrails {
			if statusRank(g.Status) > statusRank(worst) {
				worst = g.Status
			}
		}
	}
	d.Outcome.GuardrailStatus = worst
}

var decisionRank = map[string]int{"allow": 1, "modify": 2, "review": 3, "block": 4}

func (b *Builder) policy(d *record.Decision, gateways []*event.Event) {
	p := &d.Policy
	p.Decisions = make([]record.PolicyDecision, 0, len(gateways))
	var classes []string
	for _, e := range gateways {
		g := e.Gateway
		p.Decisions = append(p.Decisions, record.PolicyDecision{
			EventID: e.ID, Gateway: g.Gateway, PolicyID: g.PolicyID, Version: g.Version, Decision: g.Decision,
			Reason: g.Reason, DataClasses: slices.Clone(g.DataClasses), At: g.OccurredAt, Stage: g.Stage,
			RuleIDs: slices.Clone(g.RuleIDs), RiskScore: g.RiskScore,
		})
		classes = append(classes, g.DataClasses...)
		if decisionRank[g.Decision] > decisionRank[p.Decision] {
			p.Decision, p.PolicyID, p.Version = g.Decision, g.PolicyID, g.Version
		}
	}
	slices.Sort(classes)
	p.DataClasses = slices.Compact(classes)
	if p.DataClasses == nil {
		p.DataClasses = []string{}
	}
}

func (b *Builder) outcome(d *record.Decision, attempts []*event.Event, served *event.LiteLLM) {
	o := &d.Outcome
	for _, a := range attempts {
		l := a.LiteLLM
		o.CostUSD += l.CostUSD
		o.PromptTokens += l.PromptTokens
		o.CompletionTokens += l.CompletionTokens
		o.SavedCostUSD += l.SavedCostUSD
	}
	o.CostUSD = round(o.CostUSD)
	o.SavedCostUSD = round(o.SavedCostUSD)
	o.TotalTokens = o.PromptTokens + o.CompletionTokens
	switch {
	case served == nil:
		o.Status = record.OutcomePending
		if d.Policy.Decision == "block" {
			o.Status, o.BlockedBy = record.OutcomeBlocked, "policy"
		}
		return
	case served.Status == "success":
		o.Status = record.OutcomeSuccess
		o.CacheHit = served.CacheHit
		return
	}
	o.Status = record.OutcomeFailure
	o.ErrorCode, o.ErrorClass, o.ErrorMessage = served.Error.Code, served.Error.Class, b.errorText(served.Error.Message)
	switch {
	case d.Budget.Denial.Denied:
		o.Status, o.BlockedBy = record.OutcomeBlocked, "budget"
	case event.GuardrailStatus(served.GuardrailStatus) == event.GuardrailIntervened || guardrailBlocked(d.Guardrails):
		o.Status, o.BlockedBy = record.OutcomeBlocked, "guardrail"
	case d.Policy.Decision == "block":
		o.Status, o.BlockedBy = record.OutcomeBlocked, "policy"
	case isProxyRateLimit(served.Error):
		o.Status, o.BlockedBy = record.OutcomeBlocked, "rate_limit"
	}
}

// guardrailBlocked: a guardrail that intervened before or during the call
// (a post-call intervention may mask the response without failing it).
func guardrailBlocked(gs []record.Guardrail) bool {
	for _, g := range gs {
		if g.Status == event.GuardrailIntervened && !strings.Contains(g.Mode, "post_call") && !strings.Contains(g.Mode, "logging_only") {
			return true
		}
	}
	return false
}

// round keeps sums of costs free of float noise (0.1+0.2) and finite.
func round(v float64) float64 {
	r := math.Round(v*1e9) / 1e9
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return 0
	}
	return r
}

// errorText is an error message as the record keeps it. Providers and
// guardrails quote the request in their errors (a content filter names the
// word it matched, a provider echoes a bad parameter), so every policy but
// full masks personal data and secrets in it, as redacted does for content.
func (b *Builder) errorText(s string) string {
	if b.rules.Content.Policy == CaptureFull {
		return s
	}
	return b.red.String(s)
}

func (b *Builder) content(d *record.Decision, attempts []*event.Event, served *event.LiteLLM) {
	c := &d.Content
	c.CapturePolicy = b.rules.Content.Policy
	var msgs, resp []byte
	for _, a := range attempts {
		if a.LiteLLM.MessagesSHA256 != "" {
			c.MessagesSHA256, msgs = a.LiteLLM.MessagesSHA256, a.LiteLLM.Messages
			break
		}
	}
	if served != nil {
		c.ResponseSHA256, resp = served.ResponseSHA256, served.Response
	}
	keep := func(b2 []byte) string {
		switch b.rules.Content.Policy {
		case CaptureRedacted:
			b2 = b.red.JSON(b2)
		case CaptureFull:
		default:
			return ""
		}
		if m := b.rules.Content.MaxBytes; m > 0 && len(b2) > m {
			c.Truncated = true
			b2 = b2[:m]
			for len(b2) > 0 && b2[len(b2)-1]&0xC0 == 0x80 { // do not split a UTF-8 sequence
				b2 = b2[:len(b2)-1]
			}
			if len(b2) > 0 && b2[len(b2)-1] >= 0xC0 {
				b2 = b2[:len(b2)-1]
			}
		}
		return string(b2)
	}
	c.Messages, c.Response = keep(msgs), keep(resp)
}

func (b *Builder) nearMiss(d *record.Decision, attempts, tries []*event.Event, served *event.LiteLLM) {
	var rs []string
	add := func(r string, cond bool) {
		if cond && b.reasons[r] {
			rs = append(rs, r)
		}
	}
	nm := b.rules.NearMiss
	var intervened, failed, riskNear bool
	for _, g := range d.Guardrails {
		intervened = intervened || g.Status == event.GuardrailIntervened
		failed = failed || g.Status == event.GuardrailFailed
		if g.RiskScore != nil && g.Status != event.GuardrailIntervened && *g.RiskScore/10 >= nm.RiskScore {
			riskNear = true
		}
	}
	intervened = intervened || d.Outcome.GuardrailStatus == event.GuardrailIntervened
	failed = failed || d.Outcome.GuardrailStatus == event.GuardrailFailed
	for _, p := range d.Policy.Decisions {
		if p.RiskScore != nil && p.Decision != "block" && *p.RiskScore >= nm.RiskScore {
			riskNear = true
		}
	}
	add(ReasonGuardrailIntervened, intervened)
	add(ReasonGuardrailFailed, failed)
	add(ReasonPolicyBlock, d.Policy.Decision == "block")
	add(ReasonPolicyReview, d.Policy.Decision == "review")
	add(ReasonBudgetOverThreshold, d.Budget.MaxPctUsed != nil && *d.Budget.MaxPctUsed >= nm.BudgetPct)
	add(ReasonBudgetDenied, d.Budget.Denial.Denied)
	var rateLimited bool
	for _, a := range attempts {
		rateLimited = rateLimited || isProxyRateLimit(a.LiteLLM.Error)
	}
	after := fallbackCauses(d, attempts, len(tries) > 0, served)
	add(ReasonRateLimited, rateLimited || d.Outcome.BlockedBy == "rate_limit")
	add(ReasonFallbackAfter429, after.rateLimit)
	add(ReasonFallbackAfter5xx, after.serverError)
	add(ReasonFallbackAfterTimeout, after.timeout)
	add(ReasonAllAttemptsFailed, allAttemptsFailed(d))
	add(ReasonRetries, int(d.Routing.RetryCount) >= nm.MinRetries)
	add(ReasonRiskScoreNear, riskNear)
	slices.Sort(rs)
	if rs == nil {
		rs = []string{}
	}
	d.NearMiss = record.NearMiss{Flagged: len(rs) > 0, Reasons: rs}
}

func (b *Builder) risk(d *record.Decision, ctx Context) {
	d.Risk.Tier, d.Risk.Reasons = b.rules.Risk.Default, []string{}
	for _, t := range b.rules.Risk.Tiers {
		var matched []string
		for _, c := range t.Any {
			if holds(d, c) {
				matched = append(matched, c)
			}
		}
		if len(matched) > 0 {
			d.Risk.Tier, d.Risk.Reasons = t.Tier, matched
			break
		}
	}
	b.sample(d, ctx)
	if p := ctx.Prior; p != nil && p.Sampled && !d.Risk.Sampled {
		// Sticky: an amendment never takes a record out of a review queue.
		d.Risk.Sampled, d.Risk.SampleReason, d.Risk.SampleRate = true, p.Reason, p.Rate
	}
}

// sample decides sampling from the record id and the tier's rate; see
// SamplingConfig.
func (b *Builder) sample(d *record.Decision, ctx Context) {
	tier := d.Risk.Tier
	if b.always[tier] {
		d.Risk.Sampled, d.Risk.SampleReason, d.Risk.SampleRate = true, "always", 1
		return
	}
	u := SampleUnit(d.RecordID)
	base := b.rules.Sampling.Rates[tier]
	d.Risk.SampleRate = base
	if u < base {
		d.Risk.Sampled, d.Risk.SampleReason = true, "baseline"
	}
	if ctx.Burst != nil && ctx.Burst(tier, d.Request.StartTime) {
		br := max(base, b.rules.Sampling.BurstRates[tier])
		d.Risk.SampleRate = br
		if !d.Risk.Sampled && u < br {
			d.Risk.Sampled, d.Risk.SampleReason = true, "burst"
		}
	}
}

// SampleUnit maps a record id to [0, 1): the first 64 bits of
// SHA-256("auditline.sample.v1" ‖ 0x00 ‖ id) divided by 2^64.
func SampleUnit(recordID string) float64 {
	var buf [64]byte // on the stack for record ids (32 bytes)
	h := sha256.Sum256(append(append(buf[:0], "auditline.sample.v1\x00"...), recordID...))
	return float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53)
}

func holds(d *record.Decision, c string) bool {
	switch c {
	case "blocked":
		return d.Outcome.Status == record.OutcomeBlocked
	case "failure":
		return d.Outcome.Status == record.OutcomeFailure
	case "success":
		return d.Outcome.Status == record.OutcomeSuccess
	case "near_miss":
		return d.NearMiss.Flagged
	}
	kind, arg, _ := strings.Cut(c, ":")
	switch kind {
	case "near_miss":
		return slices.Contains(d.NearMiss.Reasons, arg)
	case "blocked_by":
		return d.Outcome.BlockedBy == arg
	case "policy":
		for _, p := range d.Policy.Decisions {
			if p.Decision == arg {
				return true
			}
		}
	case "guardrail":
		for _, g := range d.Guardrails {
			if g.Status == arg {
				return true
			}
		}
		return d.Outcome.GuardrailStatus == arg
	case "data_class":
		return slices.Contains(d.Policy.DataClasses, arg)
	case "team":
		return d.Identity.TeamID == arg || d.Identity.TeamAlias == arg
	case "alias":
		return d.Routing.RequestedAlias == arg
	case "provider":
		return d.Routing.Provider == arg
	case "tag":
		return slices.Contains(d.Identity.Tags, arg)
	}
	return false
}

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
