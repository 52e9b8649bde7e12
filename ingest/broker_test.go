package ingest

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/raw"
)

// uniqueBatch returns a json_array body of n LiteLLM-shaped payloads whose
// event ids are "litellm:<prefix>-<i>:success".
func uniqueBatch(prefix string, n int) ([]byte, []string) {
	var sb strings.Builder
	ids := make([]string, n)
	sb.WriteByte('[')
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		id := fmt.Sprintf("%s-%d", prefix, i)
		ids[i] = "litellm:" + id + ":success"
		fmt.Fprintf(&sb, `{"id": "%s", "trace_id": "t-%s", "litellm_call_id": "c-%s", "status": "success", "response_cost": NaN, "pad": "%s"}`,
			id, id, id, strings.Repeat("x", 800))
	}
	sb.WriteByte(']')
	return []byte(sb.String()), ids
}

// TestBrokerStopped stops a private broker while senders post batches:
// every request is answered within produce_timeout (+ slack) with 200 or
// 503 + Retry-After, and every event of every 200 is in Kafka once the broker
// is back. Nothing that was not acknowledged is reported as accepted.
func TestBrokerStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Kafka")
	}
	p := testenv.StartPrivate(t, "kafka")
	// Slack for a loaded box's HTTP round trip and scheduling; the bound
	// (produce_timeout + slack) stays at twice produce_timeout, as before.
	const produceTimeout, slack = 3 * time.Second, 3 * time.Second
	h := start(t, []string{p.Addr}, func(c *Config) { c.ProduceTimeout = produceTimeout })

	var (
		mu        sync.Mutex
		acked     = map[string]bool{} // event ids of 200 responses
		n200      atomic.Int64
		n503      atomic.Int64
		slowest   atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		badStatus atomic.Value
	)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b, ids := uniqueBatch(fmt.Sprintf("w%d-%d", w, i), 50)
				t0 := time.Now()
				r := h.post("/v1/litellm", tokAll, b)
				d := time.Since(t0)
				for {
					cur := slowest.Load()
					if int64(d) <= cur || slowest.CompareAndSwap(cur, int64(d)) {
						break
					}
				}
				switch r.code {
				case 200:
					if r.ok.Accepted != len(ids) {
						badStatus.Store(fmt.Sprintf("200 with accepted=%d", r.ok.Accepted))
					}
					n200.Add(1)
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					mu.Unlock()
				case 503:
					if r.header.Get("Retry-After") == "" {
						badStatus.Store("503 without Retry-After")
					}
					n503.Add(1)
					time.Sleep(100 * time.Millisecond)
				default:
					badStatus.Store(fmt.Sprintf("status %d: %s", r.code, r.body))
				}
			}
		}()
	}
	waitUntil := func(what string, cond func() bool) {
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (200s %d, 503s %d)", what, n200.Load(), n503.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil("some accepted batches", func() bool { return n200.Load() >= 5 })
	p.Stop(t) // mid-request: senders are posting all the time
	before := n503.Load()
	waitUntil("503s while the broker is down", func() bool { return n503.Load() >= before+6 })
	if d := time.Duration(slowest.Load()); d > produceTimeout+slack {
		t.Errorf("slowest answer took %s, want within produce_timeout (%s) + slack", d, produceTimeout)
	}
	p.Start(t)
	after := n200.Load()
	waitUntil("accepted batches after the restart", func() bool { return n200.Load() >= after+5 })
	close(stop)
	wg.Wait()
	if v := badStatus.Load(); v != nil {
		t.Fatal(v)
	}

	inKafka := map[string]int{}
	for _, r := range h.records(h.topics.RawLiteLLM()) {
		inKafka[raw.Header(r, raw.HeaderEventID)]++
	}
	missing := 0
	for id := range acked {
		if inKafka[id] == 0 {
			missing++
		}
	}
	extra := len(inKafka) - len(acked)
	t.Logf("200s: %d, 503s: %d, slowest answer %s; events acknowledged %d, in Kafka %d (%d from 503'd bodies that landed later, de-duplicated downstream by event id)",
		n200.Load(), n503.Load(), time.Duration(slowest.Load()), len(acked), len(inKafka), extra)
	if missing > 0 {
		t.Fatalf("%d events answered 200 are not in Kafka", missing)
	}
}
