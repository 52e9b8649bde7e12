package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// Test tokens: tokAll may post everywhere, tokDash only oversight events.
const (
	tokAll  = "test-token-all-scopes"
	tokDash = "test-token-dashboard"
)

func testConfig() Config {
	c := NewDefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Auth.Tokens = []auth.Token{
		{Name: "all", SHA256: auth.Hash(tokAll), Scopes: auth.Scopes, Reviewer: auth.AnyReviewer},
		{Name: "dashboard", SHA256: auth.Hash(tokDash), Scopes: []auth.Scope{auth.ScopeOversight, auth.ScopeAccess}, Reviewer: auth.AnyReviewer},
	}
	c.ProduceTimeout = 3 * time.Second
	c.ShutdownTimeout = 20 * time.Second
	c.CreateTopics = false // the harness creates them before serving
	return c
}

// realBrokerProduceTimeout is produce_timeout in tests on a real broker
// (start): well past a loaded machine's acknowledgement times, and below the
// harness's shutdown_timeout.
const realBrokerProduceTimeout = 15 * time.Second

// harness is one ingest server on a loopback port.
type harness struct {
	t      testing.TB
	url    string
	srv    *Server
	reg    *prometheus.Registry
	kafka  topic.Config
	topics raw.Topics
	cancel context.CancelFunc
	done   chan error
}

// start runs ingest against brokers with a fresh topic namespace.
func start(t testing.TB, brokers []string, mutate func(*Config)) *harness {
	t.Helper()
	kc := topic.NewDefaultConfig()
	kc.Brokers = brokers
	topics := raw.Topics{Prefix: testenv.Name(t) + "."}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := topic.EnsureTopics(ctx, kc, topics); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	// The real broker is given time to acknowledge: on a loaded CI box a
	// produce to the shared broker can take more than the fake's 3 s, and a
	// produce timeout answers 503 where these tests expect 200. Tests of the
	// timeout itself set their own.
	cfg.ProduceTimeout = realBrokerProduceTimeout
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, topic.Shared{Kafka: kc, Topics: topics}, Settings{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, srv, reg, kc, topics)
}

func serve(t testing.TB, srv *Server, reg *prometheus.Registry, kc topic.Config, topics raw.Topics) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	h := &harness{t: t, url: "http://" + ln.Addr().String(), srv: srv, reg: reg, kafka: kc, topics: topics, cancel: rcancel, done: make(chan error, 1)}
	go func() { h.done <- srv.Serve(rctx, ln) }()
	t.Cleanup(func() { h.stop() })
	return h
}

// stop shuts the server down and returns Run's error (once).
func (h *harness) stop() error {
	h.cancel()
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
		}
		return err
	case <-time.After(60 * time.Second):
		h.t.Fatal("ingest did not stop within 60s")
	}
	return nil
}

type reply struct {
	code   int
	header http.Header
	body   []byte
	ok     accepted
	err    errorBody
}

// post sends body to path with token (none when empty) and extra headers.
func (h *harness) post(path, token string, body []byte, hdr ...string) reply {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.url+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{code: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, &r.ok); err != nil {
			h.t.Fatalf("2xx body %q: %v", b, err)
		}
	} else if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.err); err != nil {
			h.t.Fatalf("error body %q: %v", b, err)
		}
	}
	return r
}

// records reads the events of a topic of this harness's namespace to its
// end (watermark records are not events: see watermarks).
func (h *harness) records(topicName string) []*kgo.Record {
	h.t.Helper()
	return h.read(topicName, func(r *kgo.Record) bool { return !raw.IsWatermark(r) })
}

// watermarks reads the watermark records of a topic to its end.
func (h *harness) watermarks(topicName string) []*kgo.Record {
	h.t.Helper()
	return h.read(topicName, raw.IsWatermark)
}

func (h *harness) read(topicName string, keep func(*kgo.Record) bool) []*kgo.Record {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	sc := topic.NewScanner(h.kafka)
	defer sc.Close()
	err := sc.ReadToEnd(ctx, topicName, nil, topic.FromStart(), func(r *kgo.Record) error {
		if keep(r) {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	// Order by (receive time, batch position) so tests can compare with what they sent.
	slices.SortStableFunc(out, func(a, b *kgo.Record) int {
		if c := strings.Compare(raw.Header(a, raw.HeaderReceivedAt), raw.Header(b, raw.HeaderReceivedAt)); c != 0 {
			return c
		}
		return strings.Compare(batchIndex(a), batchIndex(b))
	})
	return out
}

func batchIndex(r *kgo.Record) string {
	_, idx, _ := strings.Cut(raw.Header(r, raw.HeaderBatch), "/")
	return strings.Repeat("0", 8-len(idx)) + idx
}

// allRaw returns every record of every topic (raw.* and DLQ) of the harness.
func (h *harness) allRaw() map[string][]*kgo.Record {
	out := map[string][]*kgo.Record{}
	for _, tp := range []string{h.topics.RawLiteLLM(), h.topics.RawGateway(), h.topics.RawAlerts(), h.topics.RawAdmin(), h.topics.DLQ()} {
		if rs := h.records(tp); len(rs) > 0 {
			out[tp] = rs
		}
	}
	return out
}

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func event(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// fakeProducer records what it is given (copying the bytes, as Kafka does),
// after an optional delay, or fails.
type fakeProducer struct {
	mu      sync.Mutex
	recs    []*kgo.Record
	delay   time.Duration
	err     error
	started chan struct{} // receives once per Produce call, if set
	release chan struct{} // if set, Produce waits until it is closed (or ctx ends)
	panics  bool
}

func (f *fakeProducer) Produce(ctx context.Context, recs ...*kgo.Record) error {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.panics {
		panic("fake producer panic")
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.err != nil {
		return f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range recs {
		c := *r
		c.Value = bytes.Clone(r.Value)
		f.recs = append(f.recs, &c)
	}
	return nil
}

func (f *fakeProducer) Partitions(context.Context, string) (int, error) {
	if f.panics {
		panic("fake partitions panic")
	}
	return 3, nil
}

func (f *fakeProducer) all() []*kgo.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recs)
}

// startFake runs ingest on a fake producer (no Kafka). It writes no
// watermarks unless mutate asks for them: the fakes count and pace every
// Produce call.
func startFake(t *testing.T, fp *fakeProducer, mutate func(*Config)) *harness {
	t.Helper()
	cfg := testConfig()
	cfg.WatermarkInterval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	srv, err := newServer(cfg, raw.Topics{Prefix: "fake."}, Settings{Registry: reg}, fp, fp)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, srv, reg, topic.Config{}, raw.Topics{Prefix: "fake."})
}

// counter reads a metric value from the registry (sum over label sets
// matching all given label pairs).
func (h *harness) counter(name string, labels ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}
