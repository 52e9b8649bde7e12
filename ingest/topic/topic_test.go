package topic

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/raw"
)

// brokers returns a broker list for each backend: an in-process kfake cluster
// for fast runs, and the real broker when the local stack is up.
func backends(t *testing.T) map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"kfake": func(t *testing.T) []string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "x"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return c.ListenAddrs()
		},
		"kafka": func(t *testing.T) []string { return testenv.Kafka(t) },
	}
}

func testConfig(brokers []string) Config {
	c := NewDefaultConfig()
	c.Brokers = brokers
	c.CommitInterval = 50 * time.Millisecond
	return c
}

// recorder is a Handler that records what it saw and acks by a rule.
type recorder struct {
	mu   sync.Mutex
	seen []string
	ack  func(m *Message) bool
}

func (r *recorder) Handle(_ context.Context, msgs []*Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.seen = append(r.seen, string(m.Value))
		if r.ack(m) {
			m.Done()
		}
	}
	return nil
}

func (r *recorder) values() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCheckpointCapture is benthos's StreamTestCheckpointCapture on one
// partition: ack A, B and D, leave C and E un-acked, restart the reader, and C,
// D and E must come back (D because it sits behind C in the watermark).
func TestCheckpointCapture(t *testing.T) {
	for name, brokers := range backends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(brokers(t))
			cfg.Partitions = 1
			topics := raw.Topics{Prefix: testenv.Name(t) + "."}
			ctx := context.Background()
			if err := EnsureTopics(ctx, cfg, topics); err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for _, v := range []string{"A", "B", "C", "D", "E"} {
				if err := w.Produce(ctx, &kgo.Record{Topic: topics.RawLiteLLM(), Key: []byte("k"), Value: []byte(v)}); err != nil {
					t.Fatal(err)
				}
			}
			group := topics.Prefix + "g"
			run := func(ack func(*Message) bool, want int) []string {
				rec := &recorder{ack: ack}
				r, err := NewReader(cfg, group, []string{topics.RawLiteLLM()}, rec, ReaderOptions{})
				if err != nil {
					t.Fatal(err)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- r.Run(rctx) }()
				waitFor(t, fmt.Sprintf("%d messages", want), func() bool { return len(rec.values()) >= want })
				time.Sleep(200 * time.Millisecond) // let a commit tick pass
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				return rec.values()
			}
			first := run(func(m *Message) bool { v := string(m.Value); return v != "C" && v != "E" }, 5)
			if !slices.Equal(first, []string{"A", "B", "C", "D", "E"}) {
				t.Fatalf("first run saw %v", first)
			}
			second := run(func(*Message) bool { return true }, 3)
			if !slices.Equal(second, []string{"C", "D", "E"}) {
				t.Fatalf("after restart saw %v, want [C D E]", second)
			}
		})
	}
}

// TestOutOfOrderDone acks in reverse order from another goroutine; the
// watermark must only move once the prefix is complete, and everything must be
// committed at the end.
func TestOutOfOrderDone(t *testing.T) {
	for name, brokers := range backends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(brokers(t))
			topics := raw.Topics{Prefix: testenv.Name(t) + "."}
			ctx := context.Background()
			if err := EnsureTopics(ctx, cfg, topics); err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			const n = 2000
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: topics.RawLiteLLM(), Key: []byte(strconv.Itoa(i % 37)), Value: []byte(strconv.Itoa(i))}
			}
			if err := w.Produce(ctx, recs...); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var held []*Message
			h := HandlerFunc(func(_ context.Context, msgs []*Message) error {
				mu.Lock()
				held = append(held, msgs...)
				mu.Unlock()
				return nil
			})
			group := topics.Prefix + "g"
			r, err := NewReader(cfg, group, []string{topics.RawLiteLLM()}, h, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- r.Run(rctx) }()
			waitFor(t, "all messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == n })
			mu.Lock()
			for i := len(held) - 1; i >= 0; i-- {
				held[i].Done()
			}
			mu.Unlock()
			waitFor(t, "lag 0", func() bool {
				for _, s := range r.Stats() {
					if s.Lag != 0 || s.Outstanding != 0 {
						return false
					}
				}
				return true
			})
			time.Sleep(200 * time.Millisecond)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// A new member of the group must see nothing.
			rec := &recorder{ack: func(*Message) bool { return true }}
			r2, err := NewReader(cfg, group, []string{topics.RawLiteLLM()}, rec, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rctx2, cancel2 := context.WithTimeout(ctx, 3*time.Second)
			defer cancel2()
			if err := r2.Run(rctx2); err != nil {
				t.Fatal(err)
			}
			if v := rec.values(); len(v) != 0 {
				t.Fatalf("re-read %d committed messages, e.g. %v", len(v), v[:min(5, len(v))])
			}
		})
	}
}

func TestReadToEnd(t *testing.T) {
	for name, brokers := range backends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(brokers(t))
			topics := raw.Topics{Prefix: testenv.Name(t) + "."}
			ctx := context.Background()
			if err := EnsureTopics(ctx, cfg, topics); err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for i := range 100 {
				if err := w.Produce(ctx, &kgo.Record{Topic: topics.RawAlerts(), Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}); err != nil {
					t.Fatal(err)
				}
			}
			seen := 0
			if err := ReadToEnd(ctx, cfg, topics.RawAlerts(), nil, kgo.NewOffset().AtStart(), func(*kgo.Record) error { seen++; return nil }); err != nil {
				t.Fatal(err)
			}
			if seen != 100 {
				t.Fatalf("read %d records, want 100", seen)
			}
			var one *kgo.Record
			err = ReadToEnd(ctx, cfg, topics.RawAlerts(), []int32{0}, kgo.NewOffset().At(1), func(r *kgo.Record) error { one = r; return ErrStop })
			if err != nil || one == nil || one.Offset != 1 {
				t.Fatalf("fetch one: %v %+v", err, one)
			}
		})
	}
}

func TestExplicitPartition(t *testing.T) {
	for name, brokers := range backends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(brokers(t))
			topics := raw.Topics{Prefix: testenv.Name(t) + "."}
			ctx := context.Background()
			if err := EnsureTopics(ctx, cfg, topics); err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var recs []*kgo.Record
			for p := range int32(cfg.Partitions) {
				recs = append(recs, &kgo.Record{Topic: topics.RawGateway(), Key: []byte("control"), Partition: p,
					Headers: []kgo.RecordHeader{{Key: raw.HeaderExplicitPartition, Value: []byte(strconv.Itoa(int(p)))}}})
			}
			if err := w.Produce(ctx, recs...); err != nil {
				t.Fatal(err)
			}
			got := map[int32]int{}
			if err := ReadToEnd(ctx, cfg, topics.RawGateway(), nil, kgo.NewOffset().AtStart(), func(r *kgo.Record) error { got[r.Partition]++; return nil }); err != nil {
				t.Fatal(err)
			}
			for p := range int32(cfg.Partitions) {
				if got[p] != 1 {
					t.Fatalf("partition %d has %d control records, want 1 (all: %v)", p, got[p], got)
				}
			}
		})
	}
}
