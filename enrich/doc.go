// Package enrich is `auditline enrich`: it joins the source events of each
// user request (LiteLLM payloads from raw.litellm; gateway and oversight
// events from raw.gateway) into a decision record (enrich/record.Decision)
// and produces it to the decisions topic. docs/enrich.md is the operator's
// guide; docs/decision-record.md describes every field.
//
// # Guarantees
//
//   - Nothing is lost. An input event is reported Done (and so may be
//     committed) only once the Decision reflecting it — or its DLQ record —
//     is acknowledged by Kafka (topic.Writer: acks=all, idempotent). The
//     Reader commits the contiguous low watermark, so a request still waiting
//     for its final event holds back its partition's commits: the price of
//     losing nothing, bounded by the waits below and by max_pending. After a
//     crash the events from the committed offset on are read again.
//   - Deterministic output. A Decision is a pure function of the set of its
//     request's events (enrich/fold): duplicates and arrival order do not
//     change it, record ids are derived from the request key, and sampling
//     from the record id. A replay therefore yields the same records.
//   - No double emission after a restart. On assignment of partition p the
//     decisions emitted to p within the amend window are re-read
//     (Processor.Assigned), so events read again whose record already carries
//     them are recognised and emit nothing, and a late event still amends the
//     right version. The crash test (crash_test.go) kills the process with
//     SIGKILL mid-stream of 100,000 events and checks one latest record per
//     request, none missing, none conflicting.
//
// # Completion, in stream time
//
// Timeouts run on stream time, never on the wall clock, so a replay times
// out the same requests (streamClock): a success is final and is emitted once
// stream time passes its receive time by success_delay; a request whose
// latest LiteLLM event is a failure (a fallback may still succeed: LiteLLM
// sends only the first failure and the final success) is emitted complete
// with outcome failure or blocked after failure_grace; a request with only
// gateway or oversight events is emitted timed_out after litellm_wait.
//
// Stream time follows ingest's watermarks (raw.Watermark; streamClock): each
// ingest process writes to every partition "every event I received before W
// is at a lower offset", so once the latest watermark of every live instance
// is read, stream time may reach the lowest — a sparse topic no longer holds
// it at its last event. Only a partition that is idle (no watermark or event
// within idle_after, nothing unread) lets the wall clock advance stream time
// — the one case in which a replay may cut a request at another point; its
// latest version is still the same, only version numbers and completeness
// may differ.
//
// # Versions and amendments
//
// The first emission is version 1. An event arriving after emission makes
// version n+1, completeness amended (events of one poll are coalesced into
// one version); a duplicate emits nothing. Recently emitted records are kept
// per partition (bounded by cache_bytes and amend_window). A record known
// only from the decisions topic (after a restart) is amended by reading its
// source events back from the raw topics at the offsets its evidence lists,
// checking each SHA-256. An oversight event with a decision_ref is joined to
// a record that left memory long ago by reading that decision back. A review
// whose record is in neither place goes to the DLQ with reason
// late_beyond_amend_window (counted; the raw event stays in Kafka and in
// ClickHouse's raw_events).
//
// # Choices, and where they improve on the first design
//
//   - Stream time is the lower mark of the two input topics, not the highest
//     receive time seen: a topic read ahead of the other during catch-up
//     cannot time out requests whose events sit unread in the other, and a
//     success read before its gateway event joins it into version 1 instead
//     of being amended.
//   - Watermarks written by ingest, not a wall-clock margin, let stream time
//     pass a quiet topic: a wall-clock rule at the live tip was tried and
//     failed the crash test (bench/PROFILE.md, issue 17), because it judges
//     a success due before a gateway event stamped at the same time but
//     acknowledged later. A watermark is written only after every event
//     below it was acknowledged, so it cannot pass one. An ingest instance
//     that stops writing them is dropped by stream position (other
//     instances' watermarks), so a replay drops it at the same point.
//   - LiteLLM and gateway events are never judged late by their own
//     timestamps: that would trust the sender's clock, and a skewed proxy
//     would send every request to the DLQ. Only oversight events, which by
//     nature concern an existing record, can be late.
//   - Sampling is sticky across versions: an amendment never takes a record
//     out of a review queue.
//   - Decisions go to partition p explicitly (raw.HeaderExplicitPartition),
//     the partition their events came from, so that the rebuild of partition
//     p reads exactly its own records whatever partitioner produced the raw
//     events.
//   - Budget alerts are a table built by following raw.alerts from its
//     start (topic.Follow), loaded before the first record is built; a call
//     gets the latest alert per entity received at or before its end. An
//     alert received after a record was emitted does not amend it.
package enrich
