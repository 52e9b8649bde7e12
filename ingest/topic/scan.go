package topic

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Scanner reads partitions without a consumer group and without committing.
// It keeps the clients it made and reuses them: a caller that reads one record
// per event (enrich's amend path) does not pay a connection per read. It is
// safe for concurrent use; each concurrent read uses its own client, so at
// most as many clients are open as reads have run at once. The zero value is
// not usable: call NewScanner.
type Scanner struct {
	cfg Config

	mu     sync.Mutex
	idle   []*kgo.Client
	closed bool
}

// NewScanner returns a Scanner for cfg. It connects nothing yet.
func NewScanner(cfg Config) *Scanner { return &Scanner{cfg: cfg} }

// Close closes every client the Scanner holds. Reads still running finish
// with their own client, which is then closed too.
func (s *Scanner) Close() {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, cl := range idle {
		cl.Close()
	}
}

func (s *Scanner) get() (*kgo.Client, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("kafka scan: scanner closed")
	}
	if n := len(s.idle); n > 0 {
		cl := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return cl, nil
	}
	s.mu.Unlock()
	cl, err := s.cfg.newClient(s.cfg.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka scan: %w", err)
	}
	return cl, nil
}

// put stops cl consuming topic's partitions (dropping what it buffered of
// them) and keeps it for the next read.
func (s *Scanner) put(cl *kgo.Client, topic string, parts []int32) {
	if len(parts) > 0 {
		cl.RemoveConsumePartitions(map[string][]int32{topic: parts})
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cl.Close()
		return
	}
	s.idle = append(s.idle, cl)
	s.mu.Unlock()
}

// Start is where a ReadToEnd begins in each partition: the first record, an
// exact offset, or the first record stamped at or after a time. It is
// resolved against the broker (ListOffsets) before anything is fetched, so
// the read knows exactly which offsets it must see.
type Start struct {
	offset int64
	byTime bool
}

// FromStart begins at each partition's first record.
func FromStart() Start { return Start{offset: -1} }

// FromOffset begins at offset o (at the partition's first record when o is
// below it, e.g. after retention removed older records).
func FromOffset(o int64) Start { return Start{offset: o} }

// FromTime begins at the first record whose timestamp is at or after ms
// (Unix milliseconds).
func FromTime(ms int64) Start { return Start{offset: ms, byTime: true} }

// ReadToEnd reads the given partitions of topic (all of them when partitions
// is empty) from start up to the end offsets as they were when the call
// began, calling fn for each record in offset order per partition. fn may
// return ErrStop to end the read early without error.
//
// The start of each partition is resolved to an offset first; a partition
// whose start is at or past its end has nothing to read. Every other
// partition is read until its record at end-1 has been seen: our topics are
// neither compacted nor transactional, so that record exists. A read that
// sees no record for stallTimeout while offsets remain returns an error
// (callers retry) — never a silent, short read: enrich treated a short read
// under load as "record not found" and sent the event to the DLQ.
func (s *Scanner) ReadToEnd(ctx context.Context, topic string, partitions []int32, start Start, fn func(*kgo.Record) error) error {
	cl, err := s.get()
	if err != nil {
		return err
	}
	var assigned []int32
	defer func() { s.put(cl, topic, assigned) }()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	var starts kadm.ListedOffsets
	if start.byTime {
		starts, err = adm.ListOffsetsAfterMilli(ctx, start.offset, topic)
	} else {
		starts, err = adm.ListStartOffsets(ctx, topic)
	}
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
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
		first, ok := starts.Lookup(topic, o.Partition)
		if !ok {
			return
		}
		from := first.Offset
		if !start.byTime && start.offset > from {
			from = start.offset
		}
		if from < 0 || from >= o.Offset {
			return // nothing at or after the start
		}
		remaining[o.Partition] = o.Offset
		assign[o.Partition] = kgo.NewOffset().At(from)
	})
	if len(remaining) == 0 {
		return nil
	}
	for p := range assign {
		assigned = append(assigned, p)
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign})
	lastProgress := time.Now()
	for len(remaining) > 0 {
		pollCtx, cancel := context.WithTimeout(ctx, idlePoll)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if fetches.NumRecords() > 0 {
			lastProgress = time.Now()
		} else if stalled := time.Since(lastProgress); stalled > stallTimeout {
			return fmt.Errorf("read %s: no record for %s with %d partition(s) short of their end (%v): %w",
				topic, stalled.Round(time.Second), len(remaining), remaining, ErrStalled)
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

const idlePoll = 500 * time.Millisecond

// stallTimeout bounds how long a read waits for records it knows exist (a
// broker under load, a leader election) before it reports ErrStalled.
var stallTimeout = 60 * time.Second

// ErrStalled means a read saw no record for a while although the partition's
// end was not reached; the records exist, so the caller should retry.
var ErrStalled = errors.New("kafka scan stalled")

// ErrStop, returned by a ReadToEnd callback, ends the read without error.
var ErrStop = stopError{}

type stopError struct{}

func (stopError) Error() string { return "stop" }
