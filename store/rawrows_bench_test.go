package store

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/loadgen"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/source"
	"github.com/auditline/auditline/privacy/capture"
)

// rawBenchRecords returns n raw.litellm records as ingest produces them
// (headers included) from loadgen's default mix, 512 payloads per body,
// plus every captured LiteLLM body under enrich/testdata/litellm.
func rawBenchRecords(tb testing.TB, n int) []*kgo.Record {
	tb.Helper()
	var payloads [][]byte
	files, _ := filepath.Glob(filepath.Join("..", "enrich", "testdata", "litellm", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		payloads = append(payloads, b)
	}
	g, err := loadgen.New(loadgen.Config{Seed: 17})
	if err != nil {
		tb.Fatal(err)
	}
	for len(payloads) < n {
		payloads = append(payloads, g.Next().LiteLLM...)
	}
	payloads = payloads[:n]
	at := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i, p := range payloads {
		ev, err := source.LiteLLM(p, body.Object, raw.FormatJSONArray)
		if err != nil {
			// a captured body that is not one StandardLoggingPayload (an
			// array, an alert): raw_events keeps it all the same
			ev.Event = raw.Event{Source: raw.SourceLiteLLM, Format: raw.FormatSingle, EventID: "x", Value: p}
		}
		sum := sha256.Sum256(p[:min(len(p), 64)])
		rec := raw.DefaultTopics.Record(ev.Event, at.Add(time.Duration(i)*time.Millisecond), hex.EncodeToString(sum[:]), i%512)
		rec.Partition, rec.Offset, rec.Timestamp = 0, int64(i), at
		recs = append(recs, rec)
	}
	return recs
}

// BenchmarkRawRows is the store's raw_events row building (rawRows.add) for
// realistic LiteLLM payloads under the default capture policy (hash), the
// way the store builds it (Store.rawCapture without pseudonyms). One op is
// one raw event; cpu-µs/event is user+system CPU time from getrusage.
func BenchmarkRawRows(b *testing.B) {
	recs := rawBenchRecords(b, 2048)
	var bytes int64
	for _, r := range recs {
		bytes += int64(len(r.Value))
	}
	rows := newRawRows(0, capture.New(capture.Default))
	b.SetBytes(bytes / int64(len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if rows.len() == len(recs) {
			rows.reset()
		}
		if err := rows.add(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(b.N), "cpu-µs/event")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
