// Package archive is the archive stage: it consumes auditline.decisions and
// seals the records into S3 Object Lock, in a form an auditor can verify with
// read access to the bucket and our public key alone (package verify).
//
// Guarantee: every record of the decisions topic ends up in exactly one
// sealed batch, and a sealed batch can be neither altered, removed, reordered,
// copied nor overwritten without `auditline verify` naming it — including the
// newest batches, as long as a witness or a time-stamp authority anchors the
// log outside the bucket.
//
// How (DESIGN.md §4–5):
//
//   - Batches are per partition and offset range [from, to), cut by record
//     count, canonical bytes or age (archive.batch.*). The next batch of a
//     partition starts exactly where the previous one ended.
//   - Each batch is one Parquet object (package batch: columns derived from
//     record.Fields(), plus each record's RFC 8785 canonical bytes and its
//     RFC 6962 leaf hash, which binds the record to its topic, partition,
//     offset and Kafka timestamp: package merkletree, auditline.leaf/v2),
//     then one manifest (package manifest: a C2SP signed
//     note, Ed25519) naming the object's SHA-256, the RFC 6962 / RFC 9162
//     Merkle root, the offsets, and the SHA-256 of the partition's previous
//     manifest. Both are written once, with If-None-Match: *, under Object
//     Lock (COMPLIANCE, 7 years by default).
//   - The manifests are the archive's commit log. Messages are reported Done
//     (and their offsets committed) only after the manifest is stored. On
//     partition assignment the last manifest is read and every offset below
//     its end is skipped, so a crash between upload and commit duplicates
//     nothing; a crash between the Parquet upload and the manifest is healed
//     by rebuilding the batch and adopting the uploaded object when it holds
//     exactly the same records (else the stage stops: a conflict is for a
//     person to look at). The manifest key names only the chain slot (the
//     partition and first offset), so two writers racing for a partition (a
//     zombie after a rebalance) cannot fork the chain.
//   - A checkpoint over every partition's latest manifest is signed each
//     archive.checkpoint.interval and chained to the previous one
//     (checkpoint.go). It also appends the batches sealed since the previous
//     checkpoint to one global RFC 6962 log (package tlog) and states its
//     size and root, also as a C2SP tlog-checkpoint note.
//   - Anchors outside the bucket: the cosigner (cosigner.go) submits every
//     checkpoint note to the configured C2SP tlog-witnesses (package
//     witness; `auditline witness` is one) with a consistency proof, and
//     stores their cosignatures; a witness refuses a log that shrank or
//     forked, so removing the newest batches together with the newest
//     checkpoints is caught. It never holds up sealing: a witness that is
//     down is retried and caught up checkpoint by checkpoint. An RFC 3161
//     TSA (package tsa) may time-stamp each checkpoint.
//   - S3 errors are retried with backoff for as long as the partition is
//     ours; nothing is Done meanwhile, so the reader pauses and Kafka holds
//     the records. Permanent errors (no Object Lock, access denied, a
//     conflicting object) stop the stage.
//
// Choices: Parquet + zstd because auditors' tools (DuckDB, Spark, pandas) read
// it directly; canonical JSON beside the columns because the columns are a
// projection and the canonical bytes are the evidence; a hash chain of
// manifests per partition, because partitions are written independently by a
// consumer group, joined into one global log by the checkpoints, because a
// witness can only check that one log grows; signed notes because the format
// is specified (C2SP), implemented (x/mod), and checkable with openssl.
//
// The byte-level formats and what verify checks are in docs/archive.md;
// the auditor's side is package verify (verify, prove) and package evidence
// (export).
package archive
