package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/loadgen"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// TestLoadgenLoopback is the loopback load run: loadgen posts json_array
// bodies of 512 payloads to a live ingest on the real broker, and Kafka must
// then hold exactly the accepted payloads, with as many distinct request keys
// as loadgen says decision records are due.
func TestLoadgenLoopback(t *testing.T) {
	h := start(t, testenv.Kafka(t), nil)
	s, err := loadgen.Run(context.Background(), loadgen.Options{URL: h.url, Token: tokAll, Payloads: 5120, Batch: 512,
		Concurrency: 4, Alerts: true, Generator: loadgen.Config{Seed: 42, Gateway: 0.05}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loopback load run:\n%s", s)
	if s.Accepted != 5120 || s.Refused != 0 || s.AlertsAccepted != s.AlertsSent || s.GatewayAccepted != s.GatewaySent {
		t.Fatalf("not everything accepted: %+v", s)
	}
	keys := map[string]bool{}
	n := 0
	for _, r := range h.records(h.topics.RawLiteLLM()) {
		keys[string(r.Key)] = true
		n++
	}
	if n != s.Accepted || len(keys) != s.Records {
		t.Fatalf("Kafka holds %d payloads with %d request keys; loadgen accepted %d and expects %d records", n, len(keys), s.Accepted, s.Records)
	}
	if got := len(h.records(h.topics.RawAlerts())); got != s.AlertsAccepted {
		t.Fatalf("%d alerts in Kafka, %d accepted", got, s.AlertsAccepted)
	}
}

// benchBodies returns n json_array bodies of 512 loadgen payloads each.
func benchBodies(b *testing.B, n int) [][]byte {
	g, err := loadgen.New(loadgen.Config{Seed: 9})
	if err != nil {
		b.Fatal(err)
	}
	var out [][]byte
	var batch [][]byte
	for len(out) < n {
		r := g.Next()
		for _, p := range r.LiteLLM {
			batch = append(batch, p)
			if len(batch) == 512 {
				out = append(out, loadgen.Body(loadgen.FormatJSONArray, batch))
				batch = nil
			}
		}
	}
	return out
}

// BenchmarkIngest measures payloads/s and MB/s through ingest (HTTP on
// loopback → split → records → acks=all on the real broker) for json_array
// bodies of 512 LiteLLM payloads, 4 bodies in flight, beside the baseline of
// plain franz-go producing the same payload bytes (same keys, acks=all,
// idempotent, 512 records per ProduceSync, 4 in flight) in the same run.
// Reports x_raw (ingest/raw throughput) and p50/p99 response time per body.
func BenchmarkIngest(b *testing.B) {
	brokers := testenv.Kafka(b)
	const inflight, rounds = 4, 16
	bodies := benchBodies(b, rounds)
	var totalBytes, totalPayloads int
	type elem struct{ key, value []byte }
	var elems [][]elem
	for _, bd := range bodies {
		_, els, err := body.Split(bd, false, 0)
		if err != nil {
			b.Fatal(err)
		}
		var es []elem
		for _, e := range els {
			v := e.Bytes(bd)
			es = append(es, elem{key: []byte(fmt.Sprint(len(es))), value: v})
			totalBytes += len(v)
		}
		totalPayloads += len(els)
		elems = append(elems, es)
	}

	// Baseline: plain franz-go, same bytes, same concurrency.
	topics := raw.Topics{Prefix: testenv.Name(b) + "."}
	kc := topic.NewDefaultConfig()
	kc.Brokers = brokers
	if err := topic.EnsureTopics(context.Background(), kc, topics); err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(4<<20), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	baseTopic := topics.RawLiteLLM() // same shape (partitions) as ingest's
	produceRound := func() time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, inflight)
		for _, es := range elems {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				recs := make([]*kgo.Record, len(es))
				for i, e := range es {
					recs[i] = &kgo.Record{Topic: baseTopic, Key: e.key, Value: e.value}
				}
				if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	produceRound() // warm up: topic creation, connections
	var baseTime time.Duration
	for range 3 {
		baseTime += produceRound()
	}
	basePPS := float64(3*totalPayloads) / baseTime.Seconds()

	// Ingest on loopback with the real broker.
	h := start(b, brokers, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inflight}}
	post := func(bd []byte) (time.Duration, error) {
		req, _ := http.NewRequest("POST", h.url+"/v1/litellm", bytes.NewReader(bd))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokAll)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d: %s", resp.StatusCode, msg)
		}
		return time.Since(t0), nil
	}
	var mu sync.Mutex
	var lat []time.Duration
	ingestRound := func(warm bool) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, inflight)
		for _, bd := range bodies {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				d, err := post(bd)
				if err != nil {
					if !warm {
						b.Error(err)
					}
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	ingestRound(true) // warm up: producer id, leaders, connections
	lat = nil
	b.SetBytes(int64(totalBytes))
	b.ResetTimer()
	n := 0
	for b.Loop() {
		ingestRound(false)
		n++
	}
	elapsed := b.Elapsed()
	pps := float64(n*totalPayloads) / elapsed.Seconds()
	slices.Sort(lat)
	b.ReportMetric(pps, "payloads/s")
	b.ReportMetric(float64(n*totalBytes)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(basePPS, "raw_payloads/s")
	b.ReportMetric(float64(totalBytes)*3/1e6/baseTime.Seconds(), "raw_MB/s")
	b.ReportMetric(pps/basePPS, "x_raw")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99_ms")
	}
}

// nopProducer acknowledges at once: BenchmarkHandler measures ingest's own
// work per body, without Kafka or the network.
type nopProducer struct{}

func (nopProducer) Produce(context.Context, ...*kgo.Record) error   { return nil }
func (nopProducer) Partitions(context.Context, string) (int, error) { return 3, nil }

// BenchmarkHandler measures the handler alone (auth, limits, split, decode,
// records, answer) on one json_array body of 512 LiteLLM payloads, in
// process: CPU and allocations per body and per payload, no Kafka, no
// sockets. BenchmarkIngest has the figures with the real broker.
func BenchmarkHandler(b *testing.B) {
	bd := benchBodies(b, 1)[0]
	cfg := testConfig()
	srv, err := newServer(cfg, raw.Topics{Prefix: "b."}, Settings{Registry: prometheus.NewRegistry()}, nopProducer{}, nopProducer{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bd)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/litellm", bytes.NewReader(bd))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokAll)
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/512, "ns/payload")
}
