package stacktest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// ReadTopics reads the topics to their end as of the call (without a group)
// and calls fn for every record, in offset order per partition.
func ReadTopics(ctx context.Context, kafka topic.Config, fn func(*kgo.Record) error, topics ...string) error {
	sc := topic.NewScanner(kafka)
	defer sc.Close()
	for _, t := range topics {
		if err := sc.ReadToEnd(ctx, t, nil, topic.FromStart(), fn); err != nil {
			return fmt.Errorf("read %s: %w", t, err)
		}
	}
	return nil
}

// TopicKeys returns the distinct record keys of the topics' events
// (ingest's watermark records are not events).
func TopicKeys(ctx context.Context, kafka topic.Config, topics ...string) (map[string]bool, error) {
	out := map[string]bool{}
	err := ReadTopics(ctx, kafka, func(r *kgo.Record) error {
		if !raw.IsWatermark(r) {
			out[string(r.Key)] = true
		}
		return nil
	}, topics...)
	return out, err
}

// EventCounts returns how many events each topic holds: its records, less
// ingest's watermark records.
func EventCounts(ctx context.Context, kafka topic.Config, topics ...string) (map[string]int64, error) {
	out := map[string]int64{}
	err := ReadTopics(ctx, kafka, func(r *kgo.Record) error {
		if !raw.IsWatermark(r) {
			out[r.Topic]++
		}
		return nil
	}, topics...)
	return out, err
}

// Offsets returns every offset of the topic, per partition, ascending.
func Offsets(ctx context.Context, kafka topic.Config, topicName string) (map[int32][]int64, error) {
	out := map[int32][]int64{}
	err := ReadTopics(ctx, kafka, func(r *kgo.Record) error { out[r.Partition] = append(out[r.Partition], r.Offset); return nil }, topicName)
	return out, err
}

// Decisions reads a decisions topic whole: every Decision and the Kafka
// record it came in (for its partition and offset).
func Decisions(ctx context.Context, kafka topic.Config, topicName string) ([]record.Decision, []*kgo.Record, error) {
	var ds []record.Decision
	var recs []*kgo.Record
	err := ReadTopics(ctx, kafka, func(r *kgo.Record) error {
		var d record.Decision
		if err := json.Unmarshal(r.Value, &d); err != nil {
			return fmt.Errorf("decision %d/%d: %w", r.Partition, r.Offset, err)
		}
		ds, recs = append(ds, d), append(recs, r)
		return nil
	}, topicName)
	return ds, recs, err
}

// DeleteTopics deletes every topic whose name match accepts and returns how
// many it asked the broker to delete.
func DeleteTopics(ctx context.Context, kafka topic.Config, match func(name string) bool) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.Brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return 0, err
	}
	var del []string
	for t := range tds {
		if match(t) {
			del = append(del, t)
		}
	}
	if len(del) == 0 {
		return 0, nil
	}
	_, err = adm.DeleteTopics(ctx, del...)
	return len(del), err
}
