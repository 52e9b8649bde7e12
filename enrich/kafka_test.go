package enrich

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
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

// readDecisions reads the whole decisions topic.
func readDecisions(t testing.TB, cfg topic.Config, topics raw.Topics) (ds []record.Decision, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := topic.NewScanner(cfg)
	defer sc.Close()
	err := sc.ReadToEnd(ctx, topics.Decisions(), nil, topic.FromStart(), func(r *kgo.Record) error {
		var d record.Decision
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Errorf("decision %d/%d: %v", r.Partition, r.Offset, err)
			return nil
		}
		ds = append(ds, d)
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ds, recs
}

// kafkaTopics creates this test's raw and decision topics on the real
// broker (testenv.Kafka) and a writer to them, closed when the test ends.
func kafkaTopics(ctx context.Context, t *testing.T) (topic.Config, raw.Topics, *topic.Writer) {
	t.Helper()
	kcfg := topic.NewDefaultConfig()
	kcfg.Brokers = testenv.Kafka(t)
	kcfg.CommitInterval = 100 * time.Millisecond
	topics := raw.Topics{Prefix: testenv.Name(t) + "."}
	if err := topic.EnsureTopics(ctx, kcfg, topics); err != nil {
		t.Fatal(err)
	}
	w, err := topic.NewWriter(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return kcfg, topics, w
}

// TestStageOnKafka runs the enrich stage on the real broker: the example
// payload sets go through raw topics and come out as the same decisions the
// golden tests pin (apart from where their evidence sits in Kafka and when it
// was received), each in the partition of its request key.
func TestStageOnKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kcfg, topics, w := kafkaTopics(ctx, t)

	// Expected: what the golden cases give in memory (default rules only).
	want := map[string]record.Decision{}
	f, err := fixture.New(topics, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var recs []*kgo.Record
	for _, c := range goldenCases() {
		if c.cfg != nil {
			continue
		}
		for k, d := range latest(c.run(t, nil, true)) {
			want[k] = d
		}
		for _, a := range c.alerts {
			b, err := os.ReadFile(filepath.Join("testdata", a.file))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := f.Record(raw.SourceAlert, b, a.at)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
	}
	for _, c := range goldenCases() {
		if c.cfg != nil {
			continue
		}
		for _, in := range c.events {
			b, err := readFile(in.file)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := f.Event(in.src, b)
			if err != nil {
				t.Fatal(err)
			}
			// Received now (the wall clock drives idle partitions), in the
			// case's order.
			now = now.Add(time.Millisecond)
			recs = append(recs, f.Raw(ev, now))
		}
	}
	// Alerts first, as the golden cases assume they were received before.
	var alerts, events []*kgo.Record
	for _, r := range recs {
		r.Partition, r.Offset = 0, 0
		if r.Topic == topics.RawAlerts() {
			alerts = append(alerts, r)
		} else {
			events = append(events, r)
		}
	}
	if err := w.Produce(ctx, alerts...); err != nil {
		t.Fatal(err)
	}
	if err := w.Produce(ctx, events...); err != nil {
		t.Fatal(err)
	}

	cfg := NewDefaultConfig()
	cfg.Group = topics.Prefix + "enrich"
	cfg.Sampling.Auto.Enabled = false
	cfg.FailureGrace, cfg.LiteLLMWait, cfg.TickInterval = time.Second, 2*time.Second, 100*time.Millisecond
	// idle_after is the default (5 s), not 500 ms: a topic whose first
	// records a partition has not handled yet holds stream time back for at
	// most idle_after, and every event here was received before enrich
	// started, so a topic deemed idle lets stream time jump past every wait.
	// On a loaded box one topic's records can be handled more than 500 ms
	// after the other's, and requests would be emitted before their other
	// events were read (then amended, unlike their goldens).
	cfg.IdleAfter = DefaultIdleAfter
	st, err := New(cfg, topic.Shared{Kafka: kcfg, Topics: topics}, Settings{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = st.Run(runCtx) })
	deadline := time.Now().Add(90 * time.Second)
	var got map[string]record.Decision
	var positions []*kgo.Record
	for {
		var ds []record.Decision
		ds, positions = readDecisions(t, kcfg, topics)
		got = latest(ds)
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := st.Ready(ctx); err != nil {
		t.Errorf("Ready = %v", err)
	}
	stop()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("Run = %v", runErr)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records on Kafka, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		// Where the evidence sits and when it was received differ; every
		// other field must not.
		if w.Request.StartTime == w.Evidence.FirstReceivedAt {
			// No times in the payload: the receive time stands in.
			g.Request, w.Request = record.Request{}, record.Request{}
		}
		if len(w.Budget.Alerts) == 0 {
			// The alert table is shared by every case here.
			g.Budget.Alerts = w.Budget.Alerts
		}
		g.Evidence, w.Evidence = record.Evidence{}, record.Evidence{}
		clearReceiveTimes(&g)
		clearReceiveTimes(&w)
		for i := range g.Budget.Alerts {
			g.Budget.Alerts[i].ReceivedAt = 0
		}
		for i := range w.Budget.Alerts {
			w.Budget.Alerts[i].ReceivedAt = 0
		}
		if cg, cw := canonical(t, g), canonical(t, w); cg != cw {
			t.Errorf("request %s on Kafka differs from its golden:\n%s", k, firstDiff(cw, cg))
		}
	}
	// Co-partitioning: each decision sits in the partition of its key in the
	// raw topics.
	part := map[string]int32{}
	for _, r := range events {
		part[string(r.Key)] = r.Partition
	}
	for _, r := range positions {
		if p, ok := part[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("decision of %s in partition %d, its events in %d", r.Key, r.Partition, p)
		}
	}
}

// clearReceiveTimes zeroes the fields that are ingest's receive times (they
// differ between a run on Kafka and the golden's fixture clock).
func clearReceiveTimes(d *record.Decision) {
	a := &d.Approval
	a.RequestedAt, a.ApprovedAt, a.RejectedAt, a.ExecutedAt = 0, 0, 0, 0
	for i := range a.Decisions {
		a.Decisions[i].ReceivedAt = 0
	}
	for i := range d.Oversight {
		d.Oversight[i].ReceivedAt = 0
	}
}
