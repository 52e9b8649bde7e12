package store

// Table and view names, created in the configured database. These constants
// are the only place Go code spells them: the store's DDL and views, the
// dashboards' queries, the seed and every test build SQL from them. The SQL
// that is not Go — docs/sql.md and deploy/grafana's panels — is checked
// against Names by tests (TestNamesInDocs, deploy/grafana's
// TestPanelTables), so a rename that misses one fails.
const (
	TableDecisions  = "decision_records"    // one row per record version (ReplacingMergeTree)
	TableRawEvents  = "raw_events"          // every source event's original bytes
	TableRejected   = "rejected_records"    // Kafka values that could not become rows
	TableProgress   = "store_progress"      // offsets stored per table and partition
	TableVersions   = "decision_versions"   // record_id → sort key of each version
	TableSuperseded = "decision_superseded" // versions replaced by a later one
	TableMigrations = "schema_migrations"   // what 'auditline migrate' applied

	// Analyst views (views.go); docs/sql.md describes each.
	ViewLatest                 = "decision_records_latest"
	ViewAttempts               = "decision_attempts"
	ViewGuardrails             = "decision_guardrails"
	ViewNearMissesDaily        = "near_misses_daily"
	ViewRoutingDaily           = "routing_daily"
	ViewProviderAttemptsDaily  = "provider_attempts_daily"
	ViewGuardrailOutcomesDaily = "guardrail_outcomes_daily"
	ViewBudgetProximity        = "budget_proximity"
	ViewSpendDaily             = "spend_daily"
	ViewSampleQueue            = "sample_queue"

	// The completeness ledger's views (their SQL is in package ledger,
	// which store imports, so it cannot use these constants; TestNames
	// checks every name it reads against Names).
	ViewEmitterSequences = "emitter_sequences"
	ViewSequenceGaps     = "sequence_gaps"
	ViewGatewayConfigs   = "gateway_configs"
)

// Names lists every table and view above (not the materialized views that
// fill the derived tables, which no query reads).
func Names() []string {
	return []string{
		TableDecisions, TableRawEvents, TableRejected, TableProgress, TableVersions, TableSuperseded, TableMigrations,
		ViewLatest, ViewAttempts, ViewGuardrails, ViewNearMissesDaily, ViewRoutingDaily, ViewProviderAttemptsDaily,
		ViewGuardrailOutcomesDaily, ViewBudgetProximity, ViewSpendDaily, ViewSampleQueue,
		ViewEmitterSequences, ViewSequenceGaps, ViewGatewayConfigs,
	}
}
