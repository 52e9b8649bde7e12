#!/usr/bin/env bash
# scripts/deadcode.sh — fails when golang.org/x/tools/cmd/deadcode finds an
# unreachable function that is not a deliberate exception listed below. It runs
# `deadcode -test -tags fault ./...`: tests count as users, and tests/fault
# builds only with its tag (without it, the helpers only that suite uses —
# stacktest.PrivateServers, Servers.Private, testenv.Private.Signal — are
# reported too). deadcode is a tool: pinned here and installed into the tools
# folder (.tools, or $AUDITLINE_TOOLS), never into go.mod.
#
# Deliberate exceptions, one "file: func" per line between the markers, each
# with the reason it stays (an exception deadcode no longer reports is
# printed, so that the list stays true):
#
# BEGIN EXCEPTIONS
#   store/codec.go: DecisionColumns                     the store codec's column list, exported for the readers of decision_records (issue 17)
# END EXCEPTIONS
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../deploy/local/lib.sh
source deploy/local/lib.sh

DEADCODE_VERSION=v0.52.0   # golang.org/x/tools
bin="$TOOLS/deadcode-$DEADCODE_VERSION/deadcode"
if [ ! -x "$bin" ]; then
  log "deadcode: go install golang.org/x/tools/cmd/deadcode@$DEADCODE_VERSION"
  mkdir -p "$(dirname "$bin")"
  # Built outside the project module: a tool, not a dependency.
  (cd "$TOOLS" && GOBIN="$(dirname "$bin")" GOFLAGS=-mod=mod go install "golang.org/x/tools/cmd/deadcode@$DEADCODE_VERSION") \
    || die "go install of deadcode failed"
fi

exceptions=$(sed -n '/^# BEGIN EXCEPTIONS/,/^# END EXCEPTIONS/p' "$0" | sed -n 's/^#   \([^:]*\): \([^ ]*\).*/\1: unreachable func: \2/p')
report=$("$bin" -test -tags fault ./... | sed -E 's/:[0-9]+:[0-9]+: /: /')
unexpected=$(comm -23 <(sort <<<"$report" | sed '/^$/d') <(sort <<<"$exceptions"))
stale=$(comm -13 <(sort <<<"$report" | sed '/^$/d') <(sort <<<"$exceptions"))
if [ -n "$stale" ]; then
  echo "deadcode: these exceptions are no longer reported; remove them from scripts/deadcode.sh:"
  echo "$stale"
fi
if [ -n "$unexpected" ]; then
  echo "deadcode: unreachable functions (remove them, or list them as deliberate exceptions in scripts/deadcode.sh with the reason):"
  echo "$unexpected"
  exit 1
fi
echo "deadcode: nothing unreachable but the listed exceptions"
