package topic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Follow reads every partition of topic from its start, without a consumer
// group and without committing, and keeps reading new records until ctx ends
// (then it returns nil). fn is called on one goroutine, in offset order per
// partition. caughtUp, if not nil, is called once, when every partition has
// been read up to its end offset as of the call. A partition whose records
// were all removed by retention has nothing to read; if a partition shows no
// record for stallTimeout although its end is not reached (a log that ends
// in control records never yields its end), caughtUp is called anyway, with
// a warning.
//
// Use it to keep a whole topic as an in-memory table (enrich keeps the latest
// budget alert per entity of raw.alerts). Partitions added later are picked up
// with the client's metadata refresh.
func Follow(ctx context.Context, cfg Config, topic string, log *slog.Logger, fn func(*kgo.Record), caughtUp func()) error {
	if log == nil {
		log = slog.Default()
	}
	cl, err := cfg.newClient(append(cfg.clientOpts(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return fmt.Errorf("kafka follow: %w", err)
	}
	defer cl.Close()

	remaining := map[int32]int64{}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if first, ok := starts.Lookup(topic, o.Partition); ok && first.Offset < o.Offset {
			remaining[o.Partition] = o.Offset
		}
	})
	done := caughtUp == nil
	signal := func() {
		if !done {
			done = true
			caughtUp()
		}
	}
	if len(remaining) == 0 {
		signal()
	}
	lastProgress := time.Now()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, idlePoll)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				log.Warn("follow: fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		if fetches.NumRecords() == 0 {
			if !done && time.Since(lastProgress) > stallTimeout {
				log.Warn("follow: no record for a while although the end is not reached; treating the topic as read",
					"topic", topic, "remaining", remaining, "waited", stallTimeout)
				signal()
			}
			continue
		}
		lastProgress = time.Now()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				fn(r)
			}
			if n := len(p.Records); n > 0 {
				if end, ok := remaining[p.Partition]; ok && p.Records[n-1].Offset >= end-1 {
					delete(remaining, p.Partition)
				}
			}
		})
		if len(remaining) == 0 {
			signal()
		}
	}
}
