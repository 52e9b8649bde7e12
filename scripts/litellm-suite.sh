#!/usr/bin/env bash
# scripts/litellm-suite.sh — the LiteLLM completeness suite (tests/litellm, build tag
# litellm; issue 14): the real LiteLLM proxy (deploy/litellm/start.sh) with the stock
# generic_api callback and with auditline's plugin under the same load, then ingest
# stopped, answering 503 and hanging mid-load, the proxy SIGKILLed and restarted on its
# spool, one of two workers SIGKILLed, a full spool and a corrupted spool, against the
# real pipeline on the shared servers. Prints the stock callback's missing count.
#
#   AUDITLINE_LITELLM_REQUESTS     requests per callback in the same-load phase (default 1500)
#   AUDITLINE_LITELLM_CONCURRENCY  requests at once (default 32)
#   AUDITLINE_LITELLM_OUTAGE       ingest stopped for (default 60s)
#   AUDITLINE_LITELLM_FAULT        ingest answering 503, then hanging, each for (default 30s)
#
# scripts/litellm-suite.sh --overhead instead runs BenchmarkProxyOverhead: the proxy's
# latency (p50/p99) and CPU per request with no callback, the stock callback and the
# plugin under the same load (AUDITLINE_LITELLM_OVERHEAD_REQUESTS, default 1000), and
# prints the table kept in BENCHMARKS.md (<!-- kept: litellm-overhead -->).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${AUDITLINE_KAFKA:-}" ] && [ -f .data/env ]; then
  # shellcheck disable=SC1091
  source .data/env
fi
export AUDITLINE_REQUIRE_SERVERS=1
mkdir -p .data/log
go vet -tags litellm ./tests/litellm
if [ "${1:-}" = "--overhead" ]; then
  export AUDITLINE_LITELLM_OVERHEAD_OUT=${AUDITLINE_LITELLM_OVERHEAD_OUT:-$PWD/.data/log/litellm-overhead.md}
  go test -tags litellm -count=1 -run '^$' -bench '^BenchmarkProxyOverhead$' -benchtime 1x -timeout 60m ./tests/litellm 2>&1 | tee .data/log/litellm-overhead.log
  exit "${PIPESTATUS[0]}"
fi
go test -tags litellm -count=1 -v -timeout 30m -run '^TestCompleteness$' ./tests/litellm 2>&1 | tee .data/log/litellm-suite.log
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || exit "$status"
# A skipped phase or a test that did not run (build tag, name) is a failure.
if grep -E -- '--- SKIP' .data/log/litellm-suite.log; then echo "litellm suite: skipped (see above)"; exit 1; fi
grep -q -- '^--- PASS: TestCompleteness' .data/log/litellm-suite.log || { echo "litellm suite: TestCompleteness did not run"; exit 1; }
