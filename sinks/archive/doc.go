// Package archive is the archive stage: it consumes auditline.decisions and
// seals the records into S3 Object Lock, in a form an auditor can verify with
// read access to the bucket and our public key alone (package verify).
//
// Guarantee: every record of the decisions topic ends up in exactly one
// sealed batch, and a sealed batch can be neither altered, removed, reordered
// nor overwritten without `auditline verify` naming it.
//
// How (DESIGN.md §4–5):
//
//   - Batches are per partition and offset range [from, to), cut by record
//     count, canonical bytes or age (archive.batch.*). The next batch of a
//     partition starts exactly where the previous one ended.
//   - Each batch is one Parquet object (package batch: columns derived from
//     record.Fields(), plus each record's RFC 8785 canonical bytes and its
//     RFC 6962 leaf hash), then one manifest (package manifest: a C2SP signed
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
//     archive.checkpoint.interval and chained to the previous one, optionally
//     stamped by an RFC 3161 TSA (package tsa), so that deleting the newest
//     batches or a checkpoint is visible too.
//   - S3 errors are retried with backoff for as long as the partition is
//     ours; nothing is Done meanwhile, so the reader pauses and Kafka holds
//     the records. Permanent errors (no Object Lock, access denied, a
//     conflicting object) stop the stage.
//
// Choices: Parquet + zstd because auditors' tools (DuckDB, Spark, pandas) read
// it directly; canonical JSON beside the columns because the columns are a
// projection and the canonical bytes are the evidence; a hash chain of
// manifests plus checkpoints rather than one global Merkle log because
// partitions are written independently by a consumer group; signed notes
// because the format is specified (C2SP), implemented (x/mod), and checkable
// with openssl.
package archive
