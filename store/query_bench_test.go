package store

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
)

// BenchmarkQueries loads 1,000,000 synthetic records (2 % with a second
// version, a quarter of those moved to another tenant: loadDocsData with
// step 1) and times the three ways to read one tenant's latest records of
// one week, the query docs/sql.md calls the fast form:
//
//   - final: decision_records FINAL + the tenant/week filter, no guard
//     (wrong when a record moved tenant, shown as the floor);
//   - guard: the same + the latest-version guard (the documented fast form);
//   - view: decision_records_latest + the same filter (on 18.16 the filter
//     is not pushed into the view's FINAL).
//
// Each reports ms/query (the median of b.N runs would need more runs than a
// 2-core box affords; -benchtime 5x gives stable means).
//
//	go test ./store -run '^$' -bench Queries -benchtime 5x
func BenchmarkQueries(b *testing.B) {
	conn, db, _ := testDB(b)
	start := time.Now()
	loadDocsData(b, conn, db, 1)
	b.Logf("loaded 1,000,000 records (+2 %% versions) in %s", time.Since(start).Round(time.Second))
	q := dbConn(b, db)
	const filter = ` WHERE tenant = 'tenant-1'
  AND start_time >= toDateTime('2025-11-10 00:00:00') AND start_time < toDateTime('2025-11-17 00:00:00')`
	const cols = "SELECT record_id, version, start_time, requested_alias, provider, outcome, near_miss, cost_usd"
	const tail = " ORDER BY start_time DESC, record_id DESC LIMIT 50"
	for _, tc := range []struct{ name, sql string }{
		{"final", cols + " FROM " + TableDecisions + " FINAL" + filter + tail},
		{"guard", cols + " FROM " + TableDecisions + " FINAL" + filter +
			" AND (record_id, version) NOT IN (SELECT record_id, superseded FROM " + TableSuperseded + ")" + tail},
		{"view", cols + " FROM " + ViewLatest + filter + tail},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				rows, err := q.Query(context.Background(), tc.sql)
				if err != nil {
					b.Fatalf("%v\n%s", err, tc.sql)
				}
				n := 0
				for rows.Next() {
					n++
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				rows.Close()
				if n != 50 {
					b.Fatalf("%d rows, want 50", n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
		})
	}
}

// BenchmarkColumns is the store's CPU cost per record: decode (the JSON of
// one decision into record.Decision with DecodeDecision, the baseline) against decode + append
// to the ~170 column buffers (decisionRows.add), the writer's whole per-row
// work before the INSERT. It reports the share the columns add.
func BenchmarkColumns(b *testing.B) {
	const n = 1000
	values := make([][]byte, n)
	for i := range values {
		values[i] = mustJSON(b, genDecision(i))
	}
	var decode, add float64
	b.Run("decode", func(b *testing.B) {
		var i int
		for b.Loop() {
			var d record.Decision
			if err := DecodeDecision(values[i%n], &d); err != nil {
				b.Fatal(err)
			}
			i++
		}
		decode = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("decode+columns", func(b *testing.B) {
		r := newDecisionRows()
		var i int
		for b.Loop() {
			if r.len() == DefaultBatchRows {
				r.reset()
			}
			if err := r.add(&kgo.Record{Topic: "t", Offset: int64(i), Value: values[i%n]}); err != nil {
				b.Fatal(err)
			}
			i++
		}
		add = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(add/decode, "x_decode")
	})
}
