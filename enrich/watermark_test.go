package enrich

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kcfg, topics, w := kafkaTopics(ctx, t)

	cfg := NewDefaultConfig()
	cfg.Group = topics.Prefix + "enrich"
	cfg.Sampling.Auto.Enabled = false
	// Far from success_delay (1 s), so the two cannot be confused even on a
	// loaded box: the latency check below allows half of it.
	cfg.IdleAfter = 20 * time.Second
	cfg.TickInterval = 100 * time.Millisecond
	reg := prometheus.NewRegistry()
	st, err := New(cfg, topic.Shared{Kafka: kcfg, Topics: topics}, Settings{Logger: slog.New(slog.DiscardHandler), Registry: reg})
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
	// Let enrich join the group and read the first watermarks: two rounds'
	// worth. (A fixed 3 s may not cover the join on a loaded box, and the
	// rest of the join would then count as the success's latency.)
	marksRead := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			if mf.GetName() != "auditline_enrich_watermarks_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() == "ok" {
						n += m.GetCounter().GetValue()
					}
				}
			}
		}
		return n
	}
	round := float64(parts[topics.RawLiteLLM()] + parts[topics.RawGateway()])
	for deadline := time.Now().Add(60 * time.Second); marksRead() < 2*round; {
		if time.Now().After(deadline) {
			t.Fatalf("enrich read %v watermarks within 60s, want %v", marksRead(), 2*round)
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// fakePositions is the Reader's view of partition 0 for rig tests.
type fakePositions struct {
	hwm    map[string]int64
	paused bool
}

func (f *fakePositions) Position(topic string, _ int32) (int64, bool, bool) {
	h, ok := f.hwm[topic]
	return h, f.paused, ok
}

// rigEvent builds the record of a testdata file received at at.
func (r *rig) event(src raw.Source, file string, at time.Time) *kgo.Record {
	r.t.Helper()
	ev, err := r.f.Event(src, mustRead(r.t, file))
	if err != nil {
		r.t.Fatal(err)
	}
	return r.f.Raw(ev, at)
}

// watermarks hands the Processor a watermark of instance on both input
// topics, read at wall time at.
func (r *rig) watermarks(instance string, w, at time.Time) {
	r.t.Helper()
	r.clock = at
	for _, tn := range []string{testTopics.RawLiteLLM(), testTopics.RawGateway()} {
		rec := raw.WatermarkRecord(tn, 0, raw.Watermark{Instance: instance, At: w})
		if err := r.p.Handle(context.Background(), msgsOf(rec)); err != nil {
			r.t.Fatal(err)
		}
	}
}

// TestWatermarkStreamTime: in the Processor, with the wall clock stepped by
// hand. A success beside a sparse gateway event waits for the gateway's
// idle_after without watermarks, and only success_delay with them; watermark
// records make no decision, no DLQ record and no event count.
func TestWatermarkStreamTime(t *testing.T) {
	cfg := testConfig()
	t0 := time.Date(2025, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, withMarks := range []bool{false, true} {
		t.Run(fmt.Sprintf("watermarks=%v", withMarks), func(t *testing.T) {
			r := newRig(t, cfg, nil, nil)
			r.feed(r.event(raw.SourceGateway, "events/gateway_allow.json", t0),
				r.event(raw.SourceLiteLLM, "litellm/03b_fallback_attempt2_success_anthropic.json", t0.Add(100*time.Millisecond)))
			at := t0.Add(100*time.Millisecond + cfg.SuccessDelay + 200*time.Millisecond)
			if withMarks {
				r.watermarks("a", at.Add(-50*time.Millisecond), at)
			} else {
				r.idle(at.Sub(r.clock))
			}
			ds := r.k.decisions(t)
			if withMarks != (len(ds) == 1) {
				t.Fatalf("%d decisions %s after the success", len(ds), at.Sub(t0.Add(100*time.Millisecond)))
			}
			if !withMarks {
				r.idle(cfg.IdleAfter) // the gateway topic is idle now
				ds = r.k.decisions(t)
			}
			if len(ds) != 1 || ds[0].Version != 1 || len(ds[0].Evidence.Sources) != 2 {
				t.Fatalf("decisions %d, want one version 1 joining both events", len(ds))
			}
			if n := len(r.k.records(testTopics.DLQ())); n != 0 {
				t.Errorf("%d DLQ records", n)
			}
			var events float64
			for _, src := range []string{"gateway", "litellm"} {
				for _, res := range []string{"new", "joined"} {
					events += metricValue(r.p.m.events.WithLabelValues(src, res))
				}
			}
			if events != 2 {
				t.Errorf("%v events counted, want 2", events)
			}
			if withMarks {
				if n := metricValue(r.p.m.watermarks.WithLabelValues("ok")); n != 2 {
					t.Errorf("%v watermarks counted, want 2", n)
				}
			}
		})
	}
}

// TestLaggingPartition: a partition with records not handled yet is not idle:
// the wall clock does not move its stream time. Paused by backpressure with
// stream time held, it emits its oldest pending requests early instead.
func TestLaggingPartition(t *testing.T) {
	cfg := testConfig()
	t0 := time.Date(2025, 11, 22, 12, 0, 0, 0, time.UTC)
	r := newRig(t, cfg, nil, nil)
	pos := &fakePositions{hwm: map[string]int64{}}
	r.p.pos = pos
	ok := r.event(raw.SourceLiteLLM, "litellm/01_success_plain_openai.json", t0)
	r.feed(ok)
	pos.hwm[ok.Topic] = ok.Offset + 10 // nine more records wait
	r.idle(time.Minute)
	if n := len(r.k.decisions(t)); n != 0 {
		t.Fatalf("%d decisions: the wall clock moved a lagging partition", n)
	}
	pos.paused = true
	r.idle(cfg.TickInterval)
	ds := r.k.decisions(t)
	if len(ds) != 1 || ds[0].Completeness != record.TimedOut {
		t.Fatalf("paused and held: %d decisions, want the pending request emitted early, timed_out", len(ds))
	}
	if n := metricValue(r.p.m.early); n != 1 {
		t.Errorf("%v early emissions counted, want 1", n)
	}

	// Caught up: idle again, the wall clock moves stream time.
	r2 := newRig(t, cfg, nil, nil)
	pos2 := &fakePositions{hwm: map[string]int64{}}
	r2.p.pos = pos2
	ok2 := r2.event(raw.SourceLiteLLM, "litellm/01_success_plain_openai.json", t0)
	r2.feed(ok2)
	pos2.hwm[ok2.Topic] = ok2.Offset + 1
	r2.idle(cfg.IdleAfter + cfg.SuccessDelay + time.Second)
	if ds := r2.k.decisions(t); len(ds) != 1 || ds[0].Completeness != record.Complete {
		t.Fatalf("caught up: %d decisions, want the success emitted complete", len(ds))
	}
}
