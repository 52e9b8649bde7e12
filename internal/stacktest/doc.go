// Package stacktest runs auditline for tests, benchmarks and fault suites —
// the one harness every integration suite uses (tests/*, dashboards/e2e,
// cmd/auditline, the crash tests in enrich and sinks/archive, bench/):
//
//   - Binary: cmd/auditline built once per source state and shared by every
//     test package of a run (a content-addressed cache under os.TempDir,
//     guarded by a file lock; the only `go build` of the binary in test code).
//   - Servers: the shared local stack (gated like deploy/testenv: skipped
//     without it, failed under AUDITLINE_REQUIRE_SERVERS=1), or private
//     Kafka, ClickHouse or MinIO of the test's own (PrivateServers) that it
//     may stop, restart or freeze.
//   - Stack: one namespace on those servers — topic prefix, ClickHouse
//     database, archive prefix, consumer groups — with a typed configuration
//     (internal/app.Config, written as YAML for child processes), its archive
//     signing key, and its processes: stages as children (Start) or
//     in-process (RunInProcess), and any other process (Command).
//   - Proc: a supervised child process — start, SIGTERM with a clean-exit
//     check, SIGKILL, restart on an exit the test did not cause (Restart),
//     kill and exit counts, its log in a file with markers per start.
//   - Waits (WaitFor, WaitReady) and, when a test fails, the tail of every
//     process's log; a "panic:" in any log fails the test.
//   - Readers of what the pipeline produced: the latest version of every
//     record in ClickHouse (Records), the archive's leaves and offsets as an
//     auditor reads them (Archive: manifests opened with the signing key),
//     the keys and decisions on Kafka topics (TopicKeys, Decisions).
//
// Everything a Stack creates is removed when the test ends (its database; its
// topics are unique to it and left to the broker's retention), and every
// process it started is stopped, upstream first (in the reverse order of
// starting: start downstream first, as StartStages does).
package stacktest
