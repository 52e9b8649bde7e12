CREATE DATABASE IF NOT EXISTS `auditline`;

CREATE TABLE IF NOT EXISTS `auditline`.`schema_migrations`
(
    `version` UInt32,
    `name` String,
    `checksum` String,
    `applied_at` DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (version, name);

CREATE TABLE IF NOT EXISTS `auditline`.`decision_records`
(
    `schema_version` Int64 CODEC(ZSTD(1)) COMMENT 'schema_version',
    `record_id` String CODEC(ZSTD(1)) COMMENT 'record_id',
    `version` UInt32 CODEC(ZSTD(1)) COMMENT 'version',
    `completeness` String CODEC(ZSTD(1)) COMMENT 'completeness',
    `request_key` String CODEC(ZSTD(1)) COMMENT 'request.request_key',
    `trace_id` String CODEC(ZSTD(1)) COMMENT 'request.trace_id',
    `call_id` String CODEC(ZSTD(1)) COMMENT 'request.call_id',
    `call_type` String CODEC(ZSTD(1)) COMMENT 'request.call_type',
    `stream` UInt8 CODEC(ZSTD(1)) COMMENT 'request.stream',
    `start_time` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'request.start_time',
    `start_time_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'request.start_time (Unix ms)',
    `end_time` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'request.end_time',
    `end_time_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'request.end_time (Unix ms)',
    `duration_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'request.duration_ms',
    `key_hash` String CODEC(ZSTD(1)) COMMENT 'identity.key_hash',
    `key_alias` String CODEC(ZSTD(1)) COMMENT 'identity.key_alias',
    `user_id` String CODEC(ZSTD(1)) COMMENT 'identity.user_id',
    `user_email` String CODEC(ZSTD(1)) COMMENT 'identity.user_email',
    `team_id` String CODEC(ZSTD(1)) COMMENT 'identity.team_id',
    `team_alias` String CODEC(ZSTD(1)) COMMENT 'identity.team_alias',
    `org_id` String CODEC(ZSTD(1)) COMMENT 'identity.org_id',
    `org_alias` String CODEC(ZSTD(1)) COMMENT 'identity.org_alias',
    `project_id` String CODEC(ZSTD(1)) COMMENT 'identity.project_id',
    `end_user` String CODEC(ZSTD(1)) COMMENT 'identity.end_user',
    `requester_ip` String CODEC(ZSTD(1)) COMMENT 'identity.requester_ip',
    `user_agent` String CODEC(ZSTD(1)) COMMENT 'identity.user_agent',
    `route` String CODEC(ZSTD(1)) COMMENT 'identity.route',
    `subject` String CODEC(ZSTD(1)) COMMENT 'identity.subject',
    `tenant` String CODEC(ZSTD(1)) COMMENT 'identity.tenant',
    `roles` Array(String) CODEC(ZSTD(1)) COMMENT 'identity.roles',
    `tags` Array(String) CODEC(ZSTD(1)) COMMENT 'identity.tags',
    `requested_alias` String CODEC(ZSTD(1)) COMMENT 'routing.requested_alias',
    `served_model_group` String CODEC(ZSTD(1)) COMMENT 'routing.served_model_group',
    `served_model` String CODEC(ZSTD(1)) COMMENT 'routing.served_model',
    `deployment_id` String CODEC(ZSTD(1)) COMMENT 'routing.deployment_id',
    `provider` String CODEC(ZSTD(1)) COMMENT 'routing.provider',
    `api_base` String CODEC(ZSTD(1)) COMMENT 'routing.api_base',
    `provider_model` String CODEC(ZSTD(1)) COMMENT 'routing.provider_model',
    `fallback_used` UInt8 CODEC(ZSTD(1)) COMMENT 'routing.fallback_used',
    `retry_count` Int32 CODEC(ZSTD(1)) COMMENT 'routing.retry_count',
    `attempt_count` Int32 CODEC(ZSTD(1)) COMMENT 'routing.attempt_count',
    `attempts.event_id` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].event_id',
    `attempts.status` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].status',
    `attempts.model_group` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].model_group',
    `attempts.model` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].model',
    `attempts.deployment_id` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].deployment_id',
    `attempts.provider` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].provider',
    `attempts.api_base` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].api_base',
    `attempts.error_code` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].error_code',
    `attempts.error_class` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].error_class',
    `attempts.error_message` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].error_message',
    `attempts.start_time` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].start_time',
    `attempts.start_time_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].start_time (Unix ms)',
    `attempts.end_time` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].end_time',
    `attempts.end_time_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].end_time (Unix ms)',
    `attempts.cost_usd` Array(Float64) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].cost_usd',
    `attempts.prompt_tokens` Array(Int64) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].prompt_tokens',
    `attempts.completion_tokens` Array(Int64) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].completion_tokens',
    `attempts.cache_hit` Array(UInt8) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].cache_hit',
    `attempts.kind` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].kind',
    `attempts.fallback_from` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].fallback_from',
    `attempts.timeout` Array(UInt8) CODEC(ZSTD(1)) COMMENT 'routing.attempts[].timeout',
    `routing_completeness` String CODEC(ZSTD(1)) COMMENT 'routing.completeness',
    `fallback_targets` Array(String) CODEC(ZSTD(1)) COMMENT 'routing.fallback_targets',
    `budget_key_spend` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.key.spend',
    `budget_key_max_budget` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.key.max_budget',
    `budget_key_pct_used` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.key.pct_used',
    `budget_key_reset_at` String CODEC(ZSTD(1)) COMMENT 'budget.key.reset_at',
    `budget_user_spend` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.user.spend',
    `budget_user_max_budget` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.user.max_budget',
    `budget_user_pct_used` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.user.pct_used',
    `budget_user_reset_at` String CODEC(ZSTD(1)) COMMENT 'budget.user.reset_at',
    `budget_team_spend` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.team.spend',
    `budget_team_max_budget` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.team.max_budget',
    `budget_team_pct_used` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.team.pct_used',
    `budget_team_reset_at` String CODEC(ZSTD(1)) COMMENT 'budget.team.reset_at',
    `budget_end_user_spend` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.end_user.spend',
    `budget_end_user_max_budget` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.end_user.max_budget',
    `budget_end_user_pct_used` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.end_user.pct_used',
    `budget_end_user_reset_at` String CODEC(ZSTD(1)) COMMENT 'budget.end_user.reset_at',
    `budget_max_pct_used` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.max_pct_used',
    `budget_alerts.event_id` Array(String) CODEC(ZSTD(1)) COMMENT 'budget.alerts[].event_id',
    `budget_alerts.entity_type` Array(String) CODEC(ZSTD(1)) COMMENT 'budget.alerts[].entity_type',
    `budget_alerts.entity_id` Array(String) CODEC(ZSTD(1)) COMMENT 'budget.alerts[].entity_id',
    `budget_alerts.event` Array(String) CODEC(ZSTD(1)) COMMENT 'budget.alerts[].event',
    `budget_alerts.spend` Array(Nullable(Float64)) CODEC(ZSTD(1)) COMMENT 'budget.alerts[].spend',
    `budget_alerts.max_budget` Array(Nullable(Float64)) CODEC(ZSTD(1)) COMMENT 'budget.alerts[].max_budget',
    `budget_alerts.received_at` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'budget.alerts[].received_at',
    `budget_alerts.received_at_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'budget.alerts[].received_at (Unix ms)',
    `budget_denied` UInt8 CODEC(ZSTD(1)) COMMENT 'budget.denial.denied',
    `budget_denial_entity_type` String CODEC(ZSTD(1)) COMMENT 'budget.denial.entity_type',
    `budget_denial_entity_id` String CODEC(ZSTD(1)) COMMENT 'budget.denial.entity_id',
    `budget_denial_limit` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.denial.limit',
    `budget_denial_spend` Nullable(Float64) CODEC(ZSTD(1)) COMMENT 'budget.denial.spend',
    `guardrails.name` Array(String) CODEC(ZSTD(1)) COMMENT 'guardrails[].name',
    `guardrails.provider` Array(String) CODEC(ZSTD(1)) COMMENT 'guardrails[].provider',
    `guardrails.mode` Array(String) CODEC(ZSTD(1)) COMMENT 'guardrails[].mode',
    `guardrails.status` Array(String) CODEC(ZSTD(1)) COMMENT 'guardrails[].status',
    `guardrails.raw_status` Array(String) CODEC(ZSTD(1)) COMMENT 'guardrails[].raw_status',
    `guardrails.action` Array(String) CODEC(ZSTD(1)) COMMENT 'guardrails[].action',
    `guardrails.masked_entity_count` Array(Int64) CODEC(ZSTD(1)) COMMENT 'guardrails[].masked_entity_count',
    `guardrails.masked_entities` Array(Array(String)) CODEC(ZSTD(1)) COMMENT 'guardrails[].masked_entities',
    `guardrails.risk_score` Array(Nullable(Float64)) CODEC(ZSTD(1)) COMMENT 'guardrails[].risk_score',
    `guardrails.categories` Array(Array(String)) CODEC(ZSTD(1)) COMMENT 'guardrails[].categories',
    `policy_decision` String CODEC(ZSTD(1)) COMMENT 'policy.decision',
    `policy_id` String CODEC(ZSTD(1)) COMMENT 'policy.id',
    `policy_version` String CODEC(ZSTD(1)) COMMENT 'policy.version',
    `policy_data_classes` Array(String) CODEC(ZSTD(1)) COMMENT 'policy.data_classes',
    `policy_decisions.event_id` Array(String) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].event_id',
    `policy_decisions.gateway` Array(String) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].gateway',
    `policy_decisions.policy_id` Array(String) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].policy_id',
    `policy_decisions.version` Array(String) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].version',
    `policy_decisions.decision` Array(String) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].decision',
    `policy_decisions.reason` Array(String) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].reason',
    `policy_decisions.data_classes` Array(Array(String)) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].data_classes',
    `policy_decisions.at` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].at',
    `policy_decisions.at_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].at (Unix ms)',
    `policy_decisions.stage` Array(String) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].stage',
    `policy_decisions.rule_ids` Array(Array(String)) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].rule_ids',
    `policy_decisions.risk_score` Array(Nullable(Float64)) CODEC(ZSTD(1)) COMMENT 'policy.decisions[].risk_score',
    `oversight.event_id` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].event_id',
    `oversight.kind` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].kind',
    `oversight.outcome` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].outcome',
    `oversight.reviewer` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].reviewer',
    `oversight.role` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].role',
    `oversight.rationale` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].rationale',
    `oversight.at` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'oversight[].at',
    `oversight.at_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'oversight[].at (Unix ms)',
    `oversight.record_version` Array(Int64) CODEC(ZSTD(1)) COMMENT 'oversight[].record_version',
    `oversight.tenant` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].tenant',
    `oversight.sender` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].sender',
    `oversight.received_at` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'oversight[].received_at',
    `oversight.received_at_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'oversight[].received_at (Unix ms)',
    `oversight.effect` Array(String) CODEC(ZSTD(1)) COMMENT 'oversight[].effect',
    `outcome` String CODEC(ZSTD(1)) COMMENT 'outcome.status',
    `blocked_by` String CODEC(ZSTD(1)) COMMENT 'outcome.blocked_by',
    `error_code` String CODEC(ZSTD(1)) COMMENT 'outcome.error_code',
    `error_class` String CODEC(ZSTD(1)) COMMENT 'outcome.error_class',
    `error_message` String CODEC(ZSTD(1)) COMMENT 'outcome.error_message',
    `guardrail_status` String CODEC(ZSTD(1)) COMMENT 'outcome.guardrail_status',
    `cost_usd` Float64 CODEC(ZSTD(1)) COMMENT 'outcome.cost_usd',
    `prompt_tokens` Int64 CODEC(ZSTD(1)) COMMENT 'outcome.prompt_tokens',
    `completion_tokens` Int64 CODEC(ZSTD(1)) COMMENT 'outcome.completion_tokens',
    `total_tokens` Int64 CODEC(ZSTD(1)) COMMENT 'outcome.total_tokens',
    `cache_hit` UInt8 CODEC(ZSTD(1)) COMMENT 'outcome.cache_hit',
    `saved_cost_usd` Float64 CODEC(ZSTD(1)) COMMENT 'outcome.saved_cost_usd',
    `capture_policy` String CODEC(ZSTD(1)) COMMENT 'content.capture_policy',
    `messages_sha256` String CODEC(ZSTD(1)) COMMENT 'content.messages_sha256',
    `response_sha256` String CODEC(ZSTD(1)) COMMENT 'content.response_sha256',
    `messages` String CODEC(ZSTD(1)) COMMENT 'content.messages',
    `response` String CODEC(ZSTD(1)) COMMENT 'content.response',
    `content_truncated` UInt8 CODEC(ZSTD(1)) COMMENT 'content.truncated',
    `near_miss` UInt8 CODEC(ZSTD(1)) COMMENT 'near_miss.flagged',
    `near_miss_reasons` Array(String) CODEC(ZSTD(1)) COMMENT 'near_miss.reasons',
    `risk_tier` String CODEC(ZSTD(1)) COMMENT 'risk.tier',
    `risk_reasons` Array(String) CODEC(ZSTD(1)) COMMENT 'risk.reasons',
    `sampled` UInt8 CODEC(ZSTD(1)) COMMENT 'risk.sampled',
    `sample_reason` String CODEC(ZSTD(1)) COMMENT 'risk.sample_reason',
    `sample_rate` Float64 CODEC(ZSTD(1)) COMMENT 'risk.sample_rate',
    `review_status` String CODEC(ZSTD(1)) COMMENT 'risk.review_status',
    `sources.event_id` Array(String) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].event_id',
    `sources.source` Array(String) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].source',
    `sources.sha256` Array(String) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].sha256',
    `sources.topic` Array(String) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].topic',
    `sources.partition` Array(Int32) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].partition',
    `sources.offset` Array(Int64) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].offset',
    `sources.received_at` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].received_at',
    `sources.received_at_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].received_at (Unix ms)',
    `sources.emitter` Array(String) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].emitter',
    `sources.seq` Array(Int64) CODEC(ZSTD(1)) COMMENT 'evidence.sources[].seq',
    `first_received_at` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'evidence.first_received_at',
    `first_received_at_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'evidence.first_received_at (Unix ms)',
    `last_received_at` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'evidence.last_received_at',
    `last_received_at_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'evidence.last_received_at (Unix ms)',
    `emitter_id` String CODEC(ZSTD(1)) COMMENT 'emitter.id',
    `emitter_config_hash` String CODEC(ZSTD(1)) COMMENT 'emitter.config_hash',
    `emitter_config_seq` Int64 CODEC(ZSTD(1)) COMMENT 'emitter.config_seq',
    `approval_required` UInt8 CODEC(ZSTD(1)) COMMENT 'approval.required',
    `approval_required_by` String CODEC(ZSTD(1)) COMMENT 'approval.required_by',
    `approval_needed` Int32 CODEC(ZSTD(1)) COMMENT 'approval.needed',
    `approval_status` String CODEC(ZSTD(1)) COMMENT 'approval.status',
    `approval_approvers` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.approvers',
    `approval_rejected_by` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.rejected_by',
    `approval_requested_at` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'approval.requested_at',
    `approval_requested_at_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'approval.requested_at (Unix ms)',
    `approval_approved_at` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'approval.approved_at',
    `approval_approved_at_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'approval.approved_at (Unix ms)',
    `approval_rejected_at` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'approval.rejected_at',
    `approval_rejected_at_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'approval.rejected_at (Unix ms)',
    `approval_executed_at` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'approval.executed_at',
    `approval_executed_at_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'approval.executed_at (Unix ms)',
    `approval_decisions.event_id` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].event_id',
    `approval_decisions.source` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].source',
    `approval_decisions.kind` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].kind',
    `approval_decisions.approver` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].approver',
    `approval_decisions.role` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].role',
    `approval_decisions.sender` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].sender',
    `approval_decisions.reason` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].reason',
    `approval_decisions.at` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].at',
    `approval_decisions.at_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].at (Unix ms)',
    `approval_decisions.received_at` Array(DateTime('UTC')) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].received_at',
    `approval_decisions.received_at_ms` Array(Int64) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].received_at (Unix ms)',
    `approval_decisions.counted` Array(UInt8) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].counted',
    `approval_decisions.note` Array(String) CODEC(ZSTD(1)) COMMENT 'approval.decisions[].note',
    `access_action` String CODEC(ZSTD(1)) COMMENT 'access.action',
    `access_actor` String CODEC(ZSTD(1)) COMMENT 'access.actor',
    `access_role` String CODEC(ZSTD(1)) COMMENT 'access.role',
    `access_via` String CODEC(ZSTD(1)) COMMENT 'access.via',
    `access_client` String CODEC(ZSTD(1)) COMMENT 'access.client',
    `access_sender` String CODEC(ZSTD(1)) COMMENT 'access.sender',
    `access_target` String CODEC(ZSTD(1)) COMMENT 'access.target',
    `access_target_version` Int64 CODEC(ZSTD(1)) COMMENT 'access.target_version',
    `access_format` String CODEC(ZSTD(1)) COMMENT 'access.format',
    `access_query` String CODEC(ZSTD(1)) COMMENT 'access.query',
    `access_at` DateTime('UTC') CODEC(ZSTD(1)) COMMENT 'access.at',
    `access_at_ms` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'access.at (Unix ms)',
    `rules_hash` String CODEC(ZSTD(1)) COMMENT 'rules_hash',
    `kafka_topic` String CODEC(ZSTD(1)) COMMENT 'decisions topic the row was read from',
    `kafka_partition` Int32 CODEC(ZSTD(1)) COMMENT 'its Kafka partition',
    `kafka_offset` Int64 CODEC(Delta, ZSTD(1)) COMMENT 'its Kafka offset',
    `inserted_at` DateTime('UTC') DEFAULT now() COMMENT 'when the store inserted the row'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(start_time)
ORDER BY (tenant, start_time, record_id, version)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS `auditline`.`raw_events`
(
    `topic` String COMMENT 'raw topic (or the DLQ)',
    `partition` Int32 COMMENT 'Kafka partition',
    `offset` Int64 COMMENT 'Kafka offset',
    `key` String COMMENT 'Kafka key: request key, budget entity or object id',
    `source` String COMMENT 'header auditline-source: litellm, gateway, oversight, alert, admin',
    `format` String COMMENT 'header auditline-format: json_array, ndjson, single, legacy_v1',
    `event_id` String COMMENT 'header auditline-event-id',
    `batch` String COMMENT 'header auditline-batch: <body sha256>/<index>',
    `dlq_reason` String COMMENT 'header auditline-dlq-reason (DLQ only)',
    `received_at` DateTime('UTC') COMMENT 'when ingest read the body (header auditline-received-at, else the record timestamp)',
    `received_at_ms` Int64 COMMENT 'received_at in Unix ms',
    `kafka_timestamp_ms` Int64 COMMENT 'Kafka record timestamp, Unix ms',
    `sha256` String COMMENT 'SHA-256 (hex) of the original bytes',
    `size` UInt32 COMMENT 'length of the original bytes',
    `body` String COMMENT 'the original bytes, unchanged; empty when larger than store.raw_body_max',
    `body_stored` UInt8 COMMENT '1 when body holds the original bytes',
    `headers` Nested
    (
        `key` String,
        `value` String
    ),
    `inserted_at` DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (key, topic, partition, offset)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS `auditline`.`rejected_records`
(
    `topic` String,
    `partition` Int32,
    `offset` Int64,
    `key` String,
    `kafka_timestamp_ms` Int64,
    `reason` String COMMENT 'why the value could not become a row',
    `value` String COMMENT 'the Kafka value, unchanged',
    `inserted_at` DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(kafka_timestamp_ms, 1000), 'UTC'))
ORDER BY (topic, partition, offset)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS `auditline`.`store_progress`
(
    `topic` String,
    `partition` Int32,
    `min_offset` Int64,
    `max_offset` Int64,
    `rows` UInt64,
    `inserted_at` DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, max_offset);

CREATE MATERIALIZED VIEW IF NOT EXISTS `auditline`.`decision_records_progress_mv` TO `auditline`.`store_progress` AS
SELECT
    `kafka_topic` AS topic,
    `kafka_partition` AS partition,
    min(`kafka_offset`) AS min_offset,
    max(`kafka_offset`) AS max_offset,
    count() AS rows,
    now() AS inserted_at
FROM `auditline`.`decision_records`
GROUP BY `kafka_topic`, `kafka_partition`;

CREATE MATERIALIZED VIEW IF NOT EXISTS `auditline`.`raw_events_progress_mv` TO `auditline`.`store_progress` AS
SELECT
    `topic` AS topic,
    `partition` AS partition,
    min(`offset`) AS min_offset,
    max(`offset`) AS max_offset,
    count() AS rows,
    now() AS inserted_at
FROM `auditline`.`raw_events`
GROUP BY `topic`, `partition`;

CREATE TABLE IF NOT EXISTS `auditline`.`decision_versions`
(
    `record_id` String,
    `version` UInt32,
    `tenant` String,
    `start_time` DateTime('UTC'),
    `kafka_partition` Int32,
    `kafka_offset` Int64
)
ENGINE = ReplacingMergeTree
ORDER BY (record_id, version);

CREATE MATERIALIZED VIEW IF NOT EXISTS `auditline`.`decision_versions_mv` TO `auditline`.`decision_versions` AS
SELECT record_id, version, tenant, start_time, kafka_partition, kafka_offset
FROM `auditline`.`decision_records`;

CREATE TABLE IF NOT EXISTS `auditline`.`decision_superseded`
(
    `record_id` String,
    `superseded` UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (record_id, superseded);

CREATE MATERIALIZED VIEW IF NOT EXISTS `auditline`.`decision_superseded_mv` TO `auditline`.`decision_superseded` AS
SELECT record_id, arrayJoin(arrayMap(x -> toUInt32(x + 1), range(toUInt32(version - 1)))) AS superseded
FROM `auditline`.`decision_records`
WHERE version > 1;

ALTER TABLE `auditline`.`store_progress` MODIFY SETTING non_replicated_deduplication_window = 1000;

ALTER TABLE `auditline`.`decision_versions` MODIFY SETTING non_replicated_deduplication_window = 1000;

ALTER TABLE `auditline`.`decision_superseded` MODIFY SETTING non_replicated_deduplication_window = 1000;

DROP TABLE IF EXISTS `auditline`.`decision_records_latest`;

CREATE VIEW `auditline`.`decision_records_latest` AS
SELECT *
FROM `auditline`.decision_records FINAL
WHERE (record_id, version) NOT IN (SELECT record_id, superseded FROM `auditline`.decision_superseded);

DROP TABLE IF EXISTS `auditline`.`decision_attempts`;

CREATE VIEW `auditline`.`decision_attempts` AS
SELECT
    tenant,
    start_time,
    record_id,
    version,
    if(team_alias != '', team_alias, team_id) AS team,
    requested_alias,
    provider AS served_provider,
    outcome,
    e_num AS attempt_number,
    e.`event_id` AS attempt_event_id,
    e.`status` AS attempt_status,
    e.`model_group` AS attempt_model_group,
    e.`model` AS attempt_model,
    e.`deployment_id` AS attempt_deployment_id,
    e.`provider` AS attempt_provider,
    e.`api_base` AS attempt_api_base,
    e.`error_code` AS attempt_error_code,
    e.`error_class` AS attempt_error_class,
    e.`error_message` AS attempt_error_message,
    e.`start_time` AS attempt_start_time,
    e.`start_time_ms` AS attempt_start_time_ms,
    e.`end_time` AS attempt_end_time,
    e.`end_time_ms` AS attempt_end_time_ms,
    e.`cost_usd` AS attempt_cost_usd,
    e.`prompt_tokens` AS attempt_prompt_tokens,
    e.`completion_tokens` AS attempt_completion_tokens,
    e.`cache_hit` AS attempt_cache_hit,
    e.`kind` AS attempt_kind,
    e.`fallback_from` AS attempt_fallback_from,
    e.`timeout` AS attempt_timeout
FROM `auditline`.decision_records_latest
ARRAY JOIN attempts AS e, arrayEnumerate(attempts.event_id) AS e_num;

DROP TABLE IF EXISTS `auditline`.`decision_guardrails`;

CREATE VIEW `auditline`.`decision_guardrails` AS
SELECT
    tenant,
    start_time,
    record_id,
    version,
    if(team_alias != '', team_alias, team_id) AS team,
    requested_alias,
    provider AS served_provider,
    outcome,
    e_num AS guardrail_number,
    e.`name` AS guardrail_name,
    e.`provider` AS guardrail_provider,
    e.`mode` AS guardrail_mode,
    e.`status` AS guardrail_status,
    e.`raw_status` AS guardrail_raw_status,
    e.`action` AS guardrail_action,
    e.`masked_entity_count` AS guardrail_masked_entity_count,
    e.`masked_entities` AS guardrail_masked_entities,
    e.`risk_score` AS guardrail_risk_score,
    e.`categories` AS guardrail_categories
FROM `auditline`.decision_records_latest
ARRAY JOIN guardrails AS e, arrayEnumerate(guardrails.name) AS e_num;

DROP TABLE IF EXISTS `auditline`.`near_misses_daily`;

CREATE VIEW `auditline`.`near_misses_daily` AS
SELECT
    toDate(start_time) AS day,
    tenant,
    if(team_alias != '', team_alias, team_id) AS team,
    reason,
    count() AS records,
    countIf(outcome = 'blocked') AS blocked,
    countIf(outcome != 'blocked') AS nearly_blocked,
    sum(cost_usd) AS cost_usd
FROM `auditline`.decision_records_latest
ARRAY JOIN near_miss_reasons AS reason
WHERE near_miss = 1
GROUP BY day, tenant, team, reason;

DROP TABLE IF EXISTS `auditline`.`routing_daily`;

CREATE VIEW `auditline`.`routing_daily` AS
SELECT
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
FROM `auditline`.decision_records_latest
GROUP BY day, tenant, requested_alias, provider;

DROP TABLE IF EXISTS `auditline`.`provider_attempts_daily`;

CREATE VIEW `auditline`.`provider_attempts_daily` AS
SELECT
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
FROM `auditline`.decision_attempts
GROUP BY day, tenant, model_group, provider;

DROP TABLE IF EXISTS `auditline`.`guardrail_outcomes_daily`;

CREATE VIEW `auditline`.`guardrail_outcomes_daily` AS
SELECT
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
FROM `auditline`.decision_guardrails
GROUP BY day, tenant, guardrail_name, guardrail_provider, guardrail_mode, guardrail_status;

DROP TABLE IF EXISTS `auditline`.`budget_proximity`;

CREATE VIEW `auditline`.`budget_proximity` AS
SELECT
    tenant,
    'key' AS entity_type,
    key_hash AS entity_id,
    any(key_alias) AS entity_alias,
    max(start_time) AS last_seen,
    argMax(budget_key_spend, start_time_ms) AS spend,
    argMax(budget_key_max_budget, start_time_ms) AS max_budget,
    argMax(budget_key_pct_used, start_time_ms) AS pct_used,
    max(budget_key_pct_used) AS max_pct_used,
    argMax(budget_key_reset_at, start_time_ms) AS reset_at,
    count() AS requests,
    countIf(budget_denied = 1 AND budget_denial_entity_type = 'key') AS denied
FROM `auditline`.decision_records_latest
WHERE key_hash != '' AND budget_key_max_budget IS NOT NULL
GROUP BY tenant, entity_id
UNION ALL
SELECT
    tenant,
    'user' AS entity_type,
    user_id AS entity_id,
    any(user_email) AS entity_alias,
    max(start_time) AS last_seen,
    argMax(budget_user_spend, start_time_ms) AS spend,
    argMax(budget_user_max_budget, start_time_ms) AS max_budget,
    argMax(budget_user_pct_used, start_time_ms) AS pct_used,
    max(budget_user_pct_used) AS max_pct_used,
    argMax(budget_user_reset_at, start_time_ms) AS reset_at,
    count() AS requests,
    countIf(budget_denied = 1 AND budget_denial_entity_type = 'user') AS denied
FROM `auditline`.decision_records_latest
WHERE user_id != '' AND budget_user_max_budget IS NOT NULL
GROUP BY tenant, entity_id
UNION ALL
SELECT
    tenant,
    'team' AS entity_type,
    team_id AS entity_id,
    any(team_alias) AS entity_alias,
    max(start_time) AS last_seen,
    argMax(budget_team_spend, start_time_ms) AS spend,
    argMax(budget_team_max_budget, start_time_ms) AS max_budget,
    argMax(budget_team_pct_used, start_time_ms) AS pct_used,
    max(budget_team_pct_used) AS max_pct_used,
    argMax(budget_team_reset_at, start_time_ms) AS reset_at,
    count() AS requests,
    countIf(budget_denied = 1 AND budget_denial_entity_type = 'team') AS denied
FROM `auditline`.decision_records_latest
WHERE team_id != '' AND budget_team_max_budget IS NOT NULL
GROUP BY tenant, entity_id
UNION ALL
SELECT
    tenant,
    'end_user' AS entity_type,
    end_user AS entity_id,
    any(end_user) AS entity_alias,
    max(start_time) AS last_seen,
    argMax(budget_end_user_spend, start_time_ms) AS spend,
    argMax(budget_end_user_max_budget, start_time_ms) AS max_budget,
    argMax(budget_end_user_pct_used, start_time_ms) AS pct_used,
    max(budget_end_user_pct_used) AS max_pct_used,
    argMax(budget_end_user_reset_at, start_time_ms) AS reset_at,
    count() AS requests,
    countIf(budget_denied = 1 AND budget_denial_entity_type = 'end_user') AS denied
FROM `auditline`.decision_records_latest
WHERE end_user != '' AND budget_end_user_max_budget IS NOT NULL
GROUP BY tenant, entity_id;

DROP TABLE IF EXISTS `auditline`.`spend_daily`;

CREATE VIEW `auditline`.`spend_daily` AS
SELECT
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
FROM `auditline`.decision_records_latest
GROUP BY day, tenant, team, requested_alias, provider;

DROP TABLE IF EXISTS `auditline`.`sample_queue`;

CREATE VIEW `auditline`.`sample_queue` AS
SELECT
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
FROM `auditline`.decision_records_latest
WHERE sampled = 1;

DROP TABLE IF EXISTS `auditline`.`emitter_sequences`;

CREATE VIEW `auditline`.`emitter_sequences` AS
SELECT emitter, seq, min(received_at_ms) AS received_at_ms, any(record_id) AS record_id, any(kind) AS kind
FROM
(
    SELECT sources.emitter AS emitter, sources.seq AS seq, sources.received_at_ms AS received_at_ms, record_id, sources.source AS kind
    FROM `auditline`.decision_records
    ARRAY JOIN sources
    WHERE sources.emitter != '' AND sources.seq > 0
    UNION ALL
    SELECT emitter_id AS emitter, emitter_config_seq AS seq, first_received_at_ms AS received_at_ms, record_id, 'gateway_config' AS kind
    FROM `auditline`.decision_records
    WHERE emitter_id != '' AND emitter_config_seq > 0
) AS _events
GROUP BY emitter, seq;

DROP TABLE IF EXISTS `auditline`.`sequence_gaps`;

CREATE VIEW `auditline`.`sequence_gaps` AS
SELECT
    emitter,
    tupleElement(gap, 1) AS first_missing,
    tupleElement(gap, 2) AS last_missing,
    last_missing - first_missing + 1 AS missing,
    toDateTime(intDiv(tupleElement(gap, 3), 1000), 'UTC') AS known_since
FROM
(
    SELECT emitter, arrayMap(x -> x.1, s) AS seqs, arrayMap(x -> x.2, s) AS times
    FROM
    (
        SELECT emitter, arraySort(groupArray((seq, received_at_ms))) AS s
        FROM `auditline`.emitter_sequences
        GROUP BY emitter
    ) AS _sorted
) AS _arrays
ARRAY JOIN arrayFilter(g -> g.1 <= g.2,
    arrayMap((prev, cur, at) -> (prev + 1, cur - 1, at), arrayPushFront(arrayPopBack(seqs), toInt64(0)), seqs, times)) AS gap;

DROP TABLE IF EXISTS `auditline`.`gateway_configs`;

CREATE VIEW `auditline`.`gateway_configs` AS
SELECT
    key AS emitter,
    toInt64OrZero(extract(body, '"seq":\\s*([0-9]+)')) AS seq,
    extract(body, '"config_hash":\\s*"([^"]*)"') AS config_hash,
    extract(body, '"reason":\\s*"([^"]*)"') AS reason,
    extract(body, '"litellm_version":\\s*"([^"]*)"') AS litellm_version,
    received_at,
    event_id,
    body
FROM `auditline`.raw_events
WHERE source = 'gateway_config';
