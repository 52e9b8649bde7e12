package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// SequencesSQL is the SELECT behind ClickHouse's emitter_sequences view (with
// {db} for the database): one row per (emitter, seq) that some version of some
// record accounts for — its source events, and the gateway_config that
// announced its configuration — with the earliest receive time.
const SequencesSQL = `SELECT emitter, seq, min(received_at_ms) AS received_at_ms, any(record_id) AS record_id, any(kind) AS kind
FROM
(
    SELECT sources.emitter AS emitter, sources.seq AS seq, sources.received_at_ms AS received_at_ms, record_id, sources.source AS kind
    FROM {db}.decision_records
    ARRAY JOIN sources
    WHERE sources.emitter != '' AND sources.seq > 0{where}
    UNION ALL
    SELECT emitter_id AS emitter, emitter_config_seq AS seq, first_received_at_ms AS received_at_ms, record_id, 'gateway_config' AS kind
    FROM {db}.decision_records
    WHERE emitter_id != '' AND emitter_config_seq > 0{where}
) AS _events
GROUP BY emitter, seq`

// GapsSQL is the SELECT behind the sequence_gaps view: per emitter, each run
// of numbers between 1 and the highest seen that no record accounts for, and
// since when it is known (the receive time of the number after it). It sorts
// every number of an emitter in memory (no lambda captures an array, so it
// stays linear: 2 million numbers take about 2 s on 18.16); for very large
// tables prefer `auditline gaps`, which streams. tupleElement, not gap.1:
// 18.16 reads gap.1 after ARRAY JOIN as a Nested column name.
const GapsSQL = `SELECT
    emitter,
    tupleElement(gap, 1) AS first_missing,
    tupleElement(gap, 2) AS last_missing,
    last_missing - first_missing + 1 AS missing,
    toDateTime(intDiv(tupleElement(gap, 3), 1000), 'UTC') AS known_since
FROM
(
    SELECT emitter, arrayMap(x -> x.1, s) AS seqs, arrayMap(x -> x.2, s) AS times
    FROM
    (
        SELECT emitter, arraySort(groupArray((seq, received_at_ms))) AS s
        FROM {db}.emitter_sequences
        GROUP BY emitter
    ) AS _sorted
) AS _arrays
ARRAY JOIN arrayFilter(g -> g.1 <= g.2,
    arrayMap((prev, cur, at) -> (prev + 1, cur - 1, at), arrayPushFront(arrayPopBack(seqs), toInt64(0)), seqs, times)) AS gap`

// Sequences returns SequencesSQL for database db, restricted to records first
// received at or after since (zero: every record).
func Sequences(db string, since time.Time) string {
	where := ""
	if !since.IsZero() {
		where = fmt.Sprintf(" AND first_received_at >= toDateTime(%d)", since.Unix())
	}
	return strings.NewReplacer("{db}", "`"+db+"`", "{where}", where).Replace(SequencesSQL)
}

// Read streams the numbers records account for into a new Builder, ordered by
// emitter and number (so the Builder holds one range per gap, not one entry
// per number). since as in Sequences. emitter, when not empty, restricts the
// read to that emitter.
func Read(ctx context.Context, conn driver.Conn, db string, since time.Time, emitter string) (*Builder, error) {
	q := "SELECT emitter, seq, received_at_ms FROM (" + Sequences(db, since) + ") AS _seq"
	var args []any
	if emitter != "" {
		q += " WHERE emitter = ?"
		args = append(args, emitter)
	}
	q += " ORDER BY emitter, seq"
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: read sequences: %w", err)
	}
	defer rows.Close()
	b := NewBuilder()
	for rows.Next() {
		var id string
		var seq, ms int64
		if err := rows.Scan(&id, &seq, &ms); err != nil {
			return nil, fmt.Errorf("ledger: read sequences: %w", err)
		}
		var at time.Time
		if ms > 0 {
			at = time.UnixMilli(ms).UTC()
		}
		b.Add(id, seq, at)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read sequences: %w", err)
	}
	return b, nil
}
