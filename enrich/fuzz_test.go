package enrich

import (
	"context"
	"testing"
	"time"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// FuzzHandle: whatever bytes a raw record carries, the Processor neither
// panics nor stops: every record ends in a decision or in the DLQ.
func FuzzHandle(f *testing.F) {
	for _, c := range goldenCases() {
		for _, in := range c.events {
			b, err := readFile(in.file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(in.src), b)
		}
	}
	f.Add("gateway", []byte(`{"schema":"auditline.gateway.v1","event_id":"e","request_key":"k","occurred_at":"x","policy":{"decision":"block"},"risk_score":NaN}`))
	r := newRig(f, testConfig(), nil, nil)
	f.Fuzz(func(t *testing.T, src string, b []byte) {
		if src != "litellm" && src != "gateway" && src != "oversight" {
			src = "litellm"
		}
		r.t, r.k = t, newMemKafka()
		r.p = newProcessor(r.p.cfg, testTopics, r.k, r.k, newAlertTable(), Settings{Logger: r.p.log})
		r.p.wall = func() time.Time { return r.clock }
		rec := r.f.Raw(raw.Event{Source: raw.Source(src), Key: "k", EventID: src + ":e", Value: b}, time.Date(2025, 11, 22, 10, 0, 0, 0, time.UTC))
		if err := r.p.Handle(context.Background(), []*topic.Message{topic.NewMessage(rec)}); err != nil {
			t.Fatal(err)
		}
		r.idle(2 * time.Hour)
		if len(r.k.records(testTopics.Decisions()))+len(r.k.records(testTopics.DLQ())) == 0 {
			t.Fatal("the record went nowhere")
		}
	})
}
