// Package store writes decision records (and, optionally, every raw source
// event) from Kafka into ClickHouse, where analysts query them in plain SQL
// (docs/sql.md), and owns the ClickHouse schema (`auditline migrate`).
//
// # Guarantee
//
// Every message of the decisions topic becomes exactly one visible row of
// decision_records_latest per record id (the highest version wins), and
// nothing is lost, whatever fails:
//
//   - A message is reported Done (so its offset may be committed) only after
//     the INSERT carrying it succeeded. A batch is one INSERT of one block,
//     which ClickHouse stores atomically.
//   - Batches are cut per partition by offset window: a batch never spans
//     two windows of store.batch_rows offsets, so a replay of the same
//     offsets cuts the same batches (and, on servers with
//     insert_deduplication_token, 22.2+, sends the same token,
//     table:topic-partition-minOffset-maxOffset, as ClickHouse Kafka Connect
//     does).
//   - ClickHouse itself records what it stored: materialized views write one
//     store_progress row per INSERT block, in the same INSERT. On assignment
//     of a partition the writer skips every offset at or below that record
//     (an earlier run inserted it but did not get to commit), and before it
//     retries a failed INSERT it checks whether the attempt was stored after
//     all (the reply was lost). This makes replays exactly-once on 18.16,
//     which has no deduplication token for non-replicated tables.
//   - ReplacingMergeTree on (tenant, start_time, record_id, version) is the
//     last layer: duplicate rows that slip through anyway (an INSERT split
//     across monthly partitions and interrupted half-way) collapse in merges
//     and under FINAL, which every view uses. Versions never collapse: every
//     version of a record stays readable, and the views pick the latest.
//   - ClickHouse down or slow: the INSERT is retried with exponential
//     backoff (store.retry_min … store.retry_max) for as long as the stage
//     runs; meanwhile the partition's messages stay un-Done, the Reader
//     pauses the partition at kafka.max_outstanding, and memory stays
//     bounded. Errors that no retry can fix (unknown table or column,
//     authentication) stop the stage with the fix in the message; nothing
//     after the failed batch is committed.
//   - A value that cannot become a row (undecodable JSON, no record id) is
//     stored unchanged in rejected_records with the reason, never dropped.
//   - On a cluster (decision_records and raw_events Distributed over
//     shards) an INSERT is one block per shard, stored independently, so
//     store_progress cannot speak for the whole batch: offsets it covers,
//     and every batch being retried, are verified against the rows each
//     shard holds, and only the missing rows are sent (sharded.go).
//
// # Choices
//
// The schema is derived from record.Fields, never listed by hand: each field
// is a column of the same name, a list of structs is a Nested group
// (parallel arrays), a time is a DateTime('UTC') column plus "<name>_ms"
// (Int64 Unix ms: 18.16 has no DateTime64). One schema runs on 18.16 and on
// current releases; only the deduplication token and the table setting that
// enables it depend on the server version (see docs/store.md).
//
// The writer uses the native protocol (clickhouse-go's HTTP protocol fails on
// 18.16) and columnar appends with an explicit column list.
package store
