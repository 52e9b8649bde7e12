// Package archivetest builds realistic decision records for the archive's
// tests and benchmarks. Records are a pure function of their index, so a test
// can recompute what it produced.
package archivetest

import (
	"encoding/json"
	"fmt"

	"github.com/auditline/auditline/enrich/record"
)

var teams = []string{"team-search", "team-support", "team-legal", "team-research"}

// Decision returns record i: version 1 of request "req-<i>", except that every
// tenth index is a second version (Amended) of request i-1 — so record ids
// repeat with several versions, as they do in production.
func Decision(i int) record.Decision {
	key := fmt.Sprintf("req-%08d", i)
	version := uint32(1)
	completeness := record.Complete
	if i%10 == 9 {
		key = fmt.Sprintf("req-%08d", i-1)
		version = 2
		completeness = record.Amended
	}
	start := record.Time(1763807445118 + int64(i)*37)
	spend := 12.5 + float64(i%100)
	maxBudget := 100.0
	pct := 100 * spend / maxBudget
	risk := 0.1 + float64(i%9)/10
	team := teams[i%len(teams)]
	d := record.Decision{
		SchemaVersion: record.SchemaVersion,
		RecordID:      record.ID(key),
		Version:       version,
		Completeness:  completeness,
		Request: record.Request{
			RequestKey: key, TraceID: "trace-" + key, CallID: key, CallType: "acompletion",
			StartTime: start, EndTime: start + 812, DurationMS: 812,
		},
		Identity: record.Identity{
			KeyHash: fmt.Sprintf("%064x", i%50), KeyAlias: "svc-" + team, UserID: fmt.Sprintf("user-%d", i%200),
			UserEmail: fmt.Sprintf("user%d@example.com", i%200), TeamID: team, TeamAlias: team,
			OrgID: "org-1", Tenant: "acme", RequesterIP: "10.0.0.1", UserAgent: "litellm/1.80",
			Route: "/chat/completions", Roles: []string{"engineer"}, Tags: []string{"prod", team},
		},
		Routing: record.Routing{
			RequestedAlias: "gpt-4o", ServedModelGroup: "gpt-4o", ServedModel: "azure/gpt-4o",
			Provider: "azure", APIBase: "https://example.openai.azure.com", AttemptCount: 1,
			Attempts: []record.Attempt{{
				EventID: key + ":success", Status: "success", ModelGroup: "gpt-4o", Model: "azure/gpt-4o",
				Provider: "azure", StartTime: start, EndTime: start + 812, CostUSD: 0.0042,
				PromptTokens: 512, CompletionTokens: 128,
			}},
		},
		Budget: record.Budget{
			Team:       record.BudgetState{Spend: &spend, MaxBudget: &maxBudget, PctUsed: &pct, ResetAt: "2025-12-01T00:00:00Z"},
			MaxPctUsed: &pct,
		},
		Guardrails: []record.Guardrail{{
			Name: "presidio-pii", Provider: "presidio", Mode: "pre_call", Status: "passed", RawStatus: "success",
			MaskedEntityCount: int64(i % 3), MaskedEntities: []string{"EMAIL_ADDRESS=1"}, RiskScore: &risk,
		}},
		Outcome: record.Outcome{
			Status: record.OutcomeSuccess, GuardrailStatus: "passed", CostUSD: 0.0042,
			PromptTokens: 512, CompletionTokens: 128, TotalTokens: 640,
		},
		Content: record.Content{
			CapturePolicy:  "hash",
			MessagesSHA256: fmt.Sprintf("%064x", i),
			ResponseSHA256: fmt.Sprintf("%064x", i+1),
		},
		NearMiss: record.NearMiss{Flagged: pct >= 80, Reasons: nearMiss(pct)},
		Risk:     record.Risk{Tier: "limited", SampleRate: 0.05},
		Evidence: record.Evidence{
			Sources: []record.Source{{
				EventID: key + ":success", Source: "litellm", SHA256: fmt.Sprintf("%064x", i+2),
				Topic: "auditline.raw.litellm", Partition: int32(i % 4), Offset: int64(i), ReceivedAt: start + 900,
			}},
			FirstReceivedAt: start + 900, LastReceivedAt: start + 900,
		},
	}
	return d
}

func nearMiss(pct float64) []string {
	if pct >= 80 {
		return []string{"budget_over_threshold"}
	}
	return nil
}

// Value returns the JSON of Decision(i) as enrich publishes it: its RFC
// 8785 canonical bytes.
func Value(i int) []byte {
	d := Decision(i)
	b, _ := d.Canonical() // finite numbers only: cannot fail
	return b
}

// LegacyValue returns the JSON of Decision(i) as enrich published it before
// issue 17 (encoding/json, fields in declaration order): the same record, not
// in canonical form.
func LegacyValue(i int) []byte {
	d := Decision(i)
	b, _ := json.Marshal(&d) // a static type of strings, numbers and slices: cannot fail
	return b
}

// Team returns the team id of record i.
func Team(i int) string { return teams[i%len(teams)] }
