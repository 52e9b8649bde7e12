// Package fault is auditline's fault suite: the Jepsen-minded proof that
// nothing accepted is lost or duplicated when processes die and servers
// restart or stall.
//
// TestFaults (fault_test.go, build tag "fault"; run it with scripts/fault.sh)
// starts private Kafka, ClickHouse and MinIO servers (testenv.StartPrivate,
// so restarting them disturbs no other test), runs `auditline ingest`,
// `enrich`, `store` and `archive` as processes, and sends
// AUDITLINE_FAULT_PAYLOADS LiteLLM payloads (default 200,000 in
// scripts/fault.sh) with `auditline loadgen --accepted-keys`. Meanwhile a
// seeded schedule (the seed is printed; AUDITLINE_FAULT_SEED replays it)
// SIGKILLs and restarts every stage twice at random times, restarts Kafka,
// ClickHouse and MinIO once each, and freezes ClickHouse and MinIO with
// SIGSTOP/SIGCONT for some seconds.
//
// Afterwards every request key loadgen saw answered 2xx must have exactly one
// row at its latest version in ClickHouse (decision_records FINAL, as the
// views read it), exactly one leaf at its latest version in the archive
// (read manifest by manifest, each manifest's signature checked, from the
// batches its chain names), ClickHouse and the archive must agree on that
// version, and `auditline verify` must pass. It prints sent, accepted,
// refused, recorded, archived, duplicates visible and missing.
//
// Then the sealed archive of the run is attacked (WORM): deleting a batch, a
// manifest and a checkpoint version (with and without governance bypass),
// overwriting them and shortening their retention must all be refused by
// MinIO, verify must still pass, and a forged newer version of a batch (a
// plain PUT, which a versioned bucket allows) must make verify fail naming
// the object.
//
// The suite is behind a build tag rather than t.Skip so that plain
// `go test ./...` stays fast and scripts/test.sh's "no SKIP line" rule holds;
// scripts/test.sh calls scripts/fault.sh after the go test step.
package fault
