#!/usr/bin/env bash
# scripts/fuzz.sh [DURATION] — run every fuzz target for DURATION (default 10s).
# Targets are found by name (func FuzzXxx in *_test.go); the seed corpora in
# testdata/fuzz run as part of plain `go test` too.
set -euo pipefail
cd "$(dirname "$0")/.."
d=${1:-10s}
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing.F\)' . | while read -r file; do
  pkg="./$(dirname "${file#./}")"
  grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //' | while read -r fn; do
    echo "-- fuzz $pkg $fn ($d)"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$d" "$pkg"
  done
done
