package topic

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
			sc := NewScanner(cfg)
			defer sc.Close()
			seen := 0
			if err := sc.ReadToEnd(ctx, topics.RawAlerts(), nil, FromStart(), func(*kgo.Record) error { seen++; return nil }); err != nil {
				t.Fatal(err)
			}
			if seen != 100 {
				t.Fatalf("read %d records, want 100", seen)
			}
			var one *kgo.Record
			err = sc.ReadToEnd(ctx, topics.RawAlerts(), []int32{0}, FromOffset(1), func(r *kgo.Record) error { one = r; return ErrStop })
			if err != nil || one == nil || one.Offset != 1 {
				t.Fatalf("fetch one: %v %+v", err, one)
			}
			// One record at a time, as enrich's amend path reads: later
			// offsets, then an earlier one again, from concurrent callers.
			// Every read sees exactly the record asked for (nothing a
			// reused client buffered before), and the clients are reused.
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := range 4 {
				wg.Go(func() {
					for _, o := range []int64{3, 7, 2, 0, 5, int64(g)} {
						var got *kgo.Record
						err := sc.ReadToEnd(ctx, topics.RawAlerts(), []int32{0}, FromOffset(o), func(r *kgo.Record) error { got = r; return ErrStop })
						if err == nil && (got == nil || got.Offset != o) {
							err = fmt.Errorf("read at %d gave %+v", o, got)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			sc.mu.Lock()
			clients := len(sc.idle)
			sc.mu.Unlock()
			if clients < 1 || clients > 4 {
				t.Errorf("%d idle clients after 26 reads by at most 4 callers at once, want 1 to 4", clients)
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
			sc := NewScanner(cfg)
			defer sc.Close()
			if err := sc.ReadToEnd(ctx, topics.RawGateway(), nil, FromStart(), func(r *kgo.Record) error { got[r.Partition]++; return nil }); err != nil {
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

// TestReadToEndSlowBroker: a broker whose fetches take longer than a few
// polls (a loaded machine) must not end the read early. The old scanner
// treated 4 empty 500 ms polls as "nothing left" and returned nil without the
// record, which enrich took for "offset not found" and sent the event to the
// DLQ. A start past the end (a time after the last record) returns at once.
func TestReadToEndSlowBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "slow"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := testConfig(c.ListenAddrs())
	ctx := context.Background()
	w, err := NewWriter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 10 {
		if err := w.Produce(ctx, &kgo.Record{Topic: "slow", Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Every fetch takes fetchDelay, and a read that waits for none must end
	// well before that: the bound leaves a loaded box 4 s for the offset
	// lookups (3 s fetches and a 2 s bound left it 1 s).
	const fetchDelay, atOnce = 6 * time.Second, 4 * time.Second
	last := time.Now()
	c.KeepControl()
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() { time.Sleep(fetchDelay) })
		return nil, nil, false
	})
	sc := NewScanner(cfg)
	defer sc.Close()
	var got *kgo.Record
	if err := sc.ReadToEnd(ctx, "slow", []int32{0}, FromOffset(7), func(r *kgo.Record) error { got = r; return ErrStop }); err != nil {
		t.Fatal(err)
	}
	if got == nil || string(got.Value) != "7" {
		t.Fatalf("read at offset 7 through a slow broker gave %+v, want the record", got)
	}
	start := time.Now()
	n := 0
	if err := sc.ReadToEnd(ctx, "slow", nil, FromTime(last.Add(time.Hour).UnixMilli()), func(*kgo.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 || time.Since(start) > atOnce {
		t.Fatalf("a start after the last record read %d records in %s, want none at once", n, time.Since(start))
	}
}

// TestOutstandingBytes: a Handler that holds what it is given is paused at
// kafka.max_outstanding_bytes, not at the (much larger) count; releasing the
// held values resumes it, and Done lets everything through.
func TestOutstandingBytes(t *testing.T) {
	for name, brokers := range backends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(brokers(t))
			cfg.Partitions = 1
			cfg.MaxOutstandingBytes = 2 << 20
			cfg.BatchMaxBytes = 512 << 10 // below the brokers' message.max.bytes
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
			const n, size = 200, 100 << 10 // 20 MB in all, 10× the bound
			rnd := rand.New(rand.NewSource(1))
			recs := make([]*kgo.Record, n)
			for i := range recs {
				v := make([]byte, size)
				rnd.Read(v) // incompressible: a fetch's size is its batches' compressed size
				recs[i] = &kgo.Record{Topic: topics.RawLiteLLM(), Key: []byte(strconv.Itoa(i)), Value: v,
					Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v" + strconv.Itoa(i))}}}
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
			count := func() int { mu.Lock(); defer mu.Unlock(); return len(held) }
			r, err := NewReader(cfg, topics.Prefix+"g", []string{topics.RawLiteLLM()}, h, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- r.Run(rctx) }()
			// Held until the bound is reached and the partition paused; what
			// was fetched before the pause still lands.
			waitFor(t, "the bound", func() bool {
				s := r.Stats()
				return len(s) == 1 && s[0].OutstandingBytes >= int64(cfg.MaxOutstandingBytes)
			})
			time.Sleep(time.Second)
			waitFor(t, "the handler to have every message handed out", func() bool {
				s := r.Stats()
				return len(s) == 1 && s[0].Outstanding == count()
			})
			first := count()
			t.Logf("held %d messages (%d KB) when paused", first, first*size>>10)
			// The bound plus what was already fetched when it was crossed
			// (a fetch is at most 1 MiB per partition, plus one batch).
			if got := first * size; got > 5<<20 || first == n {
				t.Fatalf("held %d messages (%d bytes) with a %d-byte bound", first, got, cfg.MaxOutstandingBytes)
			}
			time.Sleep(time.Second)
			if s := r.Stats(); len(s) != 1 || s[0].Outstanding != first || count() != first {
				t.Fatalf("not paused: stats %+v, held %d then %d", s, first, count())
			}
			// Releasing keeps the messages (not Done) but frees their values:
			// the partition resumes.
			mu.Lock()
			for _, m := range held {
				k, hv := string(m.Key), string(m.Headers[0].Value)
				m.Release(100)
				if m.Value != nil || string(m.Key) != k || string(m.Headers[0].Value) != hv {
					t.Fatalf("after Release: key %q value %d bytes headers %v", m.Key, len(m.Value), m.Headers)
				}
			}
			mu.Unlock()
			waitFor(t, "more messages after Release", func() bool { return count() > first })
			// Done lets everything through.
			go func() {
				for rctx.Err() == nil {
					mu.Lock()
					for _, m := range held {
						m.Done()
					}
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
			}()
			waitFor(t, "every message", func() bool { return count() == n })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
