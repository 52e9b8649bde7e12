package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Exactly-once across shards.
//
// On a cluster (deploy/clickhouse/cluster.sql, `auditline migrate --cluster`)
// decision_records and raw_events are Distributed tables: one INSERT is split
// by the sharding key into one block per shard, and each shard stores its
// block on its own. A failure can leave one shard with its part and another
// without, so neither "store_progress says the batch landed" (its rows live
// on the shards that took their part; read through the Distributed table it is
// the maximum over shards) nor "it did not" is true of the whole batch.
//
// The writer therefore works per shard in sharded mode (the table it writes
// is Distributed):
//
//   - store_progress still bounds the work: on assignment, every offset at or
//     below its maximum over all shards is verified, not skipped (on one
//     server it is skipped);
//   - a batch that holds such offsets, and a batch being retried after a
//     failed INSERT, first asks the Distributed table which of its offsets
//     each shard already holds (storedOffsets: a read of every shard), and
//     inserts only the others. What one shard took is not sent again; what
//     another shard lacks is sent, and lands on that shard (the sharding key
//     is a function of the row);
//   - the check and the INSERT are both retried until they succeed: if the
//     check cannot read a shard (both replicas down), nothing is inserted.
//
// Replicated tables add a second layer: a block a shard already holds
// (same rows, same order) is dropped by the replica (replicated
// deduplication), and ReplacingMergeTree collapses any row that slipped
// through under FINAL, as on one server. A replica that lags behind its
// shard's other replica may be the one the check reads
// (max_replica_delay_for_distributed_queries bounds how stale it may be);
// then a row can be inserted twice into one shard, which that last layer
// collapses.

// offsetColumns are the Kafka position columns of a table the writer fills.
func offsetColumns(table string) (topic, partition, offset string) {
	if table == TableDecisions {
		return ColTopic, ColPartition, ColOffset
	}
	return "topic", "partition", "offset"
}

// isDistributed reports whether db.table is a Distributed table (a cluster).
func isDistributed(ctx context.Context, conn driver.Conn, db, table string) (bool, error) {
	var engine string
	err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&engine)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read system.tables: %w", err)
	}
	return engine == "Distributed", nil
}

// storedOffsets returns the offsets in [from, to] of topic/partition that
// db.table holds, read from every shard.
func storedOffsets(ctx context.Context, conn driver.Conn, db, table, topicName string, partition int32, from, to int64) (map[int64]bool, error) {
	tc, pc, oc := offsetColumns(table)
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT %s FROM %s.%s WHERE %s = ? AND %s = ? AND %s BETWEEN ? AND ?",
		quote(oc), quote(db), quote(table), quote(tc), quote(pc), quote(oc)), topicName, partition, from, to)
	if err != nil {
		return nil, fmt.Errorf("read stored offsets of %s: %w", table, err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var o int64
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out[o] = true
	}
	return out, rows.Err()
}

// unstoredRows rebuilds p.rows from the pending messages that are neither
// rejected nor already stored on their shard; it returns how many it left out
// as stored.
func (w *writer) unstoredRows(ctx context.Context, p *partition) (int, error) {
	first, last := p.pending[0], p.pending[len(p.pending)-1]
	have, err := storedOffsets(ctx, w.conn, w.db, w.table, first.Topic, p.id, first.Offset, last.Offset)
	if err != nil {
		return 0, err
	}
	p.rows.reset()
	skipped := 0
	for _, m := range p.pending {
		if have[m.Offset] {
			skipped++
			continue
		}
		if err := p.rows.add(m.Record); err != nil {
			continue // in rejected_records already (flush)
		}
	}
	return skipped, nil
}
