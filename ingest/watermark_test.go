package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// TestStamperWatermark: W is a lower bound, per topic. Many bodies are
// stamped, narrowed to a random subset of the topics and finished
// concurrently on a clock that jitters and steps back, while watermarks are
// computed; for every watermark W of topic i (1) every payload stamped below
// W whose records go to i was finished before W was computed, and (2) no
// payload stamped after W was computed is stamped below it.
func TestStamperWatermark(t *testing.T) {
	var clock atomic.Int64
	clock.Store(1_000_000)
	topics := []string{"x.raw.litellm", "x.raw.gateway"}
	s := newStamper(func() time.Time {
		ms := clock.Add(int64(rand.IntN(3))) // creeps forward
		if rand.IntN(50) == 0 {
			ms -= int64(rand.IntN(20)) // and sometimes steps back
		}
		return time.UnixMilli(ms)
	}, topics)
	type payload struct {
		ms       int64
		to       [2]bool // its records go to topics[i]
		finished atomic.Bool
	}
	var (
		mu       sync.Mutex
		payloads []*payload
		lastW    [2]atomic.Int64 // the last W computed per topic
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				floor := max(lastW[0].Load(), lastW[1].Load())
				st := s.stamp()
				if st.at().UnixMilli() != st.ms {
					t.Errorf("stamp %v, ms %d", st.at(), st.ms)
				}
				if st.ms < floor {
					t.Errorf("stamped %d after watermark %d was computed", st.ms, floor)
				}
				p := &payload{ms: st.ms}
				var recs []*kgo.Record
				for i, tn := range topics {
					if rand.IntN(3) > 0 {
						p.to[i] = true
						recs = append(recs, &kgo.Record{Topic: tn})
					}
				}
				mu.Lock()
				payloads = append(payloads, p)
				mu.Unlock()
				st.narrow(recs)
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // the produce
				p.finished.Store(true)
				st.finish()
				st.finish() // harmless
			}
		}()
	}
	// At least a second, and then until enough was exercised: on a loaded
	// machine a fixed second may hold too few rounds and payloads (the
	// check below is about coverage, not speed).
	const minRounds, minPayloads = 50, 1000
	exercised := func(rounds int) bool {
		mu.Lock()
		defer mu.Unlock()
		return rounds >= minRounds && len(payloads) >= minPayloads
	}
	start, limit := time.Now(), time.Now().Add(2*time.Minute)
	rounds := 0
	for time.Since(start) < time.Second || (!exercised(rounds) && time.Now().Before(limit)) {
		for i := range topics {
			w := s.watermark(i).UnixMilli()
			if prev := lastW[i].Load(); w < prev {
				t.Fatalf("watermark of %s went back: %d after %d", topics[i], w, prev)
			}
			lastW[i].Store(w)
			mu.Lock()
			for _, p := range payloads {
				if p.to[i] && p.ms < w && !p.finished.Load() {
					t.Errorf("watermark %d of %s passed payload stamped %d that is not finished", w, topics[i], p.ms)
				}
			}
			mu.Unlock()
		}
		rounds++
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	n := len(payloads)
	mu.Unlock()
	if rounds < minRounds || n < minPayloads {
		t.Fatalf("too little was exercised: %d watermark rounds, %d payloads", rounds, n)
	}
	for i, o := range s.open {
		if len(o) != 0 {
			t.Errorf("%s: %d stamps still open after every payload finished", topics[i], len(o))
		}
	}
	// Nothing open: W is the clock (never below the floor).
	for i := range topics {
		if w, now := s.watermark(i).UnixMilli(), clock.Load(); w < lastW[i].Load() || w > now+3 {
			t.Errorf("idle watermark %d, clock %d, last %d", w, now, lastW[i].Load())
		}
	}
}

// TestStamperNarrow: a body whose records go to raw.litellm only does not
// hold back raw.gateway's watermark.
func TestStamperNarrow(t *testing.T) {
	now := time.UnixMilli(5000)
	s := newStamper(func() time.Time { return now }, []string{"l", "g"})
	st := s.stamp()
	now = now.Add(time.Second)
	if w := s.watermark(1); w.UnixMilli() != 5000 {
		t.Fatalf("before narrowing: gateway watermark %d, want 5000 (the body may still go there)", w.UnixMilli())
	}
	st.narrow([]*kgo.Record{{Topic: "l"}})
	if w := s.watermark(1); w.UnixMilli() != 6000 {
		t.Errorf("after narrowing to litellm: gateway watermark %d, want the clock 6000", w.UnixMilli())
	}
	if w := s.watermark(0); w.UnixMilli() != 5000 {
		t.Errorf("litellm watermark %d, want 5000 (the body is in flight)", w.UnixMilli())
	}
	st.finish()
	if w := s.watermark(0); w.UnixMilli() != 6000 {
		t.Errorf("after finish: litellm watermark %d, want 6000", w.UnixMilli())
	}
}

// TestWatermarkRecords: a running ingest writes watermarks to every
// partition of raw.litellm and raw.gateway (and to no other topic); each
// names this process and never goes back; the events posted are not
// watermarks and sit below a watermark at or above their receive time; on
// shutdown the last watermark of every partition says the process leaves.
func TestWatermarkRecords(t *testing.T) {
	h := start(t, testenv.Kafka(t), func(c *Config) { c.WatermarkInterval = 100 * time.Millisecond })
	body := []byte(`[{"id":"wm-1","status":"success","litellm_call_id":"wm-k1","call_type":"completion"},{"id":"wm-2","status":"success","litellm_call_id":"wm-k2","call_type":"completion"}]`)
	if r := h.post("/v1/litellm", tokAll, body); r.code != 200 {
		t.Fatalf("post: %d %s", r.code, r.body)
	}
	// Two rounds per topic acknowledged after the post (the box may be slow).
	base := h.counter("auditline_ingest_watermarks_total", "result", "ok")
	for wait := time.Now().Add(30 * time.Second); h.counter("auditline_ingest_watermarks_total", "result", "ok") < base+4; {
		if time.Now().After(wait) {
			t.Fatal("no two watermark rounds acknowledged within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parts, err := topic.NewWriter(h.kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer parts.Close()
	events := h.records(h.topics.RawLiteLLM())
	if len(events) != 2 {
		t.Fatalf("raw.litellm holds %d events, want 2", len(events))
	}
	for _, tn := range []string{h.topics.RawLiteLLM(), h.topics.RawGateway()} {
		n, err := parts.Partitions(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		byPart := map[int32][]raw.Watermark{}
		offsets := map[int32][]int64{}
		for _, r := range h.watermarks(tn) {
			w, ok := raw.ParseWatermark(r)
			if !ok {
				t.Fatalf("%s/%d@%d: malformed watermark %v", tn, r.Partition, r.Offset, r.Headers)
			}
			if w.Instance != h.srv.instance {
				t.Errorf("%s: watermark of instance %q, want %q", tn, w.Instance, h.srv.instance)
			}
			if raw.Header(r, raw.HeaderReceivedAt) != "" || raw.Header(r, raw.HeaderEventID) != "" {
				t.Errorf("%s: a watermark carries event headers: %v", tn, r.Headers)
			}
			byPart[r.Partition] = append(byPart[r.Partition], w)
			offsets[r.Partition] = append(offsets[r.Partition], r.Offset)
		}
		if len(byPart) != n {
			t.Fatalf("%s: watermarks on %d partitions, want all %d", tn, len(byPart), n)
		}
		for p, ws := range byPart {
			if len(ws) < 2 {
				t.Errorf("%s/%d: %d watermarks, want at least one round and the leaving one", tn, p, len(ws))
			}
			for i := 1; i < len(ws); i++ {
				if ws[i].At.Before(ws[i-1].At) {
					t.Errorf("%s/%d: watermark went back: %v after %v", tn, p, ws[i].At, ws[i-1].At)
				}
				if ws[i-1].Leaving {
					t.Errorf("%s/%d: a watermark after the leaving one", tn, p)
				}
			}
			if !ws[len(ws)-1].Leaving {
				t.Errorf("%s/%d: the last watermark does not say the process left", tn, p)
			}
		}
		if tn != h.topics.RawLiteLLM() {
			continue
		}
		// Each event sits below every watermark above its receive time.
		for _, ev := range events {
			at := raw.ReceivedAt(ev)
			for i, w := range byPart[ev.Partition] {
				if w.At.After(at) && offsets[ev.Partition][i] < ev.Offset {
					t.Errorf("event received %v at offset %d, after watermark %v at offset %d", at, ev.Offset, w.At, offsets[ev.Partition][i])
				}
			}
		}
	}
	for _, tn := range []string{h.topics.RawAlerts(), h.topics.RawAdmin(), h.topics.DLQ()} {
		if ws := h.watermarks(tn); len(ws) != 0 {
			t.Errorf("%s: %d watermark records, want none", tn, len(ws))
		}
	}
}

func TestWatermarkIntervalValidate(t *testing.T) {
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{{0, true}, {DefaultWatermarkInterval, true}, {50 * time.Millisecond, true}, {5 * time.Second, true},
		{time.Millisecond, false}, {6 * time.Second, false}, {-time.Second, false}} {
		c := testConfig()
		c.WatermarkInterval = tc.d
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("watermark_interval %s: err %v, want ok=%v", tc.d, err, tc.ok)
		}
	}
}

// gatedMarks is a watermark producer that fails until open is set.
type gatedMarks struct {
	fakeProducer
	open atomic.Bool
}

func (g *gatedMarks) Produce(ctx context.Context, recs ...*kgo.Record) error {
	if !g.open.Load() {
		return errors.New("broker not reachable yet")
	}
	return g.fakeProducer.Produce(ctx, recs...)
}

// TestJoinGate: until this instance's first watermark is acknowledged in
// every watermark topic, a body gets a retryable 503 (no receive time is
// stamped, nothing is produced) and /readyz says not ready; once it is,
// bodies are accepted.
func TestJoinGate(t *testing.T) {
	fp := &fakeProducer{}
	cfg := testConfig()
	cfg.WatermarkInterval = 50 * time.Millisecond
	cfg.ProduceTimeout = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	topics := raw.Topics{Prefix: "fake."}
	srv, err := newServer(cfg, topics, Settings{Registry: reg}, fp, fp)
	if err != nil {
		t.Fatal(err)
	}
	marks := &gatedMarks{}
	srv.marks = marks
	h := serve(t, srv, reg, topic.Config{}, topics)
	b := example(t, "01_success_plain_openai.json")
	r := h.post("/v1/litellm", tokAll, b)
	if r.code != 503 || r.err.Reason != "kafka_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("before the first watermark: %d %s, want 503 kafka_unavailable", r.code, r.body)
	}
	if n := len(fp.all()); n != 0 {
		t.Fatalf("%d records produced before the first watermark", n)
	}
	if err := srv.Ready(context.Background()); err == nil {
		t.Error("ready before the first watermark")
	}
	marks.open.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = h.post("/v1/litellm", tokAll, b)
		if r.code == 200 || time.Now().After(deadline) {
			break
		}
	}
	if r.code != 200 {
		t.Fatalf("after the first watermarks: %d %s", r.code, r.body)
	}
	if err := srv.Ready(context.Background()); err != nil {
		t.Errorf("not ready after the first watermarks: %v", err)
	}
	// Each watermark topic got a watermark of this instance in every
	// partition before the body's records were produced.
	for _, tp := range []string{topics.RawLiteLLM(), topics.RawGateway()} {
		parts := map[int32]bool{}
		for _, rec := range marks.all() {
			if rec.Topic == tp {
				parts[rec.Partition] = true
			}
		}
		if len(parts) != 3 {
			t.Errorf("%s: watermarks in %d partitions, want 3", tp, len(parts))
		}
	}
}
