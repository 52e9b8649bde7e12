package topic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/auditline/auditline/ingest/raw"
)

// EnsureTopics creates auditline's topics if they are missing and checks that
// the co-partitioned ones (raw.litellm, raw.gateway, decisions) have the same
// partition count. It never changes an existing topic.
func EnsureTopics(ctx context.Context, cfg Config, topics raw.Topics) error {
	cl, err := cfg.newClient(cfg.clientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	rf := int16(cfg.ReplicationFactor)
	if rf == 0 {
		rf = -1 // broker default
	}
	compacted := map[string]*string{}
	all := []string{topics.RawLiteLLM(), topics.RawGateway(), topics.RawAlerts(), topics.RawAdmin(), topics.DLQ(), topics.Decisions()}
	resp, err := adm.CreateTopics(ctx, int32(cfg.Partitions), rf, compacted, all...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	// A just-created topic can take a moment to appear in every broker's
	// metadata (UNKNOWN_TOPIC_OR_PARTITION meanwhile): wait for it briefly.
	var details kadm.TopicDetails
	for attempt := 0; ; attempt++ {
		details, err = adm.ListTopics(ctx, all...)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		visible := true
		for _, name := range all {
			if d, ok := details[name]; !ok || d.Err != nil {
				visible = false
			}
		}
		if visible || attempt == 50 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("list topics: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	want := -1
	for _, name := range []string{topics.RawLiteLLM(), topics.RawGateway(), topics.Decisions()} {
		d, ok := details[name]
		if !ok || d.Err != nil {
			return fmt.Errorf("topic %s not visible after create: %v", name, d.Err)
		}
		n := len(d.Partitions)
		if want == -1 {
			want = n
		} else if n != want {
			return fmt.Errorf("topics %s, %s and %s must have the same partition count (co-partitioning); %s has %d, want %d",
				topics.RawLiteLLM(), topics.RawGateway(), topics.Decisions(), name, n, want)
		}
	}
	return nil
}
