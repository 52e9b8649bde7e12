package store

import (
	"fmt"
	"math/rand/v2"

	"github.com/auditline/auditline/enrich/record"
)

// genEpoch is the start of the synthetic traffic: 2025-11-01T00:00:00Z.
const genEpoch = record.Time(1761955200000)

// genDecision is a realistic decision: 5 tenants, 20 teams, 8 aliases over 4
// providers, 1–3 attempts (fallbacks after 429s, retries), 0–2 guardrails,
// budgets, ~6% near misses, ~3% sampled, spread over 30 days. It is a pure
// function of i, like enrich's output of one request.
func genDecision(i int) record.Decision {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	key := fmt.Sprintf("call-%08d", i)
	start := genEpoch + record.Time(int64(i)*2_592_000_000/1_000_000+int64(r.IntN(1000)))
	providers := []string{"openai", "azure", "anthropic", "bedrock"}
	aliases := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet", "claude-haiku", "o3", "embed-small", "llama-70b", "mistral-large"}
	alias := aliases[r.IntN(len(aliases))]
	team := r.IntN(20)
	d := record.Decision{
		SchemaVersion: record.SchemaVersion,
		RecordID:      record.ID(key),
		Version:       1,
		Completeness:  record.Complete,
	}
	d.Request = record.Request{RequestKey: key, TraceID: "trace-" + key, CallID: key, CallType: "acompletion",
		Stream: r.IntN(3) == 0, StartTime: start, DurationMS: int64(200 + r.IntN(5000))}
	d.Request.EndTime = start + record.Time(d.Request.DurationMS)
	d.Identity = record.Identity{
		KeyHash: fmt.Sprintf("%064x", r.IntN(200)), KeyAlias: fmt.Sprintf("key-%d", r.IntN(200)),
		UserID: fmt.Sprintf("user-%d", r.IntN(500)), UserEmail: fmt.Sprintf("user%d@example.com", r.IntN(500)),
		TeamID: fmt.Sprintf("team-%02d", team), TeamAlias: fmt.Sprintf("Team %02d", team),
		OrgID: fmt.Sprintf("org-%d", team%5), Tenant: fmt.Sprintf("tenant-%d", team%5),
		RequesterIP: "10.0.0.1", UserAgent: "OpenAI/Python 1.51.0", Route: "/chat/completions",
		Roles: []string{"engineer"}, Tags: []string{"prod"},
	}
	n := 1
	if r.IntN(10) == 0 {
		n += 1 + r.IntN(2)
	}
	at := start
	for a := range n {
		p := providers[(a+r.IntN(2))%len(providers)]
		att := record.Attempt{EventID: fmt.Sprintf("%s/%d", key, a), Status: "success", ModelGroup: alias, Model: alias + "-2024",
			DeploymentID: "dep-" + p, Provider: p, APIBase: "https://" + p + ".example.com", StartTime: at}
		if a < n-1 {
			att.Status, att.ErrorCode, att.ErrorClass = "failure", "429", "RateLimitError"
			if r.IntN(3) == 0 {
				att.ErrorCode, att.ErrorClass = "500", "InternalServerError"
			}
			att.ErrorMessage = "provider said no"
		} else {
			att.CostUSD = float64(r.IntN(10000)) / 1e5
			att.PromptTokens, att.CompletionTokens = int64(r.IntN(4000)), int64(r.IntN(1000))
		}
		at += record.Time(100 + r.IntN(2000))
		att.EndTime = at
		d.Routing.Attempts = append(d.Routing.Attempts, att)
	}
	last := d.Routing.Attempts[n-1]
	d.Routing.RequestedAlias, d.Routing.ServedModelGroup, d.Routing.ServedModel = alias, last.ModelGroup, last.Model
	d.Routing.Provider, d.Routing.DeploymentID, d.Routing.APIBase = last.Provider, last.DeploymentID, last.APIBase
	d.Routing.AttemptCount = int32(n)
	d.Routing.FallbackUsed = n > 1 && r.IntN(2) == 0
	if n > 1 && !d.Routing.FallbackUsed {
		d.Routing.RetryCount = int32(n - 1)
	}
	spend, limit := float64(r.IntN(1000)), 1000.0
	pct := 100 * spend / limit
	d.Budget.Key = record.BudgetState{Spend: &spend, MaxBudget: &limit, PctUsed: &pct, ResetAt: "2025-12-01T00:00:00Z"}
	tspend, tlimit := float64(r.IntN(5000)), 5000.0
	tpct := 100 * tspend / tlimit
	d.Budget.Team = record.BudgetState{Spend: &tspend, MaxBudget: &tlimit, PctUsed: &tpct}
	d.Budget.MaxPctUsed = &pct
	if tpct > pct {
		d.Budget.MaxPctUsed = &tpct
	}
	status := "passed"
	for g := range r.IntN(3) {
		gr := record.Guardrail{Name: []string{"presidio-pii", "lakera-prompt-injection"}[g], Provider: []string{"presidio", "lakera"}[g],
			Mode: "pre_call", Status: "passed", RawStatus: "success", Action: "none"}
		if r.IntN(25) == 0 {
			gr.Status, gr.Action, gr.MaskedEntityCount = "intervened", "mask", 2
			gr.MaskedEntities = []string{"EMAIL_ADDRESS=1", "PHONE_NUMBER=1"}
			status = "intervened"
		}
		score := float64(r.IntN(100)) / 100
		gr.RiskScore = &score
		d.Guardrails = append(d.Guardrails, gr)
	}
	d.Outcome = record.Outcome{Status: record.OutcomeSuccess, GuardrailStatus: status, CostUSD: last.CostUSD,
		PromptTokens: last.PromptTokens, CompletionTokens: last.CompletionTokens, TotalTokens: last.PromptTokens + last.CompletionTokens}
	if r.IntN(50) == 0 {
		d.Outcome.Status, d.Outcome.BlockedBy = record.OutcomeBlocked, "guardrail"
	}
	d.Content = record.Content{CapturePolicy: "hash", MessagesSHA256: fmt.Sprintf("%064x", i), ResponseSHA256: fmt.Sprintf("%064x", i+1)}
	var reasons []string
	if status == "intervened" {
		reasons = append(reasons, "guardrail_intervened")
	}
	if *d.Budget.MaxPctUsed >= 90 {
		reasons = append(reasons, "budget_over_threshold")
	}
	if n > 1 && d.Routing.Attempts[0].ErrorCode == "429" && d.Routing.FallbackUsed {
		reasons = append(reasons, "fallback_after_429")
	}
	if d.Outcome.Status == record.OutcomeBlocked {
		reasons = append(reasons, "blocked")
	}
	d.NearMiss = record.NearMiss{Flagged: len(reasons) > 0, Reasons: reasons}
	d.Risk = record.Risk{Tier: []string{"low", "low", "low", "medium", "high"}[r.IntN(5)], Reasons: []string{"default"}, SampleRate: 0.03}
	if r.IntN(33) == 0 || d.Outcome.Status == record.OutcomeBlocked {
		d.Risk.Sampled, d.Risk.SampleReason = true, "baseline"
		if r.IntN(2) == 0 {
			d.Risk.ReviewStatus = "approve"
			d.Oversight = []record.Oversight{{EventID: "ov-" + key, Kind: "review", Outcome: "approve", Reviewer: "alice", Role: "reviewer", At: d.Request.EndTime + 60_000}}
		}
	}
	d.Evidence.Sources = []record.Source{{EventID: key + "/success", Source: "litellm", SHA256: fmt.Sprintf("%064x", i+2),
		Topic: "auditline.raw.litellm", Partition: int32(i % 4), Offset: int64(i / 4), ReceivedAt: d.Request.EndTime + 5}}
	d.Evidence.FirstReceivedAt, d.Evidence.LastReceivedAt = d.Request.EndTime+5, d.Request.EndTime+5
	// The LiteLLM plugin (issue 14): two emitters, each record one sequence
	// number after the emitter's gateway_config (1), so a sample of records
	// leaves gaps. No draw from r: the other fields stay as they were.
	d.Emitter = record.Emitter{ID: fmt.Sprintf("proxy-w%d", i%2), ConfigHash: fmt.Sprintf("sha256:%064x", 7), ConfigSeq: 1}
	d.Evidence.Sources[0].Emitter, d.Evidence.Sources[0].Seq = d.Emitter.ID, int64(i/2+2)
	return d
}
