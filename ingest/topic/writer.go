package topic

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
)

// Writer produces records with acks=all and an idempotent producer.
type Writer struct {
	cl *kgo.Client
}

// NewWriter makes a producer client for cfg (idempotent, acks=all). It
// connects lazily: the first Produce or Ping reaches the brokers.
func NewWriter(cfg Config) (*Writer, error) {
	cl, err := cfg.newClient(cfg.producerOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka writer: %w", err)
	}
	return &Writer{cl: cl}, nil
}

// partitioner places a record by murmur2 of its key, as Java clients do (so
// co-partitioning holds across languages), unless the record carries
// raw.HeaderExplicitPartition: then its Partition field is used as is.
type partitioner struct{ byKey kgo.Partitioner }

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return topicPartitioner{p.byKey.ForTopic(topic)}
}

type topicPartitioner struct{ byKey kgo.TopicPartitioner }

func (p topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return explicit(r) || p.byKey.RequiresConsistency(r)
}

func (p topicPartitioner) Partition(r *kgo.Record, n int) int {
	if explicit(r) {
		if int(r.Partition) < n && r.Partition >= 0 {
			return int(r.Partition)
		}
		return 0 // out of range: never drop, land on partition 0
	}
	return p.byKey.Partition(r, n)
}

func explicit(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == raw.HeaderExplicitPartition {
			return true
		}
	}
	return false
}

// Produce returns nil only once every record is acknowledged by all in-sync
// replicas. The records must not be modified until Produce returns. If ctx ends
// first, Produce returns an error wrapping ctx.Err(); some records may still be
// written afterwards, so a caller must not report them as accepted.
func (w *Writer) Produce(ctx context.Context, recs ...*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := w.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			return fmt.Errorf("produce: %w (%w)", ctxErr, err)
		}
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

// Ping checks that a broker answers a metadata request.
func (w *Writer) Ping(ctx context.Context) error { return w.cl.Ping(ctx) }

// Client exposes the underlying client for admin calls.
func (w *Writer) Client() *kgo.Client { return w.cl }

// Close flushes nothing further and closes the client. Call it after the last
// Produce has returned.
func (w *Writer) Close() { w.cl.Close() }
