// Package app assembles auditline from its stages: the one configuration
// file (Config: defaults, then the YAML file, then AUDITLINE_* environment
// overrides), its validation, the ordered list of stages, and Run, which
// builds the named stages, starts them and stops them. cmd/auditline reads
// flags and calls this package; tests and tools build a Config here too
// (internal/stacktest writes it as YAML for child processes).
//
// Guarantees:
//
//   - Nothing starts on a bad configuration: Load rejects unknown keys and
//     malformed values, Validate reports every problem at once, each prefixed
//     with its YAML key path (kafka.brokers, store.clickhouse.addr, …), and
//     Run builds every named stage before it starts any. A stage constructor
//     does no network I/O (it may read local files such as keys and tokens,
//     so that a bad one fails here too); Kafka clients are made when a stage
//     runs.
//   - Stages are started downstream-first (dashboard, archive, store, enrich,
//     ingest) and stopped upstream-first: on the first signal or the first
//     stage failure, ingest stops accepting and finishes what is in flight
//     before enrich is told to stop, and so on, each waiting for the one
//     before to return. Starting does not wait for readiness: stages only
//     meet through Kafka, which holds the data while a neighbour is down.
//   - Redacted (what 'auditline config' prints) replaces every field tagged
//     `secret:"true"` (passwords, S3 secret key, HMAC secrets, tokens,
//     password hashes) with "<redacted>"; tag a new secret where it is
//     declared.
package app
