package store

import (
	"context"
	"testing"
	"time"

	"github.com/auditline/auditline/ingest/topic"
)

// TestTickInterval: a partial batch is inserted on the first tick at or
// after its linger, so the tick bounds how far past linger it waits — 2 %
// of linger (20 ms at the default 1 s; linger/4 added up to 250 ms to the
// success p99), never below 10 ms.
func TestTickInterval(t *testing.T) {
	for _, tc := range []struct{ linger, want time.Duration }{
		{DefaultLinger, 20 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Millisecond},
		{time.Millisecond, 10 * time.Millisecond},
		{5 * time.Second, 100 * time.Millisecond},
	} {
		if got := tickInterval(tc.linger); got != tc.want {
			t.Errorf("tickInterval(%s) = %s, want %s", tc.linger, got, tc.want)
		}
	}
}

// TestTickWaitsForLinger: a tick before the batch's linger is up inserts
// nothing (the writer here has no connection: an INSERT would panic).
func TestTickWaitsForLinger(t *testing.T) {
	cfg := NewDefaultConfig()
	w := newWriter(TableDecisions, "db", nil, Server{}, cfg, func() rows { return newDecisionRows() }, quietLog(), nil)
	since := time.Unix(1000, 0)
	w.parts[3] = &partition{id: 3, loaded: true, stored: -1, verify: -1, pending: []*topic.Message{{}}, since: since}
	for _, now := range []time.Time{since, since.Add(cfg.Linger - tickInterval(cfg.Linger)), since.Add(cfg.Linger - time.Nanosecond)} {
		if err := w.Tick(context.Background(), 3, now); err != nil {
			t.Fatalf("tick at since+%s: %v", now.Sub(since), err)
		}
	}
	if len(w.parts[3].pending) != 1 {
		t.Fatal("a batch was touched before its linger")
	}
}
