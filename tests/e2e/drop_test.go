package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/internal/stacktest"
)

// LiteLLM's generic_api logger line for a batch it gave up on (docs/litellm.md §7.1 4).
const dropLine = "Generic API Logger Error sending batch"

// TestLiteLLMDropWhileIngestDown shows the degraded mode (LiteLLM's stock
// generic_api callback instead of auditline's plugin) when auditline ingest
// is unreachable: LiteLLM retries the batch POST (config.yaml max_retries 3,
// 0.5 s doubling), then drops the batch for good — requests answered to
// clients while ingest was down never reach auditline, even after ingest is
// back. The only trace is LiteLLM's log line; auditline's records have no gap
// marker for a whole lost batch (LiteLLM's call ids are random UUIDs, and
// without its database there is no spend total to reconcile against). The
// test reconciles the client-side x-litellm-call-id headers against
// ClickHouse, which is what an operator must do (docs/litellm.md §8 12).
func TestLiteLLMDropWhileIngestDown(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the real LiteLLM proxy and the whole pipeline")
	}
	s := newStack(t)
	p := stacktest.StartLiteLLMWith(t, s.ingest, ingestToken, stacktest.LiteLLMOptions{Callbacks: stacktest.StockCallbacks})
	run := stacktest.NewName()
	send := func(label string, n int) []string {
		var ids []string
		for i := 0; i < n; i++ {
			r := p.Chat(map[string]any{"model": "chat-a", "user": "end-user-" + run, "metadata": map[string]any{"tags": []string{"e2e:" + run, "phase:" + label}},
				"messages": msg("e2e " + run + ": " + label + " " + string(rune('a'+i)))})
			if r.Status != 200 || r.CallID == "" {
				t.Fatalf("%s request %d: HTTP %d call id %q: %s", label, i, r.Status, r.CallID, stacktest.Tail(r.Body, 500))
			}
			ids = append(ids, r.CallID)
		}
		return ids
	}
	p.Control(`{"reset": true}`)

	// The stock callback also loses events while ingest is up (its queue is
	// cleared after every POST, docs/litellm.md §7.1 5): of the requests
	// sent while ingest is up, one record is enough to know it works.
	before := send("before", 2)
	s.waitAnyRecord(before, 5*time.Minute)

	// Ingest down: LiteLLM answers its clients and queues the payloads.
	drops0 := p.LogCount(dropLine)
	s.stages["ingest"].Kill()
	down := time.Now()
	during := send("during", 3)
	deadline := time.Now().Add(2 * time.Minute)
	for p.LogCount(dropLine) == drops0 {
		if time.Now().After(deadline) {
			t.Fatalf("LiteLLM logged no %q within 2 minutes of ingest going down", dropLine)
		}
		time.Sleep(500 * time.Millisecond)
	}
	retries := p.LogCount("Generic API Logger - retrying request to")
	s.stages["ingest"].Start()
	s.WaitReady(s.ingest)
	t.Logf("ingest down %s; LiteLLM logged %q %d time(s) after %d retry line(s)", time.Since(down).Round(100*time.Millisecond),
		dropLine, p.LogCount(dropLine)-drops0, retries)

	after := send("after", 2)
	s.waitAnyRecord(after, 5*time.Minute)
	// Give LiteLLM every chance to re-send: several flush intervals (1 s
	// here) after the later requests' records are stored.
	time.Sleep(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	recs, err := s.latest(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for _, id := range during {
		if _, ok := recs[id]; !ok {
			lost = append(lost, id)
		}
	}
	var upLost []string
	for _, id := range append(before, after...) {
		if _, ok := recs[id]; !ok {
			upLost = append(upLost, id)
		}
	}
	if len(lost) == 0 {
		t.Errorf("all %d requests sent while ingest was down have records; LiteLLM 1.106.2 was expected to drop that batch", len(during))
	}
	t.Logf("sent %d before, %d while ingest was down, %d after; records: %d; lost (answered 200 to the client, no record, only LiteLLM's log says so): %d [%s]; lost while ingest was up (queue cleared during a POST): %d [%s]",
		len(before), len(during), len(after), len(recs), len(lost), strings.Join(lost, " "), len(upLost), strings.Join(upLost, " "))
}
