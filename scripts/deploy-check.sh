#!/usr/bin/env bash
# scripts/deploy-check.sh — validate the deployment artifacts without a
# container runtime or a cluster (deploy/validate's package doc lists every
# check): the Helm chart rendered by a pinned helm and every object decoded
# strictly with the Kubernetes API types, the compose file against the Compose
# specification, the Dockerfiles linted by BuildKit, the binary static as the
# Dockerfile builds it, the systemd units through systemd-analyze, and every
# shipped auditline.yaml loaded by auditline itself. scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/local/install.sh helm
tools=${AUDITLINE_TOOLS:-$PWD/.tools}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
t0=$SECONDS
# The same build as deploy/container/Dockerfile.
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -buildid=" -o "$out/auditline" ./cmd/auditline
# deploy/validate is its own module (the Kubernetes, Compose and BuildKit
# libraries stay out of auditline's go.mod): vet and test it, then run it.
cd deploy/validate
go vet ./...
go test -count=1 ./...
go run . -repo ../.. -helm "$tools/bin/helm" -auditline "$out/auditline"
echo "deploy-check: $((SECONDS - t0))s"
