package topic

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Partitions returns the current partition count of topic, from a metadata
// request (not a cache: a control event fanned out to every partition must
// not miss one that was just added).
func (w *Writer) Partitions(ctx context.Context, topic string) (int, error) {
	details, err := kadm.NewClient(w.cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok {
		return 0, fmt.Errorf("metadata of %s: topic not found", topic)
	}
	if d.Err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, d.Err)
	}
	return len(d.Partitions), nil
}
