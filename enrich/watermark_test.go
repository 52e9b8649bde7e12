package enrich

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/internal/fixture"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// TestSuccessBesideSparseGateway: on the real broker, with watermarks
// written as ingest writes them, a success whose request also has a gateway
// event (the only one on raw.gateway: a sparse topic) is emitted
// success_delay after it was received — not after raw.gateway has been
// quiet for idle_after, which held stream time at the gateway event before
// watermarks. Its version 1 joins both events, and the watermark records
// reach no decision and no DLQ.
func TestSuccessBesideSparseGateway(t *testing.T) {
	brokers := testenv.Kafka(t)
	kcfg := topic.NewDefaultConfig()
	kcfg.Brokers = brokers
	kcfg.CommitInterval = 100 * time.Millisecond
	topics := raw.Topics{Prefix: testenv.Name(t) + "."}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := topic.EnsureTopics(ctx, kcfg, topics); err != nil {
		t.Fatal(err)
	}
	w, err := topic.NewWriter(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	cfg := NewDefaultConfig()
	cfg.Group = topics.Prefix + "enrich"
	cfg.Sampling.Auto.Enabled = false
	cfg.IdleAfter = 10 * time.Second // far from success_delay (1 s), so the two cannot be confused
	cfg.TickInterval = 100 * time.Millisecond
	st, err := New(cfg, topic.Shared{Kafka: kcfg, Topics: topics}, Settings{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = st.Run(runCtx) })
	defer func() {
		stop()
		wg.Wait()
		if runErr != nil {
			t.Errorf("Run = %v", runErr)
		}
	}()

	// One "ingest": every event is acknowledged before the next watermark,
	// which is then the clock (nothing in flight), as ingest computes it.
	var mu sync.Mutex // one producer at a time: an event, or a round of watermarks
	parts := map[string]int{}
	for _, tn := range []string{topics.RawLiteLLM(), topics.RawGateway()} {
		n, err := w.Partitions(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		parts[tn] = n
	}
	markCtx, stopMarks := context.WithCancel(ctx)
	var marks sync.WaitGroup
	marks.Go(func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			mu.Lock()
			wm := raw.Watermark{Instance: "test-ingest", At: time.Now().Truncate(time.Millisecond)}
			var recs []*kgo.Record
			for tn, n := range parts {
				for p := range n {
					recs = append(recs, raw.WatermarkRecord(tn, int32(p), wm))
				}
			}
			err := w.Produce(markCtx, recs...)
			mu.Unlock()
			if err != nil && markCtx.Err() == nil {
				t.Errorf("watermarks: %v", err)
			}
			select {
			case <-markCtx.Done():
				return
			case <-tk.C:
			}
		}
	})
	defer func() { stopMarks(); marks.Wait() }()

	f, err := fixture.New(topics, 0)
	if err != nil {
		t.Fatal(err)
	}
	event := func(src raw.Source, file string) *kgo.Record {
		b, err := readFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := f.Event(src, b)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		r := f.Raw(ev, time.Now())
		r.Partition, r.Offset = 0, 0
		if err := w.Produce(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Let enrich join the group and read the first watermarks.
	time.Sleep(3 * time.Second)
	gw := event(raw.SourceGateway, "events/gateway_allow.json")
	time.Sleep(100 * time.Millisecond)
	ok := event(raw.SourceLiteLLM, "litellm/03b_fallback_attempt2_success_anthropic.json")
	if string(gw.Key) != string(ok.Key) {
		t.Fatalf("fixtures of different requests: %q, %q", gw.Key, ok.Key)
	}
	received := raw.ReceivedAt(ok)

	var got []record.Decision
	var recs []*kgo.Record
	for deadline := time.Now().Add(60 * time.Second); len(got) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no decision within 60s")
		}
		time.Sleep(200 * time.Millisecond)
		got, recs = readDecisions(t, kcfg, topics)
	}
	d, rec := got[0], recs[0]
	latency := rec.Timestamp.Sub(received)
	t.Logf("success received %s, decision produced %s later (success_delay %s, idle_after %s)", received.Format(time.RFC3339Nano), latency, cfg.SuccessDelay, cfg.IdleAfter)
	if latency < cfg.SuccessDelay {
		t.Errorf("emitted %s after the success: before success_delay (%s)", latency, cfg.SuccessDelay)
	}
	if latency >= cfg.IdleAfter/2 {
		t.Errorf("emitted %s after the success: stream time waited for the sparse gateway topic (idle_after %s)", latency, cfg.IdleAfter)
	}
	if d.Version != 1 || len(d.Evidence.Sources) != 2 {
		t.Errorf("version %d with %d sources, want version 1 joining the gateway event and the success", d.Version, len(d.Evidence.Sources))
	}
	if len(got) != 1 {
		t.Errorf("%d decisions, want 1", len(got))
	}
	dlq := 0
	sc := topic.NewScanner(kcfg)
	defer sc.Close()
	if err := sc.ReadToEnd(ctx, topics.DLQ(), nil, topic.FromStart(), func(*kgo.Record) error { dlq++; return nil }); err != nil {
		t.Fatal(err)
	}
	if dlq != 0 {
		t.Errorf("%d records on the DLQ, want none (watermarks are not events)", dlq)
	}
}
