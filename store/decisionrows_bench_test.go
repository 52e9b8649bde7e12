package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
)

// decisionBenchValues returns decisions-topic values as enrich publishes them
// (record.Decision.AppendCanonical): every version of every golden record
// under enrich/testdata/golden, then genDecision records up to n.
func decisionBenchValues(tb testing.TB, n int) [][]byte {
	tb.Helper()
	var out [][]byte
	add := func(d *record.Decision) {
		b, err := d.AppendCanonical(nil)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	files, _ := filepath.Glob(filepath.Join("..", "enrich", "testdata", "golden", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var ds []record.Decision
		if err := json.Unmarshal(b, &ds); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		for i := range ds {
			add(&ds[i])
		}
	}
	for i := 0; len(out) < n; i++ {
		d := genDecision(i)
		add(&d)
	}
	return out[:n]
}

// BenchmarkDecisionRows is the store's per-decision work before the INSERT,
// exactly as the writer does it (decisionRows.add: DecodeDecision of the
// topic's value, then the row appended to the ~170 column buffers), on
// canonical values, in batches of DefaultBatchRows (buffers kept from batch
// to batch, as the writer keeps them). One op is one decision;
// cpu-µs/record is user+system CPU time from getrusage.
func BenchmarkDecisionRows(b *testing.B) {
	values := decisionBenchValues(b, 2048)
	recs := make([]*kgo.Record, len(values))
	var bytes int64
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: "auditline.decisions", Offset: int64(i), Value: v}
		bytes += int64(len(v))
	}
	// The writer keeps a partition's rows from batch to batch (reset keeps
	// the column buffers): measure that steady state, after one batch.
	rows := newDecisionRows()
	for i := range DefaultBatchRows {
		if err := rows.add(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	rows.reset()
	b.SetBytes(bytes / int64(len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if rows.len() == DefaultBatchRows {
			rows.reset()
		}
		if err := rows.add(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(b.N), "cpu-µs/record")
}
