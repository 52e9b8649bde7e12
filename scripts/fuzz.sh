#!/usr/bin/env bash
# scripts/fuzz.sh [DURATION] — run every fuzz target for DURATION (default 10s).
# Targets are found by name (func FuzzXxx in *_test.go); the seed corpora in
# testdata/fuzz run as part of plain `go test` too. A new input is minimised for
# at most 2 s (the default 60 s would eat a short run).
#
# Go 1.26's fuzz coordinator can end a clean run with a bare "context deadline
# exceeded" when -fuzztime runs out while a worker is mid-call
# (go.dev/issue/75804, fixed in Go 1.27). Such a run found nothing: no
# "Failing input written", no panic. It is run once more; a second failure, or
# any real finding, fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
d=${1:-10s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

fuzz() { # pkg fn
  go test -run '^$' -fuzz "^$2\$" -fuzztime "$d" -fuzzminimizetime 2s "$1" >"$out" 2>&1
}
coordinator_flake() {
  grep -q 'context deadline exceeded' "$out" &&
    ! grep -qE 'Failing input written|panic:' "$out"
}

targets=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing.F\)' . | sort |
  while read -r file; do
    grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed "s|^func |./$(dirname "${file#./}") |"
  done)

while read -r pkg fn; do
  echo "-- fuzz $pkg $fn ($d)"
  if fuzz "$pkg" "$fn"; then tail -n 2 "$out"; continue; fi
  if coordinator_flake; then
    echo "   coordinator deadline race (go.dev/issue/75804), nothing found; running again"
    if fuzz "$pkg" "$fn"; then tail -n 2 "$out"; continue; fi
  fi
  cat "$out"
  echo "fuzz $pkg $fn failed"
  exit 1
done <<<"$targets"
