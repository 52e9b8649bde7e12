#!/usr/bin/env bash
# bench.sh [--quick] [--out FILE] [bench flags…] — run every benchmark on the
# local real stack and write BENCHMARKS.md from this run's figures (see
# bench/main.go). The full run takes about 15 minutes; --quick is a smoke test
# of the harness (tiny N, a few minutes, its figures are not to be quoted) and
# writes to a temporary file unless --out is given.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/local/start.sh all >/dev/null
# shellcheck disable=SC1091
source "${AUDITLINE_DATA:-.data}/env"
args=("$@")
quick=0; out=0
for a in "$@"; do
  case "$a" in --quick|-quick) quick=1 ;; --out|-out|--out=*|-out=*) out=1 ;; esac
done
if [ "$quick" = 1 ] && [ "$out" = 0 ]; then
  args+=(--out "${TMPDIR:-/tmp}/BENCHMARKS.quick.md")
fi
exec go run ./bench "${args[@]}"
