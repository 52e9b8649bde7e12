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
	// modernSince is the first release that gets the features 18.16 lacks
	// where they pay or are asked for (a raw_events TTL; see docs/store.md).
	modernSince = dedupSince
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

// schema renders the DDL for one database and server.
type schema struct {
	db  string
	srv Server
	// variant, when set, is decision_records' layout instead of the one
	// layoutFor picks for srv (the layout benchmark and upgrade tests).
	variant *layout
}

func (s schema) t(name string) string { return quote(s.db) + "." + quote(name) }

// tableSettings is the SETTINGS clause of our MergeTree tables.
func (s schema) tableSettings() string {
	if s.srv.DedupToken() {
		// Keep the hashes of the last 1000 inserted blocks so that a retried
		// INSERT with the same insert_deduplication_token is dropped.
		return "\nSETTINGS index_granularity = 8192, " + dedupWindow
	}
	return "\nSETTINGS index_granularity = 8192"
}

// decisionRecordsDDL is decision_records: one row per record version.
func (s schema) decisionRecordsDDL() string { return s.decisionRecordsDDLAs(TableDecisions) }

// decisionRecordsDDLAs is decision_records' DDL under another name (a rebuild).
func (s schema) decisionRecordsDDLAs(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s\n(\n", s.t(name))
	var lines []string
	l := s.lay()
	cols := decisionColumns()
	for i := 0; i < len(cols); {
		c := cols[i]
		if c.nested == "" || l.flatNested() {
			lines = append(lines, "    "+l.colDef(c.Column))
			i++
			continue
		}
		// A Nested group: its element columns are consecutive.
		var inner []string
		j := i
		for ; j < len(cols) && cols[j].nested == c.nested; j++ {
			e := cols[j].Column
			typ := strings.TrimSuffix(strings.TrimPrefix(l.colType(e), "Array("), ")")
			inner = append(inner, "        "+quote(strings.TrimPrefix(e.Name, c.nested+"."))+" "+typ+l.codec(e))
			// Nested elements take no comments on 18.16.
		}
		lines = append(lines, "    "+quote(c.nested)+" Nested\n    (\n"+strings.Join(inner, ",\n")+"\n    )")
		i = j
	}
	for _, c := range kafkaColumns() {
		lines = append(lines, "    "+l.colDef(c))
	}
	lines = append(lines, "    `inserted_at` DateTime('UTC') DEFAULT now() COMMENT 'when the store inserted the row'")
	for _, q := range l.indexDefs() {
		lines = append(lines, "    "+q)
	}
	b.WriteString(strings.Join(lines, ",\n"))
	b.WriteString("\n)\n" + s.decisionLayout())
	return b.String()
}

// decisionLayout is everything of decision_records' DDL but its columns:
// engine, partitioning, sorting key and settings. A change here needs the
// table rebuilt (rebuild.go); a new column does not.
func (s schema) decisionLayout() string {
	return fmt.Sprintf("ENGINE = ReplacingMergeTree(%s)\nPARTITION BY %s\nORDER BY (%s)%s",
		decisionVersionCol, decisionPartition, decisionOrderBy, s.tableSettings())
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

// viewTargetsDedupDDL gives the tables the materialized views fill
// (store_progress, decision_versions, decision_superseded) the deduplication
// window decision_records has. Since 24.x a block that decision_records drops
// as a repeat (same insert_deduplication_token) still runs through the
// views, each of which derives a token for its own block: without a window on
// the view's table, a retried INSERT was stored once in decision_records but
// twice in the three others (measured on 26.9: 1/2/2/2 rows). With it (and
// deduplicate_blocks_in_dependent_materialized_views = 1, the default, which
// the store also sends) a retry adds nothing, and a retry of an INSERT that
// failed half-way through the views fills in exactly the views' blocks that
// are missing (TestRetriedInsert).
func (s schema) viewTargetsDedupDDL() []string {
	var out []string
	for _, t := range []string{TableProgress, TableVersions, TableSuperseded} {
		out = append(out, fmt.Sprintf("ALTER TABLE %s MODIFY SETTING %s", s.t(t), dedupWindow))
	}
	return out
}

// dedupWindow keeps the hashes of the last 1000 blocks inserted into a
// non-replicated table, so that a repeated block (same
// insert_deduplication_token) is dropped. Replicated tables deduplicate by
// default (replicated_deduplication_window).
const dedupWindow = "non_replicated_deduplication_window = 1000"

// versionsDDL is decision_versions and decision_superseded, both filled by
// materialized views in the same INSERT as decision_records.
//
// decision_versions holds every (record_id, version) with where it lives,
// sorted by record id: a drill-down into one record becomes a primary-key
// lookup.
//
// decision_superseded holds, for every stored version v > 1 of a record, the
// versions 1 … v-1 it supersedes. It stays small (one row per amendment) and
// is what makes "latest version" exact: decision_records keeps every version
// (the version is in its sorting key, so FINAL collapses only replayed
// copies), and "(record_id, version) NOT IN decision_superseded" drops the
// older ones — also when a late event changed a record's tenant or start.
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
