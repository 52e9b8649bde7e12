package topic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Message is one record handed to a Handler. The Handler owns it until it calls
// Done; the Record must not be modified.
type Message struct {
	*kgo.Record
	t *tracker
	e *entry
	r *Reader
}

// Done reports that m's effect is durable: rows inserted, object locked, or the
// Decision built from m acknowledged by Kafka. Calling it more than once, from
// any goroutine, or after the partition was revoked is harmless.
func (m *Message) Done() {
	if m.t == nil { // a Message built by a test
		return
	}
	out, b, paused := m.t.done(m.e)
	m.r.maybeResume(m.t, out, b, paused)
}

// Release tells the Reader that the Handler, which keeps m until it is Done,
// from now on holds only about keep bytes for it (it decoded what it needs):
// m's Value is dropped (nil afterwards; Key and Headers are copied so that
// nothing of the fetched batch stays referenced), and m counts keep bytes,
// not its record's size, against kafka.max_outstanding_bytes. Done must
// still be called. A Handler that holds messages for long (enrich's pending
// requests) calls it so that the byte bound measures what it really holds.
func (m *Message) Release(keep int) {
	if m.Record == nil {
		return
	}
	m.Record = detach(m.Record)
	if m.t == nil {
		return
	}
	out, b, paused := m.t.shrink(m.e, int64(keep))
	m.r.maybeResume(m.t, out, b, paused)
}

// detached is a released Record with room for its headers, so that the
// Record and its header list are one allocation.
type detached struct {
	rec kgo.Record
	hs  [8]kgo.RecordHeader
}

// detach returns a copy of r without its Value whose Key and Headers share
// nothing with r: the Record and its headers in one allocation (two past
// eight headers), the key's and the header values' bytes in one, the header
// names in one — three allocations instead of one per key, name and value.
func detach(r *kgo.Record) *kgo.Record {
	d := &detached{rec: *r}
	rec := &d.rec
	rec.Value = nil
	n, names := len(r.Key), 0
	for _, h := range r.Headers {
		n += len(h.Value)
		names += len(h.Key)
	}
	buf := make([]byte, 0, n)
	rec.Key = clip(&buf, r.Key)
	if len(r.Headers) == 0 {
		return rec
	}
	var nb strings.Builder
	nb.Grow(names)
	for _, h := range r.Headers {
		nb.WriteString(h.Key)
	}
	all := nb.String()
	var hs []kgo.RecordHeader
	if len(r.Headers) <= len(d.hs) {
		hs = d.hs[:len(r.Headers):len(r.Headers)]
	} else {
		hs = make([]kgo.RecordHeader, len(r.Headers))
	}
	for i, h := range r.Headers {
		hs[i] = kgo.RecordHeader{Key: all[:len(h.Key)], Value: clip(&buf, h.Value)}
		all = all[len(h.Key):]
	}
	rec.Headers = hs
	return rec
}

// clip appends v to *buf (which has room for it) and returns the copy, nil
// for nil, with its capacity cut at its length.
func clip(buf *[]byte, v []byte) []byte {
	if v == nil {
		return nil
	}
	at := len(*buf)
	*buf = append(*buf, v...)
	return (*buf)[at:len(*buf):len(*buf)]
}

// recordSize is what a fetched record costs the Handler that holds it: its
// key, value and headers, plus the Record and Message around them.
func recordSize(r *kgo.Record) int64 {
	n := int64(len(r.Key) + len(r.Value) + 256)
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value) + 32)
	}
	return n
}

// maybeResume resumes t's partition if it is paused and back under half of
// both bounds (count and bytes) after a Done or Release.
func (r *Reader) maybeResume(t *tracker, out int, bytes int64, paused bool) {
	if paused && out <= r.maxOutstanding/2 && bytes <= r.maxOutstandingBytes/2 {
		t.setPaused(false)
		r.cl.ResumeFetchPartitions(map[string][]int32{t.topic: {t.partition}})
	}
}

// NewMessage wraps a record for a Handler under test; its Done does nothing.
func NewMessage(r *kgo.Record) *Message { return &Message{Record: r} }

// Handler consumes one partition's messages.
type Handler interface {
	// Handle owns msgs (one partition, in offset order per topic). Call m.Done()
	// only once m's effect is durable. Handle must return promptly when ctx ends
	// (the partition was revoked or the Reader is stopping). A returned error
	// stops the Reader; nothing at or after the failed message is committed.
	Handle(ctx context.Context, msgs []*Message) error
}

// PartitionObserver is implemented by Handlers that keep state per partition.
// Both are called on the partition's own goroutine, never concurrently with
// Handle for that partition.
type PartitionObserver interface {
	// Assigned is called before the first Handle of a newly assigned partition.
	// An error stops the Reader.
	Assigned(ctx context.Context, partition int32) error
	// Revoked is called after the last Handle of a partition that was revoked
	// or lost; state kept for it should be dropped.
	Revoked(partition int32)
}

// Ticker is implemented by Handlers that act on time (timeouts). Tick is called
// on the partition's goroutine every ReaderOptions.TickInterval, never
// concurrently with Handle for that partition.
type Ticker interface {
	Tick(ctx context.Context, partition int32, now time.Time) error
}

// ReaderOptions tune a Reader.
type ReaderOptions struct {
	// CoPartitioned hands partition p of every subscribed topic to one goroutine
	// and one Handle call stream (enrich joins raw.litellm p with raw.gateway p).
	// The group uses the range balancer, which assigns equal partition numbers
	// of equally sized topics to the same member.
	CoPartitioned bool
	// TickInterval for Handlers implementing Ticker; 0 means one second.
	TickInterval time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Reader consumes topics as a member of a consumer group and commits the
// contiguous low watermark of Done messages per partition.
type Reader struct {
	cfg            Config
	group          string
	topics         []string
	cl             *kgo.Client // made by Run
	h              Handler
	opts           ReaderOptions
	log            *slog.Logger
	maxOutstanding int
	// maxOutstandingBytes bounds, per partition, the bytes handed out and
	// not yet Done (recordSize, or what Release kept).
	maxOutstandingBytes int64
	commitEvery         time.Duration

	// commitMu serialises commits with revocation: a partition is removed
	// from trackers under it, so no commit for it can follow its revoke.
	commitMu sync.Mutex
	mu       sync.Mutex // guards trackers and workers
	trackers map[tp]*tracker
	workers  map[int32]*worker // key: partition (CoPartitioned) or a per-topic-partition id
	wkeys    map[tp]int32

	runCtx  context.Context
	stop    context.CancelFunc // ends Run's poll loop
	failErr error              // first Handler error; guarded by mu
	nextID  int32
}

type tp struct {
	topic     string
	partition int32
}

type worker struct {
	partition int32
	in        chan []*Message
	cancel    context.CancelFunc
	done      chan struct{}
	refs      int // topic-partitions feeding it
}

// NewReader prepares a member of group on topics. It connects nothing: Run
// makes the client, joins the group and consumes.
func NewReader(cfg Config, group string, topics []string, h Handler, opts ReaderOptions) (*Reader, error) {
	if group == "" || len(topics) == 0 {
		return nil, fmt.Errorf("kafka reader: a group and at least one topic are required (group %q, topics %v)", group, topics)
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Reader{
		cfg:                 cfg,
		group:               group,
		topics:              topics,
		h:                   h,
		opts:                opts,
		log:                 opts.Logger.With("group", group),
		maxOutstanding:      or(cfg.MaxOutstanding, DefaultMaxOutstanding),
		maxOutstandingBytes: int64(or(cfg.MaxOutstandingBytes, DefaultMaxOutstandingBytes)),
		commitEvery:         or(cfg.CommitInterval, DefaultCommitInterval),
		trackers:            map[tp]*tracker{},
		workers:             map[int32]*worker{},
		wkeys:               map[tp]int32{},
	}, nil
}

// Run consumes until ctx ends or a Handler fails. On return it has stopped every
// partition goroutine, committed the final watermarks and left the group.
// It returns nil when ctx ended, else the Handler's error.
func (r *Reader) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	if r.runCtx != nil {
		r.mu.Unlock()
		return errors.New("kafka reader: Run called twice")
	}
	r.runCtx, r.stop = ctx, cancel
	r.mu.Unlock()
	cl, err := r.cfg.newClient(append(r.cfg.groupOpts(r.group),
		kgo.ConsumeTopics(r.topics...),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
	)...)
	if err != nil {
		return fmt.Errorf("kafka reader: %w", err)
	}
	r.cl = cl

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.commitLoop(ctx) }()

	for {
		fetches := r.cl.PollRecords(ctx, or(r.cfg.MaxPollRecords, DefaultMaxPollRecords))
		if ctx.Err() != nil || fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 || p.HighWatermark > 0 {
				r.feed(ctx, p)
			}
		})
	}
	cancel()
	wg.Wait()
	r.stopAll()
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer closeCancel()
	_ = r.cl.LeaveGroupContext(closeCtx)
	r.cl.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failErr
}

// feed registers p's records with their tracker and hands them to the worker.
func (r *Reader) feed(ctx context.Context, p kgo.FetchTopicPartition) {
	key := tp{p.Topic, p.Partition}
	r.mu.Lock()
	t := r.trackers[key]
	w := r.workers[r.wkeys[key]]
	r.mu.Unlock()
	if t == nil || w == nil {
		return // revoked between fetch and feed: the next owner reads these again
	}
	t.mu.Lock()
	t.hwm = p.HighWatermark
	t.mu.Unlock()
	if len(p.Records) == 0 {
		return
	}
	msgs := make([]*Message, len(p.Records))
	outstanding, outBytes := 0, int64(0)
	for i, rec := range p.Records {
		e, n, b := t.add(rec.Offset, rec.LeaderEpoch, recordSize(rec))
		msgs[i] = &Message{Record: rec, t: t, e: e, r: r}
		outstanding, outBytes = n, b
	}
	if outstanding >= r.maxOutstanding || outBytes >= r.maxOutstandingBytes {
		t.setPaused(true)
		r.cl.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
		r.log.Debug("partition paused", "topic", p.Topic, "partition", p.Partition, "outstanding", outstanding, "bytes", outBytes)
	}
	select {
	case w.in <- msgs:
	case <-w.done:
	case <-ctx.Done():
	}
}

func (r *Reader) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx := r.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	for topic, parts := range assigned {
		for _, p := range parts {
			key := tp{topic, p}
			r.trackers[key] = newTracker(topic, p)
			wk := p
			if !r.opts.CoPartitioned {
				wk = r.nextID
				r.nextID++
			}
			r.wkeys[key] = wk
			w := r.workers[wk]
			if w == nil {
				w = r.startWorker(ctx, p)
				r.workers[wk] = w
			}
			w.refs++
		}
	}
	// The callback's client, not r.cl: the group can be joined (and this
	// callback run) before Run has stored r.cl.
	cl.ResumeFetchPartitions(assigned)
	r.log.Info("partitions assigned", "assigned", assigned)
}

func (r *Reader) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.release(ctx, revoked, true)
	r.log.Info("partitions revoked", "revoked", revoked)
}

func (r *Reader) lost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.release(ctx, lost, false)
	r.log.Warn("partitions lost", "lost", lost)
}

// release stops the workers of the given partitions, waits for their Handle to
// return, commits what they finished (when commit is set), and forgets them.
func (r *Reader) release(ctx context.Context, parts map[string][]int32, commit bool) {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	var stopped []*worker
	var ts []*tracker
	r.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			key := tp{topic, p}
			if t := r.trackers[key]; t != nil {
				ts = append(ts, t)
			}
			wk, ok := r.wkeys[key]
			if w := r.workers[wk]; ok && w != nil {
				w.refs--
				if w.refs <= 0 {
					delete(r.workers, wk)
					stopped = append(stopped, w)
				}
			}
			delete(r.trackers, key)
			delete(r.wkeys, key)
		}
	}
	r.mu.Unlock()
	for _, w := range stopped {
		w.cancel()
		<-w.done
	}
	if commit {
		r.commitLocked(ctx, ts)
	}
	for _, t := range ts {
		t.revoke()
	}
}

// stopAll stops every worker and commits their watermarks (on Run's exit).
func (r *Reader) stopAll() {
	r.mu.Lock()
	parts := map[string][]int32{}
	for key := range r.trackers {
		parts[key.topic] = append(parts[key.topic], key.partition)
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.release(ctx, parts, true)
}

func (r *Reader) startWorker(parent context.Context, partition int32) *worker {
	ctx, cancel := context.WithCancel(parent)
	w := &worker{partition: partition, in: make(chan []*Message, 16), cancel: cancel, done: make(chan struct{})}
	go r.runWorker(ctx, w)
	return w
}

func (r *Reader) runWorker(ctx context.Context, w *worker) {
	defer close(w.done)
	obs, _ := r.h.(PartitionObserver)
	tick, _ := r.h.(Ticker)
	if obs != nil {
		if err := obs.Assigned(ctx, w.partition); err != nil {
			if ctx.Err() == nil {
				r.failWith(fmt.Errorf("partition %d assign: %w", w.partition, err))
			}
			return
		}
		defer obs.Revoked(w.partition)
	}
	var tc <-chan time.Time
	if tick != nil {
		t := time.NewTicker(r.opts.TickInterval)
		defer t.Stop()
		tc = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case msgs := <-w.in:
			if err := r.h.Handle(ctx, msgs); err != nil {
				if ctx.Err() == nil {
					r.failWith(fmt.Errorf("partition %d: %w", w.partition, err))
				}
				return
			}
		case now := <-tc:
			if err := tick.Tick(ctx, w.partition, now); err != nil {
				if ctx.Err() == nil {
					r.failWith(fmt.Errorf("partition %d tick: %w", w.partition, err))
				}
				return
			}
		}
	}
}

// failWith records the first Handler error and ends Run.
func (r *Reader) failWith(err error) {
	r.mu.Lock()
	if r.failErr == nil {
		r.failErr = err
	}
	stop := r.stop
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (r *Reader) commitLoop(ctx context.Context) {
	t := time.NewTicker(r.commitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.commitAll(ctx)
		}
	}
}

func (r *Reader) commitAll(ctx context.Context) {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.mu.Lock()
	ts := make([]*tracker, 0, len(r.trackers))
	for _, t := range r.trackers {
		ts = append(ts, t)
	}
	r.mu.Unlock()
	r.commitLocked(ctx, ts)
}

// commitLocked commits the watermarks of ts. Callers hold commitMu.
func (r *Reader) commitLocked(ctx context.Context, ts []*tracker) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, t := range ts {
		off, epoch, ok := t.toCommit()
		if !ok {
			continue
		}
		if offsets[t.topic] == nil {
			offsets[t.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[t.topic][t.partition] = kgo.EpochOffset{Epoch: epoch, Offset: off}
	}
	if len(offsets) == 0 {
		return
	}
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("commit failed", "err", err)
			}
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					r.log.Warn("commit refused", "topic", rt.Topic, "partition", rp.Partition, "code", rp.ErrorCode)
					continue
				}
				for _, t := range ts {
					if t.topic == rt.Topic && t.partition == rp.Partition {
						t.markCommitted(offsets[rt.Topic][rp.Partition].Offset)
					}
				}
			}
		}
	})
}

// Position tells a Handler what the Reader knows of a topic-partition it
// is handed: hwm, the high watermark of its last fetch (so records at
// offsets from the Handler's next one up to hwm exist and are not handled
// yet), and whether it is paused for backpressure (nothing more is fetched
// until the Handler reports messages Done). ok is false when the partition
// is not assigned or no fetch reported a high watermark yet.
func (r *Reader) Position(topic string, partition int32) (hwm int64, paused, ok bool) {
	r.mu.Lock()
	t := r.trackers[tp{topic, partition}]
	r.mu.Unlock()
	if t == nil {
		return 0, false, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hwm, t.paused, t.hwm > 0
}

// PartitionStats is a snapshot of one partition for metrics.
type PartitionStats struct {
	Topic            string
	Partition        int32
	Outstanding      int   // handed to the Handler, not yet Done
	OutstandingBytes int64 // their bytes (kafka.max_outstanding_bytes)
	Lag              int64 // high watermark minus the next offset to commit
}

// Stats returns a snapshot of every assigned partition.
func (r *Reader) Stats() []PartitionStats {
	r.mu.Lock()
	ts := make([]*tracker, 0, len(r.trackers))
	for _, t := range r.trackers {
		ts = append(ts, t)
	}
	r.mu.Unlock()
	out := make([]PartitionStats, 0, len(ts))
	for _, t := range ts {
		o, b, l := t.stats()
		out = append(out, PartitionStats{Topic: t.topic, Partition: t.partition, Outstanding: o, OutstandingBytes: b, Lag: l})
	}
	return out
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, msgs []*Message) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, msgs []*Message) error { return f(ctx, msgs) }
