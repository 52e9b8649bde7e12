package topic

import (
	"context"
	"testing"
	"time"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/raw"
)

// TestSetRawRetention: migrate gives the raw topics and the DLQ an explicit
// retention (they hold content whole), leaves decisions alone, and a second
// run changes nothing.
func TestSetRawRetention(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Brokers = testenv.Kafka(t)
	cfg.RawRetention = 50 * time.Hour
	topics := raw.Topics{Prefix: testenv.Name(t) + "."}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := EnsureTopics(ctx, cfg, topics); err != nil {
		t.Fatal(err)
	}
	before, err := Retention(ctx, cfg, topics.Decisions())
	if err != nil {
		t.Fatal(err)
	}
	changed, err := SetRawRetention(ctx, cfg, topics)
	if err != nil || len(changed) != 5 {
		t.Fatalf("first run: %v, changed %q (want the 4 raw topics and the DLQ)", err, changed)
	}
	raws := []string{topics.RawLiteLLM(), topics.RawGateway(), topics.RawAlerts(), topics.RawAdmin(), topics.DLQ()}
	got, err := Retention(ctx, cfg, append(raws, topics.Decisions())...)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range raws {
		if got[n] != 50*time.Hour {
			t.Errorf("%s: retention %s, want 50h", n, got[n])
		}
	}
	if got[topics.Decisions()] != before[topics.Decisions()] {
		t.Errorf("decisions retention changed: %s → %s", before[topics.Decisions()], got[topics.Decisions()])
	}
	if changed, err := SetRawRetention(ctx, cfg, topics); err != nil || len(changed) != 0 {
		t.Fatalf("second run: %v, changed %q", err, changed)
	}
}
