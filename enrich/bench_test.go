package enrich

import (
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/internal/fixture"
	"github.com/auditline/auditline/ingest/loadgen"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// discard acknowledges every record at once: the benchmark measures enrich,
// not the broker.
type discard struct{ n int }

func (d *discard) Produce(_ context.Context, recs ...*kgo.Record) error {
	d.n += len(recs)
	return nil
}

// benchTraffic makes n requests of loadgen's default mix (with gateway events
// for a fifth of them) as raw records of one partition, in receive order.
func benchTraffic(tb testing.TB, n int) (recs []*kgo.Record, bytes int64) {
	g, err := loadgen.New(loadgen.Config{Seed: 1, Gateway: 0.2})
	if err != nil {
		tb.Fatal(err)
	}
	f, err := fixture.New(testTopics, 0)
	if err != nil {
		tb.Fatal(err)
	}
	at := time.Date(2025, 11, 22, 10, 0, 0, 0, time.UTC)
	add := func(src raw.Source, b []byte) {
		rec, err := f.Record(src, b, at)
		if err != nil {
			tb.Fatal(err)
		}
		recs = append(recs, rec)
		bytes += int64(len(b))
	}
	for range n {
		r := g.Next()
		at = at.Add(20 * time.Millisecond)
		for _, b := range r.Gateway {
			add(raw.SourceGateway, b)
		}
		for _, b := range r.LiteLLM {
			add(raw.SourceLiteLLM, b)
		}
	}
	return recs, bytes
}

// BenchmarkEnrich runs loadgen traffic through one partition's Processor (one
// goroutine: the figure is per core) and, in the same run, decodes the same
// payloads into map[string]any — the least any consumer of this JSON pays —
// with encoding/json and with go-json-experiment/json (the decoder enrich
// uses). It reports records/s and events/s, both baselines and the ratios,
// and allocations and bytes per record.
func BenchmarkEnrich(b *testing.B) {
	const requests = 4000
	recs, size := benchTraffic(b, requests)

	// Baseline: plain decode of the same bytes.
	decStart := time.Now()
	decRounds := 0
	for time.Since(decStart) < time.Second || decRounds < 2 {
		for _, r := range recs {
			var v map[string]any
			if err := json.Unmarshal(r.Value, &v); err != nil && r.Topic == testTopics.RawLiteLLM() {
				// Python's NaN is not JSON: the baseline skips what it cannot read.
				continue
			}
		}
		decRounds++
	}
	decPerSec := float64(decRounds*len(recs)) / time.Since(decStart).Seconds()
	// The same with the decoder enrich uses (go-json-experiment/json).
	v2Start := time.Now()
	v2Rounds := 0
	for time.Since(v2Start) < time.Second || v2Rounds < 2 {
		for _, r := range recs {
			var v map[string]any
			_ = jsonv2.Unmarshal(r.Value, &v)
		}
		v2Rounds++
	}
	v2PerSec := float64(v2Rounds*len(recs)) / time.Since(v2Start).Seconds()

	// The ceiling: a typed decode of the same payloads (ceiling_test.go),
	// CPU time per event, with each decoder; the fastest is the ceiling.
	ceiling, ceilingName := 0.0, ""
	typed := map[string]float64{}
	for _, dec := range ceilingDecoders {
		c0, rounds := processCPU(), 0
		start := time.Now()
		for time.Since(start) < time.Second || rounds < 2 {
			for _, r := range recs {
				_ = dec.decode(raw.Header(r, raw.HeaderSource), r.Value)
			}
			rounds++
		}
		perEvent := (processCPU() - c0).Seconds() * 1e6 / float64(rounds*len(recs))
		typed["typed-"+dec.name+"-cpu-µs/event"] = perEvent // reported after b.Loop, which resets metrics
		if ceiling == 0 || perEvent < ceiling {
			ceiling, ceilingName = perEvent, dec.name
		}
	}
	b.Logf("typed-decode ceiling: %s, %.1f CPU µs per event", ceilingName, ceiling)

	cfg := NewDefaultConfig()
	var emitted int
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU()
	start := time.Now()
	rounds := 0
	for b.Loop() {
		prod := &discard{}
		p := newProcessor(cfg, testTopics, prod, newMemKafka(), newAlertTable(), Settings{Logger: slog.New(slog.DiscardHandler)})
		wall := time.Date(2025, 11, 22, 10, 0, 0, 0, time.UTC)
		p.wall = func() time.Time { return wall }
		ctx := context.Background()
		for i := 0; i < len(recs); i += 500 {
			batch := recs[i:min(i+500, len(recs))]
			msgs := make([]*topic.Message, len(batch))
			for j, r := range batch {
				msgs[j] = topic.NewMessage(r)
			}
			wall = raw.ReceivedAt(batch[len(batch)-1])
			if err := p.Handle(ctx, msgs); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Tick(ctx, 0, wall.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		emitted += prod.n
		rounds++
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	runtime.ReadMemStats(&ms1)
	if emitted != rounds*requests {
		b.Fatalf("emitted %d decisions in %d rounds of %d requests", emitted, rounds, requests)
	}
	recPerSec := float64(emitted) / elapsed.Seconds()
	evPerSec := float64(rounds*len(recs)) / elapsed.Seconds()
	b.ReportMetric(recPerSec, "records/s")
	b.ReportMetric(evPerSec, "events/s")
	b.ReportMetric(decPerSec, "baseline-decode-events/s")
	b.ReportMetric(evPerSec/decPerSec, "ratio-vs-decode")
	b.ReportMetric(v2PerSec, "baseline-decode-v2-events/s")
	b.ReportMetric(evPerSec/v2PerSec, "ratio-vs-decode-v2")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(emitted), "allocs/record")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(emitted), "B/record")
	b.ReportMetric(float64(size)/float64(len(recs)), "bytes/event")
	// CPU time (this process, all threads: GC included) per record: the
	// figure that does not move with other users of a shared machine.
	b.ReportMetric(cpu.Seconds()*1e6/float64(emitted), "cpu-µs/record")
	b.ReportMetric(cpu.Seconds()*1e6/float64(rounds*len(recs)), "cpu-µs/event")
	// Enrich against the fastest typed decode of the same events, in CPU
	// time (1 = enrich costs no more than decoding alone).
	b.ReportMetric(ceiling/(cpu.Seconds()*1e6/float64(rounds*len(recs))), "ratio-vs-typed-decode")
	for unit, v := range typed {
		b.ReportMetric(v, unit)
	}
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
