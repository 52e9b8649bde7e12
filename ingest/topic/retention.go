package topic

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
)

// SetRawRetention sets retention.ms of the raw topics and the DLQ to
// cfg.RawRetention (nothing when it is 0) and returns what it changed, one
// line per topic. A topic already at that retention is left alone, so a
// second run changes nothing. The topics must exist (EnsureTopics).
func SetRawRetention(ctx context.Context, cfg Config, topics raw.Topics) ([]string, error) {
	if cfg.RawRetention == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(cfg.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	names := []string{topics.RawLiteLLM(), topics.RawGateway(), topics.RawAlerts(), topics.RawAdmin(), topics.DLQ()}
	want := strconv.FormatInt(cfg.RawRetention.Milliseconds(), 10)
	current, err := RetentionMS(ctx, adm, names...)
	if err != nil {
		return nil, err
	}
	var alter []kadm.AlterConfig
	var changed []string
	for _, n := range names {
		if current[n] == want {
			continue
		}
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: &want})
		changed = append(changed, fmt.Sprintf("kafka topic %s: retention.ms %s (%s)", n, want, cfg.RawRetention))
		resp, err := adm.AlterTopicConfigs(ctx, alter, n)
		if err != nil {
			return nil, fmt.Errorf("set retention of %s: %w", n, err)
		}
		for _, r := range resp {
			if r.Err != nil {
				return nil, fmt.Errorf("set retention of %s: %w (%s)", r.Name, r.Err, r.ErrMessage)
			}
		}
		alter = alter[:0]
	}
	// The brokers apply a config change a moment after the controller took
	// it: wait until they report it, so that what migrate printed is true.
	for attempt := 0; len(changed) > 0; attempt++ {
		now, err := RetentionMS(ctx, adm, names...)
		if err != nil {
			return nil, err
		}
		done := true
		for _, n := range names {
			done = done && now[n] == want
		}
		if done {
			break
		}
		if attempt == 100 {
			return nil, fmt.Errorf("set retention: the brokers still report %v after 20 s, want retention.ms %s", now, want)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return changed, nil
}

// RetentionMS returns retention.ms of each named topic as the broker reports
// it (its own default when the topic sets none).
func RetentionMS(ctx context.Context, adm *kadm.Client, names ...string) (map[string]string, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	out := map[string]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("describe %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.Value != nil {
				out[rc.Name] = *c.Value
			}
		}
	}
	return out, nil
}

// Retention returns retention.ms of each named topic as a duration (-1 ms:
// kept for ever).
func Retention(ctx context.Context, cfg Config, names ...string) (map[string]time.Duration, error) {
	cl, err := kgo.NewClient(cfg.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	defer cl.Close()
	ms, err := RetentionMS(ctx, kadm.NewClient(cl), names...)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for n, v := range ms {
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("topic %s: retention.ms %q: %w", n, v, err)
		}
		out[n] = time.Duration(i) * time.Millisecond
	}
	return out, nil
}
