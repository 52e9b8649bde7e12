package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/internal/fixture"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

var testTopics = raw.Topics{Prefix: "t."}

// memKafka is an in-memory log per topic and partition: the producer and the
// scanner of unit tests.
type memKafka struct {
	mu       sync.Mutex
	logs     map[string]map[int32][]*kgo.Record
	fail     error // returned by Produce while set
	scanFail int   // Scan fails this many more times
}

func newMemKafka() *memKafka { return &memKafka{logs: map[string]map[int32][]*kgo.Record{}} }

func (k *memKafka) append(r *kgo.Record) {
	if k.logs[r.Topic] == nil {
		k.logs[r.Topic] = map[int32][]*kgo.Record{}
	}
	r.Offset = int64(len(k.logs[r.Topic][r.Partition]))
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now()
	}
	k.logs[r.Topic][r.Partition] = append(k.logs[r.Topic][r.Partition], r)
}

func (k *memKafka) Produce(_ context.Context, recs ...*kgo.Record) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	for _, r := range recs {
		c := *r
		k.append(&c)
	}
	return nil
}

func (k *memKafka) Scan(_ context.Context, t string, p int32, from int64, byTime bool, fn func(*kgo.Record) error) error {
	k.mu.Lock()
	if k.scanFail > 0 {
		k.scanFail--
		k.mu.Unlock()
		return errors.New("broker not answering")
	}
	log := append([]*kgo.Record(nil), k.logs[t][p]...)
	k.mu.Unlock()
	for _, r := range log {
		if (byTime && r.Timestamp.UnixMilli() < from) || (!byTime && r.Offset < from) {
			continue
		}
		if err := fn(r); err != nil {
			if errors.Is(err, topic.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (k *memKafka) records(t string) []*kgo.Record {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*kgo.Record
	ps := make([]int, 0)
	for p := range k.logs[t] {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	for _, p := range ps {
		out = append(out, k.logs[t][int32(p)]...)
	}
	return out
}

// decisions returns every decision produced, in order.
func (k *memKafka) decisions(t testing.TB) []record.Decision {
	t.Helper()
	var out []record.Decision
	for _, r := range k.records(testTopics.Decisions()) {
		var d record.Decision
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Fatalf("decision at %d: %v", r.Offset, err)
		}
		out = append(out, d)
	}
	return out
}

// latest returns the highest version per request key.
func latest(ds []record.Decision) map[string]record.Decision {
	m := map[string]record.Decision{}
	for _, d := range ds {
		if old, ok := m[d.Request.RequestKey]; !ok || d.Version > old.Version {
			m[d.Request.RequestKey] = d
		}
	}
	return m
}

// rig drives one Processor on partition 0 with a fake wall clock.
type rig struct {
	t     testing.TB
	k     *memKafka
	p     *Processor
	f     *fixture.Factory
	clock time.Time
}

func testConfig() Config {
	c := NewDefaultConfig()
	c.Sampling.Auto.Enabled = false
	return c
}

func newRig(t testing.TB, cfg Config, k *memKafka, alerts *alertTable) *rig {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if k == nil {
		k = newMemKafka()
	}
	if alerts == nil {
		alerts = newAlertTable()
	}
	f, err := fixture.New(testTopics, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, k: k, f: f, clock: time.Date(2025, 11, 22, 10, 0, 0, 0, time.UTC)}
	r.p = newProcessor(cfg, testTopics, k, k, alerts, Settings{Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	r.p.wall = func() time.Time { return r.clock }
	if err := r.p.Assigned(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	return r
}

// rec builds the record of a testdata file, received delay after its own
// event time.
func (r *rig) rec(src raw.Source, file string, delay time.Duration) *kgo.Record {
	r.t.Helper()
	b, err := fixture.Read(file)
	if err != nil {
		r.t.Fatal(err)
	}
	ev, err := r.f.Event(src, b)
	if err != nil {
		r.t.Fatalf("%s: %v", file, err)
	}
	at := eventTime(r.t, src, ev.Value).Add(delay)
	return r.f.Raw(ev, at)
}

func eventTime(t testing.TB, src raw.Source, b []byte) time.Time {
	t.Helper()
	e := &event.Event{Source: src}
	var err error
	switch src {
	case raw.SourceLiteLLM:
		e.LiteLLM, err = event.ParseLiteLLM(b)
	case raw.SourceGateway:
		e.Gateway, err = event.ParseGateway(b)
	case raw.SourceOversight:
		e.Oversight, err = event.ParseOversight(b)
	case raw.SourceRequestStarted:
		e.Started, err = event.ParseStarted(b)
	default:
		return time.Date(2025, 11, 22, 10, 0, 0, 0, time.UTC)
	}
	if err != nil {
		t.Fatal(err)
	}
	if e.Time() == 0 {
		return time.Date(2025, 11, 22, 10, 0, 0, 0, time.UTC)
	}
	return e.Time().Std()
}

// feed hands records to the Processor one Handle call each, with the wall
// clock at each record's receive time.
func (r *rig) feed(recs ...*kgo.Record) {
	r.t.Helper()
	for _, rec := range recs {
		r.clock = raw.ReceivedAt(rec)
		if err := r.p.Handle(context.Background(), []*topic.Message{topic.NewMessage(rec)}); err != nil {
			r.t.Fatal(err)
		}
	}
}

// feedBatch hands records to the Processor in one Handle call.
func (r *rig) feedBatch(recs ...*kgo.Record) {
	r.t.Helper()
	msgs := make([]*topic.Message, len(recs))
	for i, rec := range recs {
		msgs[i] = topic.NewMessage(rec)
		r.clock = raw.ReceivedAt(rec)
	}
	if err := r.p.Handle(context.Background(), msgs); err != nil {
		r.t.Fatal(err)
	}
}

// idle advances the wall clock by d with no traffic and ticks.
func (r *rig) idle(d time.Duration) {
	r.t.Helper()
	r.clock = r.clock.Add(d)
	if err := r.p.Tick(context.Background(), 0, r.clock); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) state() *partition { return r.p.part(0) }

func mustJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}

// putRaw stores a raw record in the log at its own offset (the fixture
// numbers offsets the same way), so that Scan can read it back.
func (k *memKafka) putRaw(r *kgo.Record) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.logs[r.Topic] == nil {
		k.logs[r.Topic] = map[int32][]*kgo.Record{}
	}
	log := k.logs[r.Topic][r.Partition]
	for int64(len(log)) < r.Offset {
		log = append(log, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Offset: int64(len(log)), Timestamp: r.Timestamp})
	}
	k.logs[r.Topic][r.Partition] = append(log[:r.Offset], r)
}

func readFile(name string) ([]byte, error) { return fixture.Read(name) }

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fixture.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func msgsOf(recs ...*kgo.Record) []*topic.Message {
	out := make([]*topic.Message, len(recs))
	for i, r := range recs {
		out[i] = topic.NewMessage(r)
	}
	return out
}

// metricValue reads a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
