// Package tamper is the archive's tamper suite: it attacks a real archive on
// real MinIO the way issue 15 found `auditline verify` could be fooled, and
// checks that the auditor's tools — the real binary, with nothing but the
// bucket, the archive's public key and the witnesses — now catch every attack
// and name the object or the range.
//
// TestTamper (tamper_test.go) builds one archive with the real processes:
// `auditline archive` sealing two partitions over several checkpoints, two
// witnesses with their own keys and state — `auditline witness` and the
// independent litewitness (filippo.io/torchwood) — with a quorum of both,
// and an auditor's kept checkpoint (`verify --save-checkpoint`). Each attack
// then runs on its own copy of the archive (same log, same witnesses, another
// prefix of a bucket of the test's own):
//
//   - delete the newest batches of a partition with the newest checkpoints
//     (and their cosignatures): the witnesses have seen more leaves;
//   - delete all checkpoints: nothing anchored, the sealed offsets named; the
//     kept checkpoint is gone;
//   - delete a whole partition and every checkpoint: the kept checkpoint
//     names the partition's removed offsets;
//   - roll every partition back to an older checkpoint: the witnesses have
//     seen more; the kept checkpoint's heads are gone;
//   - re-sign a manifest and the newest checkpoint with a new key published
//     under keys/: untrusted signatures (keys come from the auditor);
//   - an insider appends a batch of 37 copied records signed with the real
//     key: each record version is sealed twice;
//   - roll back, then let the archiver go on sealing: both witnesses refuse
//     the shorter, forked log, and the archiver says so;
//
// and the untouched copy verifies with --require-anchor. Evidence packs are
// exported twice (byte-identical), pass their own VERIFY.sh and
// `verify-proof --pack`, and fail both once a batch is removed with
// SHA256SUMS recomputed (the full set of pack tamperings is in
// sinks/archive's TestExportPack).
package tamper
