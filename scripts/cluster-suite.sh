#!/usr/bin/env bash
# scripts/cluster-suite.sh — the cluster suite (tests/cluster, build tag
# cluster): starts the local cluster profile (scripts/cluster.sh: 3 Kafka
# brokers, ClickHouse 2 shards x 2 replicas + ZooKeeper, MinIO over 4 drives),
# runs TestMigrateCluster and TestClusterFaults on it, prints the fault
# suite's counts and stops the profile (CLUSTER_KEEP=1 leaves it running).
#
#   AUDITLINE_CLUSTER_PAYLOADS  LiteLLM payloads in all (default 10000)
#   AUDITLINE_CLUSTER_RATE      payloads per second per loadgen (two run; default 200)
#   AUDITLINE_CLUSTER_SEED      replay a run's faults and traffic
#   AUDITLINE_CLUSTER_LOGS      keep the members' logs in this folder
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data/log
# Stop the profile however this ends (a failed start included).
if [ "${CLUSTER_KEEP:-}" != 1 ]; then trap 'scripts/cluster.sh stop' EXIT; fi
scripts/cluster.sh start
# shellcheck disable=SC1091
source "${CLUSTER_DATA:-.data/cluster}/env"
export AUDITLINE_CLUSTER_SUMMARY=${AUDITLINE_CLUSTER_SUMMARY:-$PWD/.data/log/cluster-summary.txt}
go vet -tags cluster ./tests/cluster
go test -tags cluster -count=1 -v -timeout 30m ./tests/cluster 2>&1 | tee .data/log/cluster.log
exit "${PIPESTATUS[0]}"
