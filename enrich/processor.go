package enrich

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/backoff"
	"github.com/auditline/auditline/privacy/capture"
	"github.com/auditline/auditline/privacy/pseudonym"
)

// producer writes decisions and DLQ records; topic.Writer satisfies it.
type producer interface {
	// Produce returns nil only once every record is acknowledged by all
	// in-sync replicas. The records must not be modified until it returns; on
	// an error some may still be written later.
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// scanner reads one partition without a consumer group; kafkaScanner binds
// it to a topic.Scanner (which reuses its clients across reads).
type scanner interface {
	// Scan calls fn for each record of partition p of topic, in offset order,
	// from the first record at or after from (an offset, or with byTime a
	// Unix-millisecond timestamp) up to the end as of the call. fn may return
	// topic.ErrStop to end the read early. Records passed to fn are the
	// callee's.
	Scan(ctx context.Context, topic string, p int32, from int64, byTime bool, fn func(*kgo.Record) error) error
}

type kafkaScanner struct{ sc *topic.Scanner }

func (k kafkaScanner) Scan(ctx context.Context, t string, p int32, from int64, byTime bool, fn func(*kgo.Record) error) error {
	start := topic.FromOffset(from)
	if byTime {
		start = topic.FromTime(from)
	}
	return k.sc.ReadToEnd(ctx, t, []int32{p}, start, fn)
}

// positions is what the Processor asks its Reader; topic.Reader satisfies it.
type positions interface {
	// Position returns the high watermark of the partition's last fetch,
	// whether it is paused for backpressure, and whether it is known.
	Position(topic string, partition int32) (hwm int64, paused, ok bool)
}

// Settings is what the caller hands in.
type Settings struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Processor is the topic.Handler of enrich: it joins the events of partition p
// of raw.litellm and raw.gateway into Decisions and produces them to
// partition p of the decisions topic. One Processor serves every partition;
// each partition's state is touched only by that partition's goroutine.
type Processor struct {
	cfg    Config
	topics raw.Topics
	// decisions is topics.Decisions(), named once (it is built per call).
	decisions string
	builder   *fold.Builder
	capt      *capture.Capturer // what a DLQ copy of an event keeps (the capture policy)
	prod      producer
	scan      scanner
	alerts    *alertTable
	m         *metrics
	log       *slog.Logger
	wall      func() time.Time
	// pos tells whether an input partition has records not handled yet;
	// nil (tests driving Handle directly) means unknown.
	pos positions

	mu    sync.Mutex
	parts map[int32]*partition
}

// newProcessor builds a Processor. cfg must be valid.
func newProcessor(cfg Config, topics raw.Topics, prod producer, scan scanner, alerts *alertTable, set Settings) *Processor {
	log := set.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Processor{
		cfg: cfg, topics: topics, decisions: topics.Decisions(), builder: fold.NewBuilder(cfg.Rules()), prod: prod,
		capt: capture.New(capture.Policy(cfg.Content.Policy)).WithPseudonyms(pseudonym.New(cfg.Content.Pseudonymise)),
		scan: retryingScanner{inner: scan, log: log}, alerts: alerts,
		m: newMetrics(set.Registry), log: log, wall: time.Now, parts: map[int32]*partition{},
	}
}

// connect sets the producer and scanner. The Stage calls it in Run, before
// its Reader hands out the first message.
func (h *Processor) connect(prod producer, scan scanner) {
	h.prod, h.scan = prod, retryingScanner{inner: scan, log: h.log}
}

func (h *Processor) part(p int32) *partition {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.parts[p]
	if s == nil {
		s = newPartition(h, p)
		h.parts[p] = s
	}
	return s
}

// Assigned implements topic.PartitionObserver: it rebuilds the partition's
// memory of recently emitted records from the decisions topic (so that a
// restart neither re-emits what was already reflected nor loses an
// amendment) and its burst switches from raw.gateway.
func (h *Processor) Assigned(ctx context.Context, p int32) error {
	s := newPartition(h, p)
	start := time.Now()
	n, err := s.rebuild(ctx)
	if err != nil {
		return fmt.Errorf("rebuild partition %d: %w", p, err)
	}
	h.mu.Lock()
	h.parts[p] = s
	h.mu.Unlock()
	h.log.Info("partition assigned", "partition", p, "decisions_reread", n, "cached", s.cache.len(),
		"burst_switches", len(s.burst.controls), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Revoked implements topic.PartitionObserver: pending requests are dropped
// (their events were never Done, so the next owner reads them again).
func (h *Processor) Revoked(p int32) {
	h.mu.Lock()
	s := h.parts[p]
	delete(h.parts, p)
	h.mu.Unlock()
	if s != nil {
		h.log.Info("partition revoked", "partition", p, "pending_dropped", len(s.pending))
	}
	h.m.forget(p)
}

// Handle implements topic.Handler. msgs all belong to one partition number
// (raw.litellm and raw.gateway are read co-partitioned).
func (h *Processor) Handle(ctx context.Context, msgs []*topic.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	s := h.part(msgs[0].Partition)
	for _, m := range msgs {
		if err := s.route(ctx, m); err != nil {
			return err
		}
	}
	return s.flush(ctx)
}

// Tick implements topic.Ticker: an idle partition's stream time follows the
// wall clock, so waiting requests time out even when no event arrives.
func (h *Processor) Tick(ctx context.Context, p int32, now time.Time) error {
	s := h.part(p)
	s.idleWall = now
	return s.flush(ctx)
}

// decisionHead is the part of a Decision's JSON that a rebuild needs.
type decisionHead struct {
	RecordID string `json:"record_id"`
	Version  uint32 `json:"version"`
	Request  struct {
		RequestKey string `json:"request_key"`
	} `json:"request"`
	Risk struct {
		Sampled      bool    `json:"sampled"`
		SampleReason string  `json:"sample_reason"`
		SampleRate   float64 `json:"sample_rate"`
	} `json:"risk"`
	Evidence struct {
		Sources []record.Source `json:"sources"`
	} `json:"evidence"`
}

func parseHead(b []byte) (*decisionHead, error) {
	var d decisionHead
	if err := jsonv2.Unmarshal(b, &d, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)); err != nil {
		return nil, fmt.Errorf("decode decision: %w", err)
	}
	if d.Request.RequestKey == "" || d.Version == 0 {
		return nil, fmt.Errorf("decode decision: no request key or version")
	}
	return &d, nil
}

func (d *decisionHead) entry(at record.Time) *emitted {
	e := &emitted{
		key: d.Request.RequestKey, recordID: d.RecordID, version: d.Version, sources: d.Evidence.Sources,
		prior:     fold.Sample{Sampled: d.Risk.Sampled, Reason: d.Risk.SampleReason, Rate: d.Risk.SampleRate},
		emittedAt: at,
	}
	for _, s := range d.Evidence.Sources {
		e.ids = append(e.ids, s.EventID)
	}
	sortUnique(&e.ids)
	return e
}

// retryingScanner retries a failed read with exponential backoff until it
// succeeds or ctx ends: a broker that does not answer for a while delays an
// amendment or a rebuild, it does not fail the stage.
type retryingScanner struct {
	inner scanner
	log   *slog.Logger
}

// scanBackoff spaces the attempts of a failed read.
var scanBackoff = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

func (r retryingScanner) Scan(ctx context.Context, t string, p int32, from int64, byTime bool, fn func(*kgo.Record) error) error {
	err := backoff.Retry(ctx, scanBackoff, func(ctx context.Context) error {
		return r.inner.Scan(ctx, t, p, from, byTime, fn)
	}, func(_ int, err error, wait time.Duration) {
		r.log.Warn("kafka read failed; retrying", "topic", t, "partition", p, "in", wait, "err", err)
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("read %s/%d: %w", t, p, err)
	}
	return err
}
