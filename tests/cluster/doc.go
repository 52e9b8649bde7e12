// Package cluster is auditline's cluster fault suite: the pipeline on the
// local cluster profile (scripts/cluster.sh: 3 Kafka brokers, ClickHouse 2
// shards × 2 replicas with ZooKeeper, MinIO over 4 drives), every stage run
// as two members of its consumer group, loses and duplicates nothing while
// members, a broker and ClickHouse replicas are SIGKILLed.
//
// The tests are behind the build tag "cluster" (as tests/fault is behind
// "fault"), so plain `go test ./...` neither needs nor skips them;
// scripts/cluster-suite.sh starts the profile, runs them and stops it, and
// scripts/test.sh calls it.
//
//   - TestMigrateCluster: `auditline migrate --cluster` applies the cluster
//     schema ON CLUSTER for real: every node holds the Replicated _local
//     tables and the Distributed tables; a second run changes nothing; an
//     unknown cluster is a clear error.
//   - TestClusterFaults: N LiteLLM payloads (AUDITLINE_CLUSTER_PAYLOADS)
//     through ingest×2 → enrich×2 → store×2 and archive×2; meanwhile one
//     member of each stage is SIGKILLed and restarted, a Kafka broker is
//     SIGKILLed and restarted, and a ClickHouse replica of each shard is
//     SIGKILLed and restarted (one after the other). Then every accepted
//     request must have exactly one latest record in ClickHouse (FINAL,
//     through the Distributed table: every shard) and one leaf in the
//     archive, both at the same version, `auditline verify` must pass, and
//     the counts are printed (and written to AUDITLINE_CLUSTER_SUMMARY).
package cluster
