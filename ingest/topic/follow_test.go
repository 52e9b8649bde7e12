package topic

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/raw"
)

// TestFollow: Follow reads what was there (caughtUp fires after it), then
// keeps reading what is produced later, in offset order per partition.
func TestFollow(t *testing.T) {
	for name, brokers := range backends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(brokers(t))
			cfg.Partitions = 3
			topics := raw.Topics{Prefix: testenv.Name(t) + "."}
			topic := topics.RawAlerts()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			w, err := NewWriter(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := EnsureTopics(ctx, cfg, topics); err != nil {
				t.Fatal(err)
			}
			produce := func(from, to int) {
				var recs []*kgo.Record
				for i := from; i < to; i++ {
					recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte(strconv.Itoa(i))})
				}
				if err := w.Produce(ctx, recs...); err != nil {
					t.Fatal(err)
				}
			}
			produce(0, 50)

			var mu sync.Mutex
			seen := map[string]bool{}
			last := map[int32]int64{}
			caught := make(chan int, 1)
			fctx, fcancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- Follow(fctx, cfg, topic, nil, func(r *kgo.Record) {
					mu.Lock()
					defer mu.Unlock()
					if o, ok := last[r.Partition]; ok && r.Offset <= o {
						t.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, o)
					}
					last[r.Partition] = r.Offset
					seen[string(r.Value)] = true
				}, func() {
					mu.Lock()
					caught <- len(seen)
					mu.Unlock()
				})
			}()
			select {
			case n := <-caught:
				if n != 50 {
					t.Fatalf("caught up after %d records, want 50", n)
				}
			case <-ctx.Done():
				t.Fatal("never caught up")
			}
			produce(50, 80)
			waitFor(t, "records produced after catching up", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(seen) == 80
			})
			fcancel()
			if err := <-done; err != nil {
				t.Fatalf("Follow = %v, want nil on cancel", err)
			}
		})
	}
}
