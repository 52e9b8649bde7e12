// Package seed fills a ClickHouse test database with decision records for the
// dashboards' integration tests, browser tests and page-load benchmark.
//
// The schema is the store's (store.Migrate). Rows are written column by
// column from record.Fields(), the walk the store's columns are derived from
// (a time as DateTime('UTC') plus "<name>_ms" Unix ms, lists as Nested), so
// what the dashboards read here is what they read in production; the store's
// materialized views fill decision_versions and decision_superseded on
// insert as they do for the store stage.
package seed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/store"
)

// Open connects to addr's database db (created if missing).
func Open(ctx context.Context, addr, db string) (driver.Conn, error) {
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: "default", Username: "default"}})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	defer admin.Close()
	if err := admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+db+"`"); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"}, MaxOpenConns: 4})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return conn, nil
}

// Table is the decision records table.
const Table = store.TableDecisions

// CreateSchema creates the store's schema in db with store.Migrate: the
// tests and the benchmark run on exactly the tables, materialized views and
// views that `auditline migrate` creates.
func CreateSchema(ctx context.Context, conn driver.Conn, db string) error {
	srv, err := store.Detect(ctx, conn)
	if err != nil {
		return err
	}
	if _, err := store.Migrate(ctx, conn, db, srv, slog.New(slog.DiscardHandler)); err != nil {
		return fmt.Errorf("migrate %s: %w", db, err)
	}
	return nil
}

// Drop removes the database.
func Drop(ctx context.Context, conn driver.Conn, db string) error {
	return conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
}

// Positioned is a record version with its decisions-topic position.
type Positioned struct {
	D         record.Decision
	Partition int32
	Offset    int64
}

// Insert writes records in one batch, through the decision codec the store
// writes with (store.DecisionBatch): the seeded rows are exactly what the
// store would insert for these records.
func Insert(ctx context.Context, conn driver.Conn, db, table string, recs []Positioned) error {
	b := store.NewDecisionBatch()
	for i := range recs {
		b.Append(&recs[i].D, "auditline.decisions", recs[i].Partition, recs[i].Offset)
	}
	if err := b.Insert(ctx, conn, db, table, ""); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// Options shape generated traffic.
type Options struct {
	Tenants []string  // default acme, globex
	End     time.Time // newest start time
	Span    time.Duration
	Seed    uint64
	// Amended is the share of records that also get a version 2 (a review
	// recorded after the fact, as enrich emits it); those come after all
	// version 1 rows in the result.
	Amended float64
}

var (
	teams     = []string{"payments", "support", "search", "legal", "growth", "platform", "risk", "hr"}
	aliases   = []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-70b", "embed-small"}
	providers = []string{"openai", "azure", "anthropic", "bedrock", "vertex_ai"}
	reasons   = []string{"guardrail_intervened", "policy_review", "policy_block", "budget_over_threshold", "budget_denied",
		"fallback_after_429", "fallback_after_5xx", "retries", "risk_score_near_threshold", "rate_limited"}
	tiers = []string{"high", "medium", "low"}
)

// hash returns a SHA-256-looking hex string, deterministic per generator.
func hash(key string, rng *rand.Rand) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", key, rng.Uint64()))
	return hex.EncodeToString(h[:])
}

func f64(v float64) *float64 { return &v }

// Generate returns n synthetic but realistic records: ~6% near misses, ~1.5%
// blocked, risk tiers, baseline sampling and a few reviewed ones.
func Generate(n int, o Options) []Positioned {
	if len(o.Tenants) == 0 {
		o.Tenants = []string{"acme", "globex"}
	}
	if o.Span == 0 {
		o.Span = 30 * 24 * time.Hour
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	out := make([]Positioned, n)
	endMS := o.End.UnixMilli()
	for i := range out {
		key := fmt.Sprintf("req-%d-%d", o.Seed, i)
		start := endMS - rng.Int64N(o.Span.Milliseconds())
		d := record.Decision{SchemaVersion: record.SchemaVersion, RecordID: record.ID(key), Version: 1, Completeness: record.Complete}
		d.Request = record.Request{RequestKey: key, TraceID: "trace-" + key, CallID: key, CallType: "acompletion",
			StartTime: record.Time(start), EndTime: record.Time(start + 300 + rng.Int64N(4000))}
		d.Request.DurationMS = int64(d.Request.EndTime - d.Request.StartTime)
		team := teams[rng.IntN(len(teams))]
		d.Identity = record.Identity{KeyHash: hash(key, rng), KeyAlias: team + "-key", UserID: fmt.Sprintf("user-%d", rng.IntN(400)),
			TeamID: "team-" + team, TeamAlias: team, Tenant: o.Tenants[rng.IntN(len(o.Tenants))], Route: "/chat/completions"}
		alias := aliases[rng.IntN(len(aliases))]
		prov := providers[rng.IntN(len(providers))]
		d.Routing = record.Routing{RequestedAlias: alias, ServedModelGroup: alias, ServedModel: alias, Provider: prov, AttemptCount: 1}
		att := record.Attempt{EventID: key + "-a1", Status: "success", ModelGroup: alias, Model: alias, Provider: prov,
			StartTime: d.Request.StartTime, EndTime: d.Request.EndTime, CostUSD: float64(rng.IntN(5000)) / 1e5, PromptTokens: int64(rng.IntN(2000)), CompletionTokens: int64(rng.IntN(800))}
		d.Outcome = record.Outcome{Status: record.OutcomeSuccess, GuardrailStatus: "passed", CostUSD: att.CostUSD, PromptTokens: att.PromptTokens, CompletionTokens: att.CompletionTokens,
			TotalTokens: att.PromptTokens + att.CompletionTokens}
		d.Routing.Attempts = []record.Attempt{att}
		d.Budget.Team = record.BudgetState{Spend: f64(float64(rng.IntN(900))), MaxBudget: f64(1000)}
		d.Budget.Team.PctUsed = f64(*d.Budget.Team.Spend / 10)
		d.Budget.MaxPctUsed = d.Budget.Team.PctUsed
		d.Guardrails = []record.Guardrail{{Name: "presidio-pii", Provider: "presidio", Mode: "pre_call", Status: "passed", RawStatus: "success"}}
		d.Content = record.Content{CapturePolicy: "hash", MessagesSHA256: hash(key, rng), ResponseSHA256: hash(key, rng)}
		d.Evidence = record.Evidence{Sources: []record.Source{{EventID: key + "-a1", Source: "litellm", SHA256: hash(key, rng), Topic: "auditline.raw.litellm",
			Partition: int32(i % 6), Offset: int64(i), ReceivedAt: d.Request.EndTime + 40}}, FirstReceivedAt: d.Request.EndTime + 40, LastReceivedAt: d.Request.EndTime + 40}
		d.Risk = record.Risk{Tier: tiers[min(rng.IntN(10), 2)], SampleRate: 0.02}
		switch roll := rng.IntN(1000); {
		case roll < 15: // blocked
			r := []string{"guardrail_intervened", "policy_block", "budget_denied", "rate_limited"}[rng.IntN(4)]
			d.NearMiss = record.NearMiss{Flagged: true, Reasons: []string{r}}
			d.Outcome.Status = record.OutcomeBlocked
			d.Outcome.BlockedBy = map[string]string{"guardrail_intervened": "guardrail", "policy_block": "policy", "budget_denied": "budget", "rate_limited": "rate_limit"}[r]
			if r == "guardrail_intervened" {
				d.Guardrails[0].Status, d.Guardrails[0].RawStatus, d.Guardrails[0].MaskedEntityCount = "intervened", "guardrail_intervened", 2
				d.Guardrails[0].MaskedEntities = []string{"EMAIL_ADDRESS=1", "PHONE_NUMBER=1"}
				d.Outcome.GuardrailStatus = "intervened"
			}
			d.Risk.Tier = "high"
		case roll < 75: // nearly blocked
			k := 1 + rng.IntN(2)
			set := map[string]bool{}
			for range k {
				set[reasons[[]int{1, 3, 5, 6, 7, 8}[rng.IntN(6)]]] = true
			}
			for r := range set {
				d.NearMiss.Reasons = append(d.NearMiss.Reasons, r)
			}
			slices.Sort(d.NearMiss.Reasons)
			d.NearMiss.Flagged = true
			if set["fallback_after_429"] || set["fallback_after_5xx"] {
				code := "429"
				if set["fallback_after_5xx"] {
					code = "503"
				}
				fail := att
				fail.EventID, fail.Status, fail.ErrorCode, fail.ErrorClass, fail.Provider = key+"-a0", "failure", code, "RateLimitError", "azure"
				fail.EndTime = fail.StartTime + 120
				d.Routing.Attempts = []record.Attempt{fail, att}
				d.Routing.FallbackUsed, d.Routing.AttemptCount = true, 2
			}
			if set["budget_over_threshold"] {
				d.Budget.Team.Spend = f64(930 + float64(rng.IntN(60)))
				d.Budget.Team.PctUsed = f64(*d.Budget.Team.Spend / 10)
				d.Budget.MaxPctUsed = d.Budget.Team.PctUsed
			}
			if set["risk_score_near_threshold"] {
				d.Guardrails[0].RiskScore = f64(0.78)
			}
			if d.Risk.Tier == "low" {
				d.Risk.Tier = "medium"
			}
		}
		if d.Risk.Tier == "high" {
			d.Risk.SampleRate = 0.25
		}
		if rng.Float64() < d.Risk.SampleRate {
			d.Risk.Sampled, d.Risk.SampleReason = true, "baseline"
			if rng.IntN(3) == 0 {
				o := []string{"approve", "approve", "flag", "escalate"}[rng.IntN(4)]
				d.Oversight = []record.Oversight{{EventID: "dash-" + key, Kind: "review", Outcome: o, Reviewer: "seed-reviewer", Role: "reviewer",
					Rationale: "seeded review", At: d.Request.EndTime + 3600000}}
				d.Risk.ReviewStatus = o
			}
		}
		out[i] = Positioned{D: d, Partition: int32(i % 6), Offset: int64(i / 6)}
	}
	for i := range n {
		if rng.Float64() >= o.Amended {
			continue
		}
		v2 := out[i]
		v2.D.Version, v2.D.Completeness = 2, record.Amended
		outcome := []string{"approve", "flag", "escalate"}[rng.IntN(3)]
		v2.D.Oversight = append(slices.Clone(v2.D.Oversight), record.Oversight{EventID: fmt.Sprintf("dash-v2-%d-%d", o.Seed, i), Kind: "review", Outcome: outcome,
			Reviewer: "seed-reviewer-2", Role: "reviewer", Rationale: "seeded late review", At: v2.D.Request.EndTime + 7200000})
		v2.D.Risk.ReviewStatus = outcome
		v2.Offset += int64(n)
		out = append(out, v2)
	}
	return out
}

// InsertOversight stores an oversight event's original bytes in raw_events,
// as the store stage does for every event ingest accepted, once per
// partition given (ingest fans a sampling_control event out to every
// partition).
func InsertOversight(ctx context.Context, conn driver.Conn, db string, body []byte, eventID string, receivedAt time.Time, partitions ...int32) error {
	if len(partitions) == 0 {
		partitions = []int32{0}
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO `"+db+"`.`"+store.TableRawEvents+"` (topic, partition, offset, key, source, format, event_id, received_at, received_at_ms, kafka_timestamp_ms, sha256, size, body, body_stored)")
	if err != nil {
		return fmt.Errorf("prepare raw_events insert: %w", err)
	}
	sum := sha256.Sum256(body)
	for _, p := range partitions {
		if err := batch.Append("auditline.raw.gateway", p, receivedAt.UnixNano()%1e9, "", "oversight", "single", eventID, receivedAt.UTC().Truncate(time.Second),
			receivedAt.UnixMilli(), receivedAt.UnixMilli(), hex.EncodeToString(sum[:]), uint32(len(body)), string(body), uint8(1)); err != nil {
			return fmt.Errorf("append raw event: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert raw_events: %w", err)
	}
	return nil
}
