package stacktest

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/store"
)

// Record is a record's latest version in ClickHouse and how many rows
// decision_records FINAL (what the views read) shows at that version: 1
// unless a duplicate is visible.
type Record struct {
	Latest       uint32
	RowsAtLatest int
}

// Records returns every record of db's decision_records by record id.
func Records(ctx context.Context, conn driver.Conn, db string) (map[string]Record, error) {
	rows, err := conn.Query(ctx, "SELECT record_id, version, count() FROM `"+db+"`."+store.TableDecisions+" FINAL GROUP BY record_id, version")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Record{}
	for rows.Next() {
		var id string
		var v uint32
		var n uint64
		if err := rows.Scan(&id, &v, &n); err != nil {
			return nil, err
		}
		if c, ok := out[id]; !ok || v > c.Latest {
			out[id] = Record{Latest: v, RowsAtLatest: int(n)}
		}
	}
	return out, rows.Err()
}
