// Package topic is the only Kafka code in auditline: a Writer that returns only
// once every record is acknowledged by all in-sync replicas, a group Reader that
// commits nothing a Handler has not reported Done, a Scanner that reads
// partitions to their current end without a group (reusing its clients),
// Follow, which keeps reading a whole topic as a table, and EnsureTopics, which
// creates auditline's topics.
//
// Every Kafka client setting lives in Config (YAML section "kafka") and is
// turned into client options in one place (config.go), so a setting added
// there reaches every client. Constructors connect nothing: NewWriter's client
// connects on first use, a Reader joins its group only in Run.
//
// Delivery contract (DESIGN.md §4):
//
//   - Writer: idempotent producer, acks=all. Produce returns nil only when every
//     record it was given is durable. On error some records may still become
//     durable later; callers must treat the batch as not accepted (the sender
//     retries, and downstream de-duplicates by event id).
//   - Reader: each partition is handled by one goroutine, in offset order. The
//     Reader commits, per partition, the highest offset below which every message
//     was reported Done (the contiguous low watermark, as Jaeger's ingester did).
//     Commits for a partition stop the moment it is revoked or lost, under the
//     same mutex as the commit itself, so a new owner's progress is never
//     overwritten with ours.
//   - Scanner and Follow never commit and never join a group: they only read.
//   - Backpressure: a partition whose handed-out-but-not-Done messages exceed
//     MaxOutstanding in number or MaxOutstandingBytes in bytes is paused, and
//     resumed when both are back under half. A Handler that keeps messages
//     for long but needs only part of them (enrich's pending requests keep
//     the decoded event, not the payload) calls Message.Release, which drops
//     the value and counts what it kept. Memory for fetched records is
//     therefore bounded by partitions × (MaxOutstandingBytes + one fetch).
package topic
