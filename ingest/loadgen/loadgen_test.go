package loadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/source"
)

func TestDeterministic(t *testing.T) {
	a, err := New(Config{Seed: 7, Gateway: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(Config{Seed: 7, Gateway: 0.2})
	c, _ := New(Config{Seed: 8, Gateway: 0.2})
	same := true
	for range 200 {
		ra, rb, rc := a.Next(), b.Next(), c.Next()
		if ra.Key != rb.Key || !bytes.Equal(bytes.Join(ra.LiteLLM, nil), bytes.Join(rb.LiteLLM, nil)) ||
			!bytes.Equal(bytes.Join(ra.Gateway, nil), bytes.Join(rb.Gateway, nil)) || !bytes.Equal(bytes.Join(ra.Alerts, nil), bytes.Join(rb.Alerts, nil)) {
			t.Fatal("same seed, different traffic")
		}
		if ra.Key != rc.Key {
			same = false
		}
	}
	if same {
		t.Fatal("different seeds, same traffic")
	}
}

// TestTraffic checks that the traffic is what ingest and enrich expect: every
// payload decodes with the LiteLLM decoder to its request's key, sizes are
// like the examples, every kind occurs, gateway events and alerts pass their
// own decoders, and Records counts distinct keys.
func TestTraffic(t *testing.T) {
	g, err := New(Config{Seed: 1, Gateway: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	sch, err := source.NewSchemas()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	keys := map[string]bool{}
	ids := map[string]bool{}
	var size, n, gw, alerts int
	for range 3000 {
		r := g.Next()
		kinds[r.Kind]++
		keys[r.Key] = true
		want := 1
		if r.Kind == KindFallback || r.Kind == KindRetry {
			want = 2
		}
		if len(r.LiteLLM) != want {
			t.Fatalf("%s: %d payloads", r.Kind, len(r.LiteLLM))
		}
		for _, p := range r.LiteLLM {
			_, els, err := body.Split(p, false, 0)
			if err != nil || len(els) != 1 {
				t.Fatalf("payload does not split: %v\n%s", err, p)
			}
			ev, err := source.LiteLLM(p, els[0].Kind, raw.FormatSingle)
			if err != nil || ev.Key != r.Key {
				t.Fatalf("%s payload: key %q err %v, want %q", r.Kind, ev.Key, err, r.Key)
			}
			if ids[ev.EventID] {
				t.Fatalf("event id %s twice", ev.EventID)
			}
			ids[ev.EventID] = true
			if bytes.Contains(p, []byte("\n")) || !bytes.Contains(p, []byte(`{"id": "`)) {
				t.Fatalf("not json.dumps style: %.100s", p)
			}
			size += len(p)
			n++
		}
		for _, e := range r.Gateway {
			gw++
			ev, err := sch.Gateway(e, body.Object, raw.FormatSingle)
			if err != nil || ev.Key != r.Key {
				t.Fatalf("gateway event: %v %s", err, e)
			}
		}
		for _, a := range r.Alerts {
			alerts++
			if _, err := source.Alert(a, body.Object, raw.FormatSingle); err != nil {
				t.Fatalf("alert: %v %s", err, a)
			}
		}
	}
	for _, k := range []string{KindSuccess, KindStream, KindFallback, KindRetry, KindGuardrail, KindCacheHit, KindBudget} {
		if kinds[k] == 0 {
			t.Errorf("no %s requests in 3000", k)
		}
	}
	if avg := size / n; avg < 3000 || avg > 6000 {
		t.Errorf("average payload %d bytes, want 3–5 KB like the examples", avg)
	}
	if g.Records() != len(keys) || g.Payloads() != n {
		t.Errorf("Records %d (want %d), Payloads %d (want %d)", g.Records(), len(keys), g.Payloads(), n)
	}
	if gw == 0 || alerts == 0 {
		t.Errorf("gateway events %d, alerts %d", gw, alerts)
	}
	t.Logf("kinds %v; %d payloads, average %d bytes; %d gateway events, %d alerts", kinds, n, size/n, gw, alerts)
}

func TestPyFloat(t *testing.T) {
	for f, want := range map[float64]string{0: "0.0", 1: "1.0", 0.00097: "0.00097", 2.5e-06: "2.5e-06", 1763807445.118402: "1763807445.118402", 1e16: "1e+16", -3.5: "-3.5"} {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %s, want %s", f, got, want)
		}
	}
	var buf bytes.Buffer
	pyString(&buf, "é\"\n😀")
	if buf.String() != `"\u00e9\"\n\ud83d\ude00"` {
		t.Errorf("pyString: %s", buf.String())
	}
}

func TestBody(t *testing.T) {
	ps := [][]byte{[]byte(`{"a": 1}`), []byte(`{"b": 2}`)}
	for format, want := range map[string]string{
		FormatJSONArray: `[{"a": 1}, {"b": 2}]`,
		FormatNDJSON:    "{\"a\": 1}\n{\"b\": 2}",
	} {
		if got := string(Body(format, ps)); got != want {
			t.Errorf("%s: %q", format, got)
		}
	}
	if got := string(Body(FormatSingle, ps[:1])); got != `{"a": 1}` {
		t.Errorf("single: %q", got)
	}
}

// TestRun runs against a stand-in server that refuses every fifth body.
func TestRun(t *testing.T) {
	var mu sync.Mutex
	var bodies, payloads int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		if r.URL.Path != "/v1/litellm" {
			w.WriteHeader(200)
			return
		}
		_, els, err := body.Split(b, false, 0)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		bodies++
		if bodies%5 == 0 {
			w.WriteHeader(503)
			return
		}
		payloads += len(els)
		w.WriteHeader(200)
	}))
	defer srv.Close()
	for _, format := range []string{FormatJSONArray, FormatNDJSON, FormatSingle} {
		mu.Lock()
		bodies, payloads = 0, 0
		mu.Unlock()
		var reported int
		keys := map[string]bool{}
		s, err := Run(context.Background(), Options{URL: srv.URL, Token: "tok", Payloads: 1000, Batch: 100, Concurrency: 1,
			Format: format, Alerts: true, Generator: Config{Seed: 3, Gateway: 0.05},
			Accepted: func(ks []string) {
				reported += len(ks)
				for _, k := range ks {
					keys[k] = true
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if reported != s.Accepted || len(keys) != s.Records {
			t.Errorf("%s: Accepted reported %d payloads of %d keys, summary %d payloads of %d records", format, reported, len(keys), s.Accepted, s.Records)
		}
		if s.Sent != 1000 || s.Accepted != payloads || s.Refused != s.Sent-s.Accepted || s.Refused == 0 {
			t.Errorf("%s: %+v (server saw %d accepted)", format, s, payloads)
		}
		if s.Records == 0 || s.Records > s.Accepted || s.P50 <= 0 || s.P99 < s.P50 {
			t.Errorf("%s: records %d p50 %s p99 %s", format, s.Records, s.P50, s.P99)
		}
	}
	// A fixed rate paces the sends.
	t0 := time.Now()
	s, err := Run(context.Background(), Options{URL: srv.URL, Token: "tok", Payloads: 200, Batch: 50, Rate: 1000, Generator: Config{Seed: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 150*time.Millisecond || s.Sent != 200 {
		t.Errorf("200 payloads at 1000/s took %s (sent %d)", d, s.Sent)
	}
	t.Log(s.String())
}
