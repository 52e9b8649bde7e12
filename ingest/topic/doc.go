// Package topic is the only Kafka code in auditline: a Writer that returns only
// once every record is acknowledged by all in-sync replicas, a group Reader that
// commits nothing a Handler has not reported Done, a Scanner that reads a topic
// whole without a group, and Admin helpers that create topics.
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
//   - Backpressure: a partition whose handed-out-but-not-Done messages exceed
//     MaxOutstanding is paused, and resumed when half of them are Done. Memory is
//     therefore bounded by partitions × MaxOutstanding × record size.
package topic
