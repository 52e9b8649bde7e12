package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/raw"
)

// wireScript is how a wireProducer behaves.
type wireScript struct {
	err      error // Produce fails with it
	block    bool  // Produce waits for its context (produce_timeout)
	partsErr error // Partitions fails with it
}

// wireProducer is a scripted producer and partition counter for TestWire.
type wireProducer struct {
	wireScript
	mu   sync.Mutex
	recs []*kgo.Record
}

func (p *wireProducer) Produce(ctx context.Context, recs ...*kgo.Record) error {
	if p.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if p.err != nil {
		return p.err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		c := *r
		c.Key, c.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
		p.recs = append(p.recs, &c)
	}
	return nil
}

func (p *wireProducer) Partitions(context.Context, string) (int, error) {
	if p.partsErr != nil {
		return 0, p.partsErr
	}
	return 3, nil
}

// errReader fails a body read after its bytes.
type errReader struct{ r io.Reader }

func (e *errReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err == io.EOF {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}

// TestWire pins ingest's observable behaviour byte for byte: for every case
// (each refusal, each policy, each Kafka failure) the status, the response
// headers that matter, the response body, every record handed to Kafka
// (topic, partition, key, value, headers in order) and the counters. Run with
// -update after a deliberate change and review the diff.
func TestWire(t *testing.T) {
	secret := []byte("wire-secret-0123456789")
	litellm := example(t, "01_success_plain_openai.json")
	batch := example(t, "09_generic_api_batch_post_body_json_array.json")
	big := bytes.Repeat([]byte("x"), 20000)
	type wcase struct {
		name    string
		path    string
		token   string // "" sends none
		ctype   string // "-" sends none
		hdr     []string
		body    []byte
		chunked bool // no Content-Length
		readErr bool // the body read fails
		prod    wireScript
		hmac    bool // the server requires an HMAC signature
		hold    int64
	}
	cases := []wcase{
		{name: "missing token", path: "/v1/litellm", body: litellm},
		{name: "wrong token", path: "/v1/litellm", token: "nope", body: litellm},
		{name: "insufficient scope", path: "/v1/litellm", token: tokDash, body: litellm},
		{name: "lowercase bearer", path: "/v1/litellm", hdr: []string{"Authorization", "bearer " + tokAll}, body: litellm},
		{name: "bad content type", path: "/v1/litellm", token: tokAll, ctype: "text/csv", body: litellm},
		{name: "latin1", path: "/v1/litellm", token: tokAll, ctype: "application/json; charset=latin1", body: litellm},
		{name: "no content type", path: "/v1/litellm", token: tokAll, ctype: "-", body: litellm},
		{name: "content length too large", path: "/v1/litellm", token: tokAll, body: bytes.Repeat([]byte(" "), 70<<10)},
		{name: "chunked too large", path: "/v1/litellm", token: tokAll, chunked: true, body: bytes.Repeat([]byte(" "), 70<<10)},
		{name: "chunked ok", path: "/v1/litellm", token: tokAll, chunked: true, body: litellm},
		{name: "read error", path: "/v1/litellm", token: tokAll, readErr: true, body: litellm},
		{name: "overloaded", path: "/v1/litellm", token: tokAll, body: litellm, hold: 127 << 10},
		{name: "single", path: "/v1/litellm", token: tokAll, body: litellm},
		{name: "json array", path: "/v1/litellm", token: tokAll, body: batch},
		{name: "ndjson by content type", path: "/v1/litellm", token: tokAll, ctype: "application/x-ndjson",
			body: []byte(`{"id":"a","litellm_call_id":"c1"}` + "\n" + `{"id":"b","litellm_call_id":"c2"}`)},
		{name: "ndjson sniffed", path: "/v1/litellm", token: tokAll, body: []byte("{\"id\":\"a\"}\n{\"id\":\"b\"}\n")},
		{name: "nulls and bad element", path: "/v1/litellm", token: tokAll, body: []byte(`[null, "str", {"id":"x","status":"success"}, 7, null]`)},
		{name: "python nan", path: "/v1/litellm", token: tokAll, body: event(t, "litellm_python_nan.json")},
		{name: "legacy v1", path: "/v1/litellm", token: tokAll, body: event(t, "litellm_legacy_v1.json")},
		{name: "empty array", path: "/v1/litellm", token: tokAll, body: []byte(`[]`)},
		{name: "invalid json", path: "/v1/litellm", token: tokAll, body: []byte("[{\"id\":1},\n {\"id\": nul}]")},
		{name: "empty body", path: "/v1/litellm", token: tokAll, body: nil},
		{name: "invalid json in parts", path: "/v1/litellm", token: tokAll, body: append(append([]byte("["), big...), '!')},
		{name: "too many events", path: "/v1/litellm", token: tokAll, body: []byte("[" + strings.Repeat("{},", 20) + "{}]")},
		{name: "event too large", path: "/v1/litellm", token: tokAll, body: []byte(`[{"id":"small"}, {"id":"` + string(big) + `"}]`)},
		{name: "event too large after bad", path: "/v1/litellm", token: tokAll, body: []byte(`["bad", {"id":"` + string(big) + `"}]`)},
		{name: "alert", path: "/v1/litellm/alerts", token: tokAll, body: example(t, "10_alert_webhook_budget_crossed_key.json")},
		{name: "alert not object", path: "/v1/litellm/alerts", token: tokAll, body: []byte(`[1]`)},
		{name: "audit", path: "/v1/litellm/audit", token: tokAll, body: example(t, "14_audit_log_key_budget_update.json")},
		{name: "gateway", path: "/v1/gateway", token: tokAll, body: event(t, "gateway_block.json")},
		{name: "gateway two", path: "/v1/gateway", token: tokAll, body: []byte("[" + string(event(t, "gateway_block.json")) + "," + string(event(t, "gateway_allow.json")) + "]")},
		{name: "gateway invalid", path: "/v1/gateway", token: tokAll, body: []byte(`[` + string(event(t, "gateway_allow.json")) + `, {"schema":"auditline.gateway-event.v1"}]`)},
		{name: "gateway null", path: "/v1/gateway", token: tokAll, body: []byte(`[null]`)},
		{name: "oversight review", path: "/v1/oversight", token: tokDash, body: event(t, "oversight_review.json")},
		{name: "oversight sampling fan-out", path: "/v1/oversight", token: tokAll,
			body: []byte("[" + string(event(t, "oversight_review.json")) + "," + string(event(t, "oversight_sampling.json")) + "]")},
		{name: "fan-out metadata down", path: "/v1/oversight", token: tokAll, body: event(t, "oversight_sampling.json"),
			prod: wireScript{partsErr: errors.New("no metadata")}},
		{name: "produce error", path: "/v1/litellm", token: tokAll, body: litellm, prod: wireScript{err: errors.New("broker gone")}},
		{name: "produce timeout", path: "/v1/litellm", token: tokAll, body: litellm, prod: wireScript{block: true}},
		{name: "dlq produce error", path: "/v1/litellm", token: tokAll, body: []byte("{oops"), prod: wireScript{err: errors.New("broker gone")}},
		{name: "dlq produce timeout", path: "/v1/gateway", token: tokAll, body: []byte(`{"schema":"x"}`), prod: wireScript{block: true}},
		{name: "hmac missing", path: "/v1/litellm", token: tokAll, body: litellm, hmac: true},
		{name: "hmac malformed", path: "/v1/litellm", token: tokAll, body: litellm, hmac: true, hdr: []string{auth.DefaultSignatureHeader, "sha256=zz"}},
		{name: "hmac wrong", path: "/v1/litellm", token: tokAll, body: litellm, hmac: true, hdr: []string{auth.DefaultSignatureHeader, auth.Sign([]byte("other"), litellm)}},
		{name: "hmac good", path: "/v1/litellm", token: tokAll, body: litellm, hmac: true, hdr: []string{auth.DefaultSignatureHeader, auth.Sign(secret, litellm)}},
		{name: "hmac checked before bad json", path: "/v1/litellm", token: tokAll, body: []byte("{oops"), hmac: true},
		{name: "auth before content type", path: "/v1/litellm", ctype: "text/csv", body: litellm},
		{name: "content type before size", path: "/v1/litellm", token: tokAll, ctype: "text/csv", body: bytes.Repeat([]byte(" "), 70<<10)},
	}
	received := time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC)
	var out bytes.Buffer
	for i := range cases {
		c := &cases[i]
		cfg := testConfig()
		cfg.MaxBodyBytes = 64 << 10
		cfg.MaxInflightBytes = 128 << 10
		cfg.MaxEvents = 20
		cfg.MaxEventBytes = 8192
		// A producer that blocks is cut off quickly; one that answers at
		// once gets a timeout a loaded box cannot run out (with 50 ms for
		// all, its produce goroutine could be scheduled after the timer
		// and a 200 become a 503).
		cfg.ProduceTimeout = 30 * time.Second
		if c.prod.block {
			cfg.ProduceTimeout = 50 * time.Millisecond
		}
		if c.hmac {
			cfg.Auth.HMAC.Secrets = []string{string(secret)}
			cfg.Auth.HMAC.Required = true
		}
		reg := prometheus.NewRegistry()
		prod := &wireProducer{wireScript: c.prod}
		srv, err := newServer(cfg, raw.Topics{Prefix: "w."}, Settings{Registry: reg}, prod, prod)
		if err != nil {
			t.Fatal(err)
		}
		srv.now = func() time.Time { return received }
		if c.hold > 0 && !srv.acquire(c.hold) {
			t.Fatal("cannot hold the budget")
		}
		var rd io.Reader = bytes.NewReader(c.body)
		if c.readErr {
			rd = &errReader{r: bytes.NewReader(c.body)}
		}
		req := httptest.NewRequest("POST", c.path, rd)
		switch {
		case c.chunked || c.readErr:
			req.ContentLength = -1
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		switch c.ctype {
		case "":
			req.Header.Set("Content-Type", "application/json")
		case "-":
		default:
			req.Header.Set("Content-Type", c.ctype)
		}
		for i := 0; i+1 < len(c.hdr); i += 2 {
			req.Header.Set(c.hdr[i], c.hdr[i+1])
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		if err := srv.waitPending(context.Background(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if c.hold > 0 {
			srv.release(c.hold)
		}
		res := w.Result()
		fmt.Fprintf(&out, "=== %s: POST %s\n%d\n", c.name, c.path, res.StatusCode)
		for _, h := range []string{"Content-Type", "X-Content-Type-Options", "Retry-After", "WWW-Authenticate"} {
			if v := res.Header.Get(h); v != "" {
				fmt.Fprintf(&out, "%s: %s\n", h, v)
			}
		}
		body, _ := io.ReadAll(res.Body)
		out.Write(body)
		prod.mu.Lock()
		for _, r := range prod.recs {
			fmt.Fprintf(&out, "record %s p%d key=%q value=%s\n", r.Topic, r.Partition, r.Key, digest(r.Value))
			for _, h := range r.Headers {
				fmt.Fprintf(&out, "  %s=%q\n", h.Key, h.Value)
			}
		}
		prod.mu.Unlock()
		out.WriteString(metricLines(t, reg))
		if v := srv.inflight.Load(); v != 0 {
			t.Errorf("%s: %d bytes still in flight", c.name, v)
		}
	}
	golden := filepath.Join("testdata", "golden", "wire.txt")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		got := strings.Split(out.String(), "\n")
		exp := strings.Split(string(want), "\n")
		for i := range max(len(got), len(exp)) {
			g, e := "", ""
			if i < len(got) {
				g = got[i]
			}
			if i < len(exp) {
				e = exp[i]
			}
			if g != e {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run with -update after a deliberate change)", golden, i+1, g, e)
			}
		}
	}
}

// digest shows short values whole and long ones by length and SHA-256.
func digest(v []byte) string {
	if len(v) <= 80 {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%d bytes sha256:%x", len(v), sha256.Sum256(v))
}

// metricLines lists the counters the cases move (not timings or gauges).
func metricLines(t *testing.T, reg *prometheus.Registry) string {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() == nil || m.GetCounter().GetValue() == 0 {
				continue
			}
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			lines = append(lines, fmt.Sprintf("metric %s{%s} %v", mf.GetName(), strings.Join(ls, ","), m.GetCounter().GetValue()))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}
