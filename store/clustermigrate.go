package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClusterInfo is what system.clusters says about a cluster on the node the
// connection reached.
type ClusterInfo struct {
	Shards   int // distinct shard_num
	Replicas int // rows (hosts) in all
}

// ReadCluster returns the shape of cluster as the connected node sees it, and
// an error naming the clusters it knows when cluster is not among them.
func ReadCluster(ctx context.Context, conn driver.Conn, cluster string) (ClusterInfo, error) {
	var shards, hosts uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(shard_num), count() FROM system.clusters WHERE cluster = ?", cluster).Scan(&shards, &hosts); err != nil {
		return ClusterInfo{}, fmt.Errorf("read system.clusters: %w", err)
	}
	if hosts == 0 {
		var known []string
		rows, err := conn.Query(ctx, "SELECT DISTINCT cluster FROM system.clusters ORDER BY cluster")
		if err == nil {
			for rows.Next() {
				var c string
				if rows.Scan(&c) == nil {
					known = append(known, c)
				}
			}
			rows.Close()
		}
		return ClusterInfo{}, fmt.Errorf("cluster %q is not in the server's remote_servers (it knows: %s)", cluster, strings.Join(known, ", "))
	}
	return ClusterInfo{Shards: int(shards), Replicas: int(hosts)}, nil
}

// MigrateCluster applies the cluster schema (ClusterPlan with Replicated
// engines) for database db to cluster, through the node conn reaches: every
// statement runs ON CLUSTER, so ClickHouse's distributed DDL queue (ZooKeeper
// or Keeper) runs it on each node and the call returns once every node did
// (distributed_ddl_task_timeout, 180 s by default; a node that is down makes
// the statement fail after it, and the same command finishes the job once
// the node is back). Every statement is idempotent (IF NOT EXISTS; views are
// dropped and created again), so running it twice is harmless. It returns a
// one-line description of each statement applied.
//
// Unlike Migrate it keeps no schema_migrations table: a cluster is upgraded
// by applying the plan of the new version, and columns record.Decision gains
// are not added by ALTER here (apply them ON CLUSTER to the _local and the
// Distributed table by hand; docs/store.md).
func MigrateCluster(ctx context.Context, conn driver.Conn, db, cluster string, srv Server, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.Default()
	}
	if _, err := ReadCluster(ctx, conn, cluster); err != nil {
		return nil, err
	}
	stmts, err := ClusterPlan(db, cluster, srv, true)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, q := range stmts {
		what, _, _ := strings.Cut(q, "\n")
		what = strings.TrimSuffix(what, " AS")
		if err := conn.Exec(ctx, q); err != nil {
			return done, fmt.Errorf("migrate --cluster: %s: %w", what, err)
		}
		log.Debug("cluster DDL applied", "statement", what)
		done = append(done, what)
	}
	return done, nil
}
