package store

import (
	"fmt"
	"slices"
	"strings"
)

// layout is what decision_records' DDL may vary by server besides the
// engine, partitioning and sorting key (decisionLayout): column types,
// compression codecs and skip indexes. The zero layout is the one every
// server runs (ClickHouse 18.16's); layoutFor picks the one migrate builds
// on a given server, from the measurements in docs/store.md.
type layout struct {
	// lowCard stores the low-cardinality strings (lowCardColumns) as
	// LowCardinality(String): a dictionary per part, the values as indexes.
	lowCard bool
	// codecs compresses every column with ZSTD instead of LZ4 (the server's
	// default), and the Unix-millisecond and Kafka offset columns with Delta
	// first.
	codecs bool
	// indexes adds bloom-filter skip indexes on the columns the dashboards'
	// search compares (searchColumns).
	indexes bool
}

// layoutFor is the layout migrate builds on srv. On 22.2 and later: ZSTD
// (and Delta for the millisecond and offset columns), 2.07× smaller on
// ClickHouse 26.9 at the same insert rate. LowCardinality (1.11× alone,
// 1.13× on top of ZSTD, inserts 0.7×) and the bloom filter indexes (no
// search read faster beyond the noise: the search's record-id prefix
// condition, OR-ed with the indexed ones, keeps them from pruning) stay
// out: neither wins the 1.5× the project asks of a server-specific layout
// (docs/store.md, BenchmarkLayouts).
func layoutFor(srv Server) layout {
	if srv.AtLeast(modernSince) {
		return layout{codecs: true}
	}
	return layout{}
}

// lay is s's layout: the one layoutFor picks, unless s names one.
func (s schema) lay() layout {
	if s.variant != nil {
		return *s.variant
	}
	return layoutFor(s.srv)
}

// lowCardColumns are the string columns of decision_records with few
// distinct values (tens to thousands per part: names of tenants, teams,
// models, providers; states and reasons), by column name.
var lowCardColumns = []string{
	"completeness", "call_type", "key_alias", "team_id", "team_alias", "org_id", "org_alias", "project_id",
	"user_agent", "route", "tenant", "roles", "tags",
	"requested_alias", "served_model_group", "served_model", "deployment_id", "provider", "api_base", "provider_model",
	"attempts.status", "attempts.model_group", "attempts.model", "attempts.deployment_id", "attempts.provider",
	"attempts.api_base", "attempts.error_code", "attempts.error_class",
	"budget_key_reset_at", "budget_user_reset_at", "budget_team_reset_at", "budget_end_user_reset_at",
	"budget_denial_entity_type",
	"guardrails.name", "guardrails.provider", "guardrails.mode", "guardrails.status", "guardrails.raw_status",
	"guardrails.action", "guardrails.categories",
	"policy_decision", "policy_id", "policy_version", "policy_data_classes",
	"outcome", "blocked_by", "error_code", "error_class", "guardrail_status", "capture_policy",
	"near_miss_reasons", "risk_tier", "risk_reasons", "sample_reason", "review_status",
	"budget_alerts.entity_type", "budget_alerts.event",
	"policy_decisions.gateway", "policy_decisions.decision", "policy_decisions.stage",
	"oversight.kind", "oversight.outcome", "oversight.role", "oversight.effect",
	"sources.source", "sources.topic", "sources.emitter",
	"approval_decisions.source", "approval_decisions.kind", "approval_decisions.role",
	"emitter_id", "emitter_config_hash", "approval_required_by", "approval_status",
	"access_action", "access_role", ColTopic,
}

// searchColumns are the columns the dashboards' search compares for
// equality (dashboards/query Filter.Search), each given a bloom filter skip
// index by layout.indexes.
var searchColumns = []string{"record_id", "request_key", "user_id", "user_email", "key_alias"}

// colType is c's type in layout l: LowCardinality for the listed strings.
func (l layout) colType(c Column) string {
	if !l.lowCard || !slices.Contains(lowCardColumns, c.Name) {
		return c.Type
	}
	switch c.Type {
	case "String":
		return "LowCardinality(String)"
	case "Array(String)":
		return "Array(LowCardinality(String))"
	case "Array(Array(String))":
		return "Array(Array(LowCardinality(String)))"
	}
	return c.Type
}

// codec is c's CODEC clause in layout l ("" for the server's default).
func (l layout) codec(c Column) string {
	if !l.codecs {
		return ""
	}
	if (strings.HasSuffix(c.Name, "_ms") || c.Name == ColOffset) && c.Type == "Int64" {
		return " CODEC(Delta, ZSTD(1))"
	}
	return " CODEC(ZSTD(1))"
}

// flatNested reports whether l writes the Nested groups' columns as plain
// "group.field Array(T)" columns (the same table: ClickHouse groups them by
// the prefix), since a Nested definition takes no codecs.
func (l layout) flatNested() bool { return l.codecs }

// colDef is c's definition in a CREATE TABLE or ADD COLUMN of layout l.
func (l layout) colDef(c Column) string {
	s := quote(c.Name) + " " + l.colType(c) + l.codec(c)
	if c.Comment != "" {
		s += " COMMENT " + sqlString(c.Comment)
	}
	return s
}

// indexDefs are the INDEX clauses of decision_records in layout l.
func (l layout) indexDefs() []string {
	if !l.indexes {
		return nil
	}
	var out []string
	for _, c := range searchColumns {
		out = append(out, fmt.Sprintf("INDEX %s %s TYPE bloom_filter(0.01) GRANULARITY 1", quote("search_"+c), quote(c)))
	}
	return out
}

// signature describes l for the layout record: "" for the zero layout, so
// that tables of the one-schema-everywhere layout keep their recorded
// checksum.
func (l layout) signature() string {
	if l == (layout{}) {
		return ""
	}
	var b strings.Builder
	for _, c := range decisionColumns() {
		fmt.Fprintf(&b, "\n%s %s%s", c.Name, l.colType(c.Column), l.codec(c.Column))
	}
	for _, c := range kafkaColumns() {
		fmt.Fprintf(&b, "\n%s %s%s", c.Name, l.colType(c), l.codec(c))
	}
	for _, q := range l.indexDefs() {
		b.WriteString("\n" + q)
	}
	return b.String()
}
