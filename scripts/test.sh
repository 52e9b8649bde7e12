#!/usr/bin/env bash
# scripts/test.sh — run every test: unit tests, integration tests against the real
# servers (installed and started by deploy/local/ if missing), short fuzz runs.
# Integration tests that would skip for a missing server fail instead
# (AUDITLINE_REQUIRE_SERVERS=1). .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/local/install.sh all
deploy/local/install.sh chromium   # the dashboards' browser tests (dashboards/e2e)
deploy/litellm/install.sh          # the pinned LiteLLM proxy venv (tests/e2e starts private instances)
deploy/local/start.sh all
# shellcheck disable=SC1091
source .data/env
export AUDITLINE_REQUIRE_SERVERS=1

echo "== gofmt / go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
go vet ./...

echo "== go test"
go test -count=1 -timeout 30m ./... 2>&1 | tee .data/log/go-test.log
status=${PIPESTATUS[0]}
# A skipped test in CI hides a missing server: fail on any SKIP line.
if grep -E -- '--- SKIP' .data/log/go-test.log; then echo "tests were skipped (see above)"; exit 1; fi
[ "$status" = 0 ] || exit "$status"

echo "== fault suite (tests/fault; AUDITLINE_FAULT_PAYLOADS, default 200000)"
scripts/fault.sh

echo "== fuzz (short)"
scripts/fuzz.sh "${FUZZTIME:-10s}"
echo "all tests passed"
