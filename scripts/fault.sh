#!/usr/bin/env bash
# scripts/fault.sh — the fault suite (tests/fault): loadgen traffic through
# ingest → enrich → store/archive on private Kafka, ClickHouse and MinIO while
# every stage is SIGKILLed and restarted, each server restarted once and
# ClickHouse and MinIO frozen with SIGSTOP; then every accepted request must
# have exactly one latest record in ClickHouse and one leaf in the archive,
# and `auditline verify` must pass. Prints sent/accepted/refused/recorded/
# archived/duplicates/missing.
#
#   AUDITLINE_FAULT_PAYLOADS  LiteLLM payloads to send (default below)
#   AUDITLINE_FAULT_RATE      payloads per second (default 1000; faults are spread over the load)
#   AUDITLINE_FAULT_SEED      replay a run's fault schedule and traffic
#   AUDITLINE_FAULT_SETTLE    how long to wait for the pipeline to catch up (default 20m)
#   AUDITLINE_FAULT_LOGS      keep the stages' logs in this folder
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${AUDITLINE_KAFKA:-}" ] && [ -f .data/env ]; then
  # shellcheck disable=SC1091
  source .data/env
fi
export AUDITLINE_REQUIRE_SERVERS=1
export AUDITLINE_FAULT_PAYLOADS=${AUDITLINE_FAULT_PAYLOADS:-200000}
mkdir -p .data/log
export AUDITLINE_FAULT_SUMMARY=${AUDITLINE_FAULT_SUMMARY:-$PWD/.data/log/fault-summary.txt}
go vet -tags fault ./tests/fault
go test -tags fault -count=1 -v -timeout 90m -run '^TestFaults$' ./tests/fault 2>&1 | tee .data/log/fault.log
status=${PIPESTATUS[0]}
exit "$status"
