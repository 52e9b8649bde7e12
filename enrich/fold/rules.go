package fold

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/auditline/auditline/privacy/pseudonym"
)

// Capture policies for request and response content.
const (
	CaptureFull     = "full"     // kept as received (up to max_bytes)
	CaptureRedacted = "redacted" // kept with personal data and secrets masked (privacy/redact)
	CaptureHash     = "hash"     // only the SHA-256 (the default)
	CaptureNone     = "none"     // only the SHA-256: there is no way to keep less and still prove what was sent
)

// Near-miss reasons (docs/decision-record.md explains each).
const (
	ReasonGuardrailIntervened  = "guardrail_intervened"
	ReasonGuardrailFailed      = "guardrail_failed"
	ReasonPolicyBlock          = "policy_block"
	ReasonPolicyReview         = "policy_review"
	ReasonBudgetOverThreshold  = "budget_over_threshold"
	ReasonBudgetDenied         = "budget_denied"
	ReasonRateLimited          = "rate_limited"
	ReasonFallbackAfter429     = "fallback_after_429"
	ReasonFallbackAfter5xx     = "fallback_after_5xx"
	ReasonFallbackAfterTimeout = "fallback_after_timeout"
	// ReasonAllAttemptsFailed: the request reached the router and every
	// upstream call it made failed (issue 21).
	ReasonAllAttemptsFailed = "all_attempts_failed"
	ReasonRetries           = "retries"
	ReasonRiskScoreNear     = "risk_score_near_threshold"
	// ReasonExecutedWithoutApproval: the request needed approval before it
	// executed (enrich.approval) and ingest received the evidence of its
	// execution before the needed approvals.
	ReasonExecutedWithoutApproval = "executed_without_approval"
	// ReasonExecutedAfterRejection: it executed although an approver had
	// rejected it.
	ReasonExecutedAfterRejection = "executed_after_rejection"
)

// AllReasons lists every near-miss reason, in documentation order.
var allReasons = []string{
	ReasonGuardrailIntervened, ReasonGuardrailFailed, ReasonPolicyBlock, ReasonPolicyReview,
	ReasonBudgetOverThreshold, ReasonBudgetDenied, ReasonRateLimited, ReasonFallbackAfter429,
	ReasonFallbackAfter5xx, ReasonFallbackAfterTimeout, ReasonAllAttemptsFailed, ReasonRetries, ReasonRiskScoreNear,
	ReasonExecutedWithoutApproval, ReasonExecutedAfterRejection,
}

// Rules is the configuration of every derived field: content capture,
// near-miss, risk tier and sampling. It is part of the enrich YAML section.
type Rules struct {
	Content  ContentConfig  `yaml:"content"`
	NearMiss NearMissConfig `yaml:"near_miss"`
	Risk     RiskConfig     `yaml:"risk"`
	Sampling SamplingConfig `yaml:"sampling"`
	Approval ApprovalConfig `yaml:"approval"`
}

// ContentConfig is the capture policy.
type ContentConfig struct {
	// Policy is full, redacted, hash or none (default hash). The SHA-256 of
	// messages and response is recorded under every policy.
	Policy string `yaml:"policy"`
	// MaxBytes cuts kept content (full, redacted) to this many bytes and marks
	// the record content.truncated. Default 32768. Kafka's default message
	// limit is 1 MiB: keep the whole Decision well below it.
	MaxBytes int `yaml:"max_bytes"`
	// Pseudonymise replaces identity fields by keyed hashes (HMAC-SHA-256)
	// in every copy of the record (privacy/pseudonym, docs/privacy.md). Its
	// fields and key id are part of the rules (and of their hash); its
	// secret is not.
	Pseudonymise pseudonym.Config `yaml:"pseudonymise,omitempty"`
}

// NearMissConfig says which reasons flag a near miss, and their thresholds.
type NearMissConfig struct {
	// Reasons enabled (default: all of them).
	Reasons []string `yaml:"reasons"`
	// BudgetPct: budget_over_threshold when any entity's spend reaches this
	// percentage of its max budget (default 80).
	BudgetPct float64 `yaml:"budget_pct"`
	// MinRetries: retries when at least this many attempts repeated their
	// model group (default 1).
	MinRetries int `yaml:"min_retries"`
	// RiskScore: risk_score_near_threshold when a guardrail's risk_score
	// (LiteLLM's 0–10 scale, divided by 10) or a gateway's risk_score (0–1)
	// reaches this value without the guardrail or policy intervening (default 0.7).
	RiskScore float64 `yaml:"risk_score"`
}

// RiskConfig assigns a tier: the first tier any of whose conditions holds.
type RiskConfig struct {
	Tiers []TierRule `yaml:"tiers"`
	// Default is the tier when no rule matches (default "low").
	Default string `yaml:"default"`
}

// TierRule is one tier and its conditions. A condition is one of:
//
//	blocked | failure | success | near_miss
//	near_miss:<reason>     a near-miss reason is present
//	blocked_by:<what>      guardrail, policy, budget, rate_limit
//	policy:<decision>      a gateway decided allow, block, review or modify
//	guardrail:<status>     a guardrail ended passed, intervened, failed, not_run
//	data_class:<label>     a gateway labelled the data (pii, phi, pci, …)
//	team:<team id or alias> | alias:<requested alias> | provider:<name> | tag:<request tag>
type TierRule struct {
	Tier string   `yaml:"tier"`
	Any  []string `yaml:"any"`
}

// SamplingConfig decides which records are sampled for human review. The
// decision is a pure function of the record id (u = first 64 bits of
// SHA-256("auditline.sample.v1" ‖ 0x00 ‖ record id) / 2^64; sampled when
// u < rate), so every replay samples the same records, and a record sampled
// at a low rate stays sampled at any higher rate.
type SamplingConfig struct {
	// Rates is the baseline rate per tier (0..1); tiers not listed are 0.
	Rates TierRates `yaml:"rates"`
	// BurstRates replace Rates while burst mode is on.
	BurstRates TierRates `yaml:"burst_rates"`
	// Always lists tiers whose every record is sampled.
	Always []string `yaml:"always"`
	// Auto switches burst mode on by itself.
	Auto AutoBurstConfig `yaml:"auto_burst"`
}

// AutoBurstConfig turns burst mode on when near misses and errors spike.
type AutoBurstConfig struct {
	// Enabled (default true).
	Enabled bool `yaml:"enabled"`
	// Window of stream time over which the share is measured (default 5m).
	Window time.Duration `yaml:"window"`
	// Share of records in the window that are near misses or failures that
	// switches burst on (default 0.2).
	Share float64 `yaml:"share"`
	// MinRecords in the window before the share counts (default 50).
	MinRecords int `yaml:"min_records"`
	// Hold keeps burst on for this long after the share last exceeded the
	// threshold (default 10m).
	Hold time.Duration `yaml:"hold"`
}

// TierRates maps a tier to a rate. A YAML value replaces the whole map (the
// defaults name tiers a configuration may not have).
type TierRates map[string]float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *TierRates) UnmarshalYAML(n *yaml.Node) error {
	m := map[string]float64{}
	if err := n.Decode(&m); err != nil {
		return err
	}
	*r = m
	return nil
}

// NewDefaultRules returns the documented defaults.
func NewDefaultRules() Rules {
	return Rules{
		Content: ContentConfig{Policy: CaptureHash, MaxBytes: 32 << 10},
		NearMiss: NearMissConfig{
			Reasons: slices.Clone(allReasons), BudgetPct: 80, MinRetries: 1, RiskScore: 0.7,
		},
		Risk: RiskConfig{
			Tiers: []TierRule{
				{Tier: "high", Any: []string{"blocked", "policy:block", "policy:review", "guardrail:intervened",
					"near_miss:budget_denied", "data_class:phi", "data_class:pci"}},
				{Tier: "medium", Any: []string{"near_miss", "failure", "data_class:pii", "data_class:confidential"}},
			},
			Default: "low",
		},
		Sampling: SamplingConfig{
			Rates:      TierRates{"high": 0.25, "medium": 0.05, "low": 0.01},
			BurstRates: TierRates{"high": 1, "medium": 0.25, "low": 0.05},
			Auto: AutoBurstConfig{Enabled: true, Window: 5 * time.Minute, Share: 0.2, MinRecords: 50,
				Hold: 10 * time.Minute},
		},
		Approval: NewDefaultApprovalConfig(),
	}
}

var conditionKinds = map[string]bool{
	"near_miss": true, "blocked_by": true, "policy": true, "guardrail": true, "data_class": true,
	"team": true, "alias": true, "provider": true, "tag": true,
}

// Validate reports every problem, each prefixed with its YAML key under prefix
// (e.g. "enrich.").
func (r *Rules) Validate(prefix string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(prefix+format, args...)) }
	switch r.Content.Policy {
	case CaptureFull, CaptureRedacted, CaptureHash, CaptureNone:
	default:
		add("content.policy: %q, want full, redacted, hash or none", r.Content.Policy)
	}
	if err := r.Content.Pseudonymise.Validate(prefix + "content.pseudonymise."); err != nil {
		errs = append(errs, err)
	}
	if r.Content.MaxBytes < 0 {
		add("content.max_bytes: %d, want >= 0", r.Content.MaxBytes)
	}
	for _, re := range r.NearMiss.Reasons {
		if !slices.Contains(allReasons, re) {
			add("near_miss.reasons: unknown reason %q (known: %s)", re, strings.Join(allReasons, ", "))
		}
	}
	if r.NearMiss.BudgetPct <= 0 {
		add("near_miss.budget_pct: %g, want > 0", r.NearMiss.BudgetPct)
	}
	if r.NearMiss.MinRetries < 1 {
		add("near_miss.min_retries: %d, want >= 1", r.NearMiss.MinRetries)
	}
	if r.NearMiss.RiskScore <= 0 || r.NearMiss.RiskScore > 1 {
		add("near_miss.risk_score: %g, want in (0, 1]", r.NearMiss.RiskScore)
	}
	tiers := map[string]bool{}
	if r.Risk.Default == "" {
		add("risk.default: must name a tier")
	}
	tiers[r.Risk.Default] = true
	for i, t := range r.Risk.Tiers {
		if t.Tier == "" {
			add("risk.tiers[%d].tier: must not be empty", i)
		}
		tiers[t.Tier] = true
		if len(t.Any) == 0 {
			add("risk.tiers[%d].any: at least one condition", i)
		}
		for _, c := range t.Any {
			if err := checkCondition(c); err != nil {
				add("risk.tiers[%d].any: %v", i, err)
			}
		}
	}
	for _, nm := range []struct {
		name string
		m    TierRates
	}{{"rates", r.Sampling.Rates}, {"burst_rates", r.Sampling.BurstRates}} {
		name, m := nm.name, nm.m
		for _, tier := range slices.Sorted(maps.Keys(m)) {
			rate := m[tier]
			if rate < 0 || rate > 1 {
				add("sampling.%s.%s: %g, want in [0, 1]", name, tier, rate)
			}
			if !tiers[tier] {
				add("sampling.%s.%s: no such tier in risk.tiers or risk.default", name, tier)
			}
		}
	}
	for _, t := range r.Sampling.Always {
		if !tiers[t] {
			add("sampling.always: %q is no tier in risk.tiers or risk.default", t)
		}
	}
	for key, ts := range map[string][]string{"tiers": r.Approval.Tiers, "four_eyes_tiers": r.Approval.FourEyesTiers} {
		for _, t := range ts {
			if !tiers[t] {
				add("approval.%s: %q is no tier in risk.tiers or risk.default", key, t)
			}
		}
	}
	if a := r.Sampling.Auto; a.Enabled {
		if a.Window <= 0 {
			add("sampling.auto_burst.window: %s, want > 0", a.Window)
		}
		if a.Share <= 0 || a.Share > 1 {
			add("sampling.auto_burst.share: %g, want in (0, 1]", a.Share)
		}
		if a.MinRecords < 1 {
			add("sampling.auto_burst.min_records: %d, want >= 1", a.MinRecords)
		}
		if a.Hold < 0 {
			add("sampling.auto_burst.hold: %s, want >= 0", a.Hold)
		}
	}
	return errors.Join(errs...)
}

func checkCondition(c string) error {
	switch c {
	case "blocked", "failure", "success", "near_miss":
		return nil
	}
	kind, arg, ok := strings.Cut(c, ":")
	if !ok || arg == "" || !conditionKinds[kind] {
		return fmt.Errorf("unknown condition %q", c)
	}
	if kind == "near_miss" && !slices.Contains(allReasons, arg) {
		return fmt.Errorf("unknown near-miss reason in %q", c)
	}
	return nil
}
