package store

import (
	"fmt"
	"strings"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ledger"
)

// View is one analyst view. Views hold no data: they are re-created (dropped
// and created) by `auditline migrate` whenever their SQL changes.
type View struct {
	Name string
	Doc  string // one line for docs/sql.md and COMMENTs
	SQL  string // the SELECT, with {db} for the database
}

// Views are the analyst views, in creation order (a view may read an earlier
// one). docs/sql.md describes each; TestDocsSQL runs every query there.
//
// Every view reads decision_records_latest, so it counts each record once, at
// its latest version. Filters on tenant and start_time given to a view are
// pushed into decision_records (enable_optimize_predicate_expression), where
// they select primary-key ranges; see docs/sql.md for the measured cost.
func Views() []View {
	return append(decisionViews(), ledgerViews()...)
}

// ledgerViews are the completeness ledger of the LiteLLM plugin's emitter
// sequences (package ledger holds their SQL, shared with `auditline gaps`).
// They read every version of every record: a number some version accounts
// for is seen.
func ledgerViews() []View {
	return []View{
		{
			Name: ViewEmitterSequences,
			Doc:  "one row per (emitter, sequence number) some record accounts for: its source events and the gateway_config it ran under",
			SQL:  strings.NewReplacer("{where}", "").Replace(ledger.SequencesSQL),
		},
		{
			Name: ViewSequenceGaps,
			Doc:  "per emitter, each run of sequence numbers no record accounts for (lost events, or not arrived yet), and since when it is known",
			SQL:  ledger.GapsSQL,
		},
		{
			Name: ViewGatewayConfigs,
			Doc:  "the gateway_config events of the LiteLLM plugin (from raw_events): which configuration, by hash, each emitter announced and when",
			// The top-level members come before "config" in the plugin's
			// events, so the first match is theirs (visitParam* cannot read
			// JSON with a space after the colon, which Python writes).
			SQL: `SELECT
    key AS emitter,
    toInt64OrZero(extract(body, '"seq":\\s*([0-9]+)')) AS seq,
    extract(body, '"config_hash":\\s*"([^"]*)"') AS config_hash,
    extract(body, '"reason":\\s*"([^"]*)"') AS reason,
    extract(body, '"litellm_version":\\s*"([^"]*)"') AS litellm_version,
    received_at,
    event_id,
    body
FROM {db}.` + TableRawEvents + `
WHERE source = 'gateway_config'`,
		},
	}
}

func decisionViews() []View {
	return []View{
		{
			Name: ViewLatest,
			Doc:  "one row per record id: its latest version",
			// FINAL collapses rows that share the sorting key (replayed
			// copies of a version); the NOT IN drops the older versions
			// (see decision_superseded). WHERE (never PREWHERE) is
			// applied after the FINAL merge, so filters on any column see
			// the latest version.
			SQL: `SELECT *
FROM {db}.` + TableDecisions + ` FINAL
WHERE (record_id, version) NOT IN (SELECT record_id, superseded FROM {db}.` + TableSuperseded + `)`,
		},
		{
			Name: ViewAttempts,
			Doc:  "one row per provider attempt of the latest record versions",
			SQL:  arrayJoinView("attempts", "attempt", "attempt_number"),
		},
		{
			Name: ViewGuardrails,
			Doc:  "one row per guardrail run of the latest record versions",
			SQL:  arrayJoinView("guardrails", "guardrail", "guardrail_number"),
		},
		{
			Name: ViewNearMissesDaily,
			Doc:  "near-miss records per day, tenant, team and reason (a record counts once per reason)",
			SQL: `SELECT
    toDate(start_time) AS day,
    tenant,
    if(team_alias != '', team_alias, team_id) AS team,
    reason,
    count() AS records,
    countIf(outcome = 'blocked') AS blocked,
    countIf(outcome != 'blocked') AS nearly_blocked,
    sum(cost_usd) AS cost_usd
FROM {db}.` + ViewLatest + `
ARRAY JOIN near_miss_reasons AS reason
WHERE near_miss = 1
GROUP BY day, tenant, team, reason`,
		},
		{
			Name: ViewRoutingDaily,
			Doc:  "requests, fallback and retry rates per day, tenant, requested alias and serving provider",
			SQL: `SELECT
    toDate(start_time) AS day,
    tenant,
    requested_alias,
    provider,
    count() AS requests,
    countIf(fallback_used = 1) AS fallbacks,
    countIf(retry_count > 0) AS retried,
    sum(retry_count) AS retries,
    sum(attempt_count) AS attempts,
    countIf(outcome = 'failure') AS failures,
    fallbacks / requests AS fallback_rate,
    retried / requests AS retry_rate,
    failures / requests AS failure_rate
FROM {db}.` + ViewLatest + `
GROUP BY day, tenant, requested_alias, provider`,
		},
		{
			Name: ViewProviderAttemptsDaily,
			Doc:  "provider attempts per day, tenant, model group and provider, with failures and rate limits",
			SQL: `SELECT
    toDate(start_time) AS day,
    tenant,
    attempt_model_group AS model_group,
    attempt_provider AS provider,
    count() AS attempts,
    countIf(attempt_status = 'failure') AS failures,
    countIf(attempt_error_code = '429') AS rate_limited,
    countIf(attempt_error_code LIKE '5%') AS server_errors,
    failures / attempts AS failure_rate,
    sum(attempt_cost_usd) AS cost_usd
FROM {db}.` + ViewAttempts + `
GROUP BY day, tenant, model_group, provider`,
		},
		{
			Name: ViewGuardrailOutcomesDaily,
			Doc:  "guardrail runs per day, tenant, guardrail, mode and outcome",
			SQL: `SELECT
    toDate(start_time) AS day,
    tenant,
    guardrail_name,
    guardrail_provider,
    guardrail_mode,
    guardrail_status,
    count() AS runs,
    countIf(outcome = 'blocked') AS blocked_requests,
    sum(guardrail_masked_entity_count) AS masked_entities,
    max(guardrail_risk_score) AS max_risk_score
FROM {db}.` + ViewGuardrails + `
GROUP BY day, tenant, guardrail_name, guardrail_provider, guardrail_mode, guardrail_status`,
		},
		{
			Name: ViewBudgetProximity,
			Doc:  "per budget entity (key, user, team, end user): the latest spend, limit and percent used seen on a call",
			SQL: strings.Join([]string{
				budgetEntity("key", "key_hash", "key_alias"),
				budgetEntity("user", "user_id", "user_email"),
				budgetEntity("team", "team_id", "team_alias"),
				budgetEntity("end_user", "end_user", "end_user"),
			}, "\nUNION ALL\n"),
		},
		{
			Name: ViewSpendDaily,
			Doc:  "requests, cost and tokens per day, tenant, team, requested alias and provider",
			SQL: `SELECT
    toDate(start_time) AS day,
    tenant,
    if(team_alias != '', team_alias, team_id) AS team,
    requested_alias,
    provider,
    count() AS requests,
    sum(cost_usd) AS cost_usd,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(total_tokens) AS total_tokens,
    countIf(cache_hit = 1) AS cache_hits,
    sum(saved_cost_usd) AS saved_cost_usd
FROM {db}.` + ViewLatest + `
GROUP BY day, tenant, team, requested_alias, provider`,
		},
		{
			Name: ViewSampleQueue,
			Doc:  "sampled records with their review status (pending until an oversight outcome arrives)",
			SQL: `SELECT
    tenant,
    start_time,
    record_id,
    version,
    risk_tier,
    sample_reason,
    sample_rate,
    if(review_status = '', 'pending', review_status) AS review_status,
    length(oversight.event_id) AS oversight_events,
    if(team_alias != '', team_alias, team_id) AS team,
    requested_alias,
    provider,
    outcome,
    blocked_by,
    near_miss,
    near_miss_reasons,
    cost_usd,
    kafka_partition,
    kafka_offset
FROM {db}.` + ViewLatest + `
WHERE sampled = 1`,
		},
	}
}

// arrayJoinView flattens the list column list of the latest records: one row
// per element, with the record's identifying columns and every element field
// as <prefix>_<field> (derived from record.Fields, so new element fields
// appear after the next migrate).
func arrayJoinView(list, prefix, number string) string {
	var elem []record.Field
	for _, f := range record.Fields() {
		if f.Name == list {
			elem = f.Elem
		}
	}
	cols := []string{"tenant", "start_time", "record_id", "version",
		"if(team_alias != '', team_alias, team_id) AS team", "requested_alias", "provider AS served_provider", "outcome",
		"e_num AS " + number}
	for _, e := range elem {
		cols = append(cols, fmt.Sprintf("e.%s AS %s_%s", quote(e.Name), prefix, e.Name))
		if e.Kind == record.KindTime {
			cols = append(cols, fmt.Sprintf("e.%s AS %s_%s_ms", quote(e.Name+"_ms"), prefix, e.Name))
		}
	}
	return "SELECT\n    " + strings.Join(cols, ",\n    ") +
		"\nFROM {db}." + ViewLatest + "\nARRAY JOIN " + list + " AS e, arrayEnumerate(" + list + "." + elem[0].Name + ") AS e_num"
}

func budgetEntity(kind, id, alias string) string {
	p := "budget_" + kind + "_"
	return fmt.Sprintf(`SELECT
    tenant,
    '%[1]s' AS entity_type,
    %[2]s AS entity_id,
    any(%[3]s) AS entity_alias,
    max(start_time) AS last_seen,
    argMax(%[4]sspend, start_time_ms) AS spend,
    argMax(%[4]smax_budget, start_time_ms) AS max_budget,
    argMax(%[4]spct_used, start_time_ms) AS pct_used,
    max(%[4]spct_used) AS max_pct_used,
    argMax(%[4]sreset_at, start_time_ms) AS reset_at,
    count() AS requests,
    countIf(budget_denied = 1 AND budget_denial_entity_type = '%[1]s') AS denied
FROM {db}.`+ViewLatest+`
WHERE %[2]s != '' AND %[4]smax_budget IS NOT NULL
GROUP BY tenant, entity_id`, kind, id, alias, p)
}

// viewDDL returns the statements that (re)create v in db.
func (s schema) viewDDL(v View) []string {
	body := strings.ReplaceAll(v.SQL, "{db}", quote(s.db))
	return []string{
		"DROP TABLE IF EXISTS " + s.t(v.Name),
		"CREATE VIEW " + s.t(v.Name) + " AS\n" + body,
	}
}
