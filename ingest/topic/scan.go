package topic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadToEnd reads the given partitions of topic (all of them when partitions is
// empty), without a consumer group and without committing, from start up to the
// end offsets as they were when the call began. fn is called in offset order
// per partition. Use it to rebuild state (a table of budget alerts, recent
// decisions) or to fetch one record by offset (start = kgo.NewOffset().At(o),
// and return ErrStop from fn).
func ReadToEnd(ctx context.Context, cfg Config, topic string, partitions []int32, start kgo.Offset, fn func(*kgo.Record) error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(cfg.clientID()))
	if err != nil {
		return fmt.Errorf("kafka scan: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	want := map[int32]bool{}
	for _, p := range partitions {
		want[p] = true
	}
	remaining := map[int32]int64{} // partition -> end offset still to reach
	assign := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if len(want) > 0 && !want[o.Partition] {
			return
		}
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
			assign[o.Partition] = start
		}
	})
	if len(remaining) == 0 {
		return nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign})
	idle := 0
	for len(remaining) > 0 {
		pollCtx, cancel := context.WithTimeout(ctx, idlePoll)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		// A start past the last record (a time after it, or a gap of compacted or
		// control records before the end) never yields the end offset: a few
		// empty polls in a row mean there is nothing more to read.
		if fetches.NumRecords() == 0 {
			if idle++; idle >= maxIdlePolls {
				return nil
			}
		} else {
			idle = 0
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var stop bool
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			end, ok := remaining[p.Partition]
			if !ok || stop {
				return
			}
			for _, r := range p.Records {
				if r.Offset >= end {
					break
				}
				if err := fn(r); err != nil {
					if errors.Is(err, ErrStop) {
						stop = true
					} else {
						ferr = err
					}
					return
				}
			}
			// Done with the partition when the fetch reached the end as of the call.
			if n := len(p.Records); n > 0 && p.Records[n-1].Offset >= end-1 {
				delete(remaining, p.Partition)
			}
		})
		if ferr != nil {
			return ferr
		}
		if stop {
			return nil
		}
	}
	return nil
}

const (
	idlePoll     = 500 * time.Millisecond
	maxIdlePolls = 4
)

// ErrStop, returned by a ReadToEnd callback, ends the read without error.
var ErrStop = stopError{}

type stopError struct{}

func (stopError) Error() string { return "stop" }
