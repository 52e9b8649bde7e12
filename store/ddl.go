package store

import (
	"fmt"
	"strconv"
	"strings"
)

// Server is a ClickHouse server version, e.g. 18.16.1 or 24.8.4.13.
type Server struct {
	Major, Minor int
}

// Server versions the schema knows about.
var (
	// Oldest is the oldest server the schema runs on (the one installable
	// here, see docs/store.md).
	Oldest = Server{18, 16}
	// dedupSince is the first release with the insert_deduplication_token
	// setting (22.2); it also has the non_replicated_deduplication_window
	// table setting that makes plain MergeTree tables honour it.
	dedupSince = Server{22, 2}
)

// ParseServer parses version() output ("18.16.1", "24.8.4.13").
func ParseServer(v string) (Server, error) {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return Server{}, fmt.Errorf("clickhouse version %q: want major.minor[.patch]", v)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || maj < 0 || min < 0 {
		return Server{}, fmt.Errorf("clickhouse version %q: want major.minor[.patch]", v)
	}
	return Server{maj, min}, nil
}

func (s Server) String() string { return fmt.Sprintf("%d.%d", s.Major, s.Minor) }

// AtLeast reports whether s is o or newer.
func (s Server) AtLeast(o Server) bool {
	return s.Major > o.Major || s.Major == o.Major && s.Minor >= o.Minor
}

// DedupToken reports whether inserts may carry insert_deduplication_token.
func (s Server) DedupToken() bool { return s.AtLeast(dedupSince) }

// Table names. Every name is created in the configured database.
const (
	TableDecisions  = "decision_records"
	TableRawEvents  = "raw_events"
	TableRejected   = "rejected_records"
	TableProgress   = "store_progress"
	TableVersions   = "decision_versions"
	TableSuperseded = "decision_superseded"
	TableMigrations = "schema_migrations"
)

// schema renders the DDL for one database and server.
type schema struct {
	db  string
	srv Server
}

func (s schema) t(name string) string { return quote(s.db) + "." + quote(name) }

// tableSettings is the SETTINGS clause of our MergeTree tables.
func (s schema) tableSettings() string {
	if s.srv.DedupToken() {
		// Keep the hashes of the last 1000 inserted blocks so that a retried
		// INSERT with the same insert_deduplication_token is dropped.
		return "\nSETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000"
	}
	return "\nSETTINGS index_granularity = 8192"
}

// decisionRecordsDDL is decision_records: one row per record version.
func (s schema) decisionRecordsDDL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s\n(\n", s.t(TableDecisions))
	var lines []string
	cols := decisionColumns()
	for i := 0; i < len(cols); {
		c := cols[i]
		if c.nested == "" {
			lines = append(lines, "    "+columnDef(c.Column))
			i++
			continue
		}
		// A Nested group: its element columns are consecutive.
		var inner []string
		j := i
		for ; j < len(cols) && cols[j].nested == c.nested; j++ {
			e := cols[j].Column
			e.Name = strings.TrimPrefix(e.Name, c.nested+".")
			e.Type = strings.TrimSuffix(strings.TrimPrefix(e.Type, "Array("), ")")
			e.Comment = "" // Nested elements take no comments on 18.16
			inner = append(inner, "        "+columnDef(e))
		}
		lines = append(lines, "    "+quote(c.nested)+" Nested\n    (\n"+strings.Join(inner, ",\n")+"\n    )")
		i = j
	}
	for _, c := range kafkaColumns() {
		lines = append(lines, "    "+columnDef(c))
	}
	lines = append(lines, "    `inserted_at` DateTime('UTC') DEFAULT now() COMMENT 'when the store inserted the row'")
	b.WriteString(strings.Join(lines, ",\n"))
	fmt.Fprintf(&b, "\n)\nENGINE = ReplacingMergeTree(%s)\nPARTITION BY %s\nORDER BY (%s)%s",
		decisionVersionCol, decisionPartition, decisionOrderBy, s.tableSettings())
	return b.String()
}

func kafkaColumns() []Column {
	return []Column{
		{Name: ColTopic, Type: "String", Comment: "decisions topic the row was read from"},
		{Name: ColPartition, Type: "Int32", Comment: "its Kafka partition"},
		{Name: ColOffset, Type: "Int64", Comment: "its Kafka offset"},
	}
}

func columnDef(c Column) string {
	s := quote(c.Name) + " " + c.Type
	if c.Comment != "" {
		s += " COMMENT " + sqlString(c.Comment)
	}
	return s
}

// rawEventsColumns are the columns the store inserts into raw_events, in order.
var rawEventsColumns = []Column{
	{Name: "topic", Type: "String", Comment: "raw topic (or the DLQ)"},
	{Name: "partition", Type: "Int32", Comment: "Kafka partition"},
	{Name: "offset", Type: "Int64", Comment: "Kafka offset"},
	{Name: "key", Type: "String", Comment: "Kafka key: request key, budget entity or object id"},
	{Name: "source", Type: "String", Comment: "header auditline-source: litellm, gateway, oversight, alert, admin"},
	{Name: "format", Type: "String", Comment: "header auditline-format: json_array, ndjson, single, legacy_v1"},
	{Name: "event_id", Type: "String", Comment: "header auditline-event-id"},
	{Name: "batch", Type: "String", Comment: "header auditline-batch: <body sha256>/<index>"},
	{Name: "dlq_reason", Type: "String", Comment: "header auditline-dlq-reason (DLQ only)"},
	{Name: "received_at", Type: dateTimeUTC, Comment: "when ingest read the body (header auditline-received-at, else the record timestamp)"},
	{Name: "received_at_ms", Type: "Int64", Comment: "received_at in Unix ms"},
	{Name: "kafka_timestamp_ms", Type: "Int64", Comment: "Kafka record timestamp, Unix ms"},
	{Name: "sha256", Type: "String", Comment: "SHA-256 (hex) of the original bytes"},
	{Name: "size", Type: "UInt32", Comment: "length of the original bytes"},
	{Name: "body", Type: "String", Comment: "the original bytes, unchanged; empty when larger than store.raw_body_max"},
	{Name: "body_stored", Type: "UInt8", Comment: "1 when body holds the original bytes"},
	{Name: "headers.key", Type: "Array(String)"},
	{Name: "headers.value", Type: "Array(String)"},
}

func (s schema) rawEventsDDL() string {
	var lines []string
	for _, c := range rawEventsColumns {
		if strings.HasPrefix(c.Name, "headers.") {
			continue
		}
		lines = append(lines, "    "+columnDef(c))
	}
	lines = append(lines,
		"    `headers` Nested\n    (\n        `key` String,\n        `value` String\n    )",
		"    `inserted_at` DateTime('UTC') DEFAULT now()")
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s\n(\n%s\n)\nENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(received_at)\nORDER BY (key, topic, partition, offset)%s",
		s.t(TableRawEvents), strings.Join(lines, ",\n"), s.tableSettings())
}

// rejectedColumns are the columns of rejected_records, in insert order.
var rejectedColumns = []Column{
	{Name: "topic", Type: "String"},
	{Name: "partition", Type: "Int32"},
	{Name: "offset", Type: "Int64"},
	{Name: "key", Type: "String"},
	{Name: "kafka_timestamp_ms", Type: "Int64"},
	{Name: "reason", Type: "String", Comment: "why the value could not become a row"},
	{Name: "value", Type: "String", Comment: "the Kafka value, unchanged"},
}

func (s schema) rejectedDDL() string {
	var lines []string
	for _, c := range rejectedColumns {
		lines = append(lines, "    "+columnDef(c))
	}
	lines = append(lines, "    `inserted_at` DateTime('UTC') DEFAULT now()")
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s\n(\n%s\n)\nENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(toDateTime(intDiv(kafka_timestamp_ms, 1000), 'UTC'))\nORDER BY (topic, partition, offset)%s",
		s.t(TableRejected), strings.Join(lines, ",\n"), s.tableSettings())
}

// progressDDL is store_progress and the materialized views that fill it: one
// row per INSERT block of decision_records or raw_events, written by
// ClickHouse in the same INSERT, after the block itself was stored. Its
// highest max_offset per topic-partition is the store's own record of what
// is already in ClickHouse, whatever the consumer group committed.
func (s schema) progressDDL() []string {
	out := []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s
(
    `+"`topic`"+` String,
    `+"`partition`"+` Int32,
    `+"`min_offset`"+` Int64,
    `+"`max_offset`"+` Int64,
    `+"`rows`"+` UInt64,
    `+"`inserted_at`"+` DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, max_offset)`, s.t(TableProgress))}
	for _, src := range []struct{ table, topic, partition, offset string }{
		{TableDecisions, ColTopic, ColPartition, ColOffset},
		{TableRawEvents, "topic", "partition", "offset"},
	} {
		out = append(out, fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %s TO %s AS
SELECT
    %s AS topic,
    %s AS partition,
    min(%s) AS min_offset,
    max(%s) AS max_offset,
    count() AS rows,
    now() AS inserted_at
FROM %s
GROUP BY %s, %s`, s.t(src.table+"_progress_mv"), s.t(TableProgress),
			quote(src.topic), quote(src.partition), quote(src.offset), quote(src.offset),
			s.t(src.table), quote(src.topic), quote(src.partition)))
	}
	return out
}

// versionsDDL is decision_versions and decision_superseded, both filled by
// materialized views in the same INSERT as decision_records.
//
// decision_versions holds every (record_id, version) with where it lives,
// sorted by record id: a drill-down into one record becomes a primary-key
// lookup.
//
// decision_superseded holds, for every stored version v > 1 of a record, the
// versions 1 … v-1 it supersedes. It stays small (one row per amendment) and
// is what makes "latest version" exact: FINAL collapses the versions of a
// record only when they share the sorting key, and a late event may change a
// record's tenant or start time; "(record_id, version) NOT IN decision_superseded"
// drops the older versions in every case.
func (s schema) versionsDDL() []string {
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s
(
    `+"`record_id`"+` String,
    `+"`version`"+` UInt32,
    `+"`tenant`"+` String,
    `+"`start_time`"+` DateTime('UTC'),
    `+"`kafka_partition`"+` Int32,
    `+"`kafka_offset`"+` Int64
)
ENGINE = ReplacingMergeTree
ORDER BY (record_id, version)`, s.t(TableVersions)),
		fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %s TO %s AS
SELECT record_id, version, tenant, start_time, kafka_partition, kafka_offset
FROM %s`, s.t(TableVersions+"_mv"), s.t(TableVersions), s.t(TableDecisions)),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s
(
    `+"`record_id`"+` String,
    `+"`superseded`"+` UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (record_id, superseded)`, s.t(TableSuperseded)),
		// range(n) is [0, n) on 18.16 (no two-argument form).
		fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %s TO %s AS
SELECT record_id, arrayJoin(arrayMap(x -> toUInt32(x + 1), range(toUInt32(version - 1)))) AS superseded
FROM %s
WHERE version > 1`, s.t(TableSuperseded+"_mv"), s.t(TableSuperseded), s.t(TableDecisions)),
	}
}
