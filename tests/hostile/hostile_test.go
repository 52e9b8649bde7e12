// Package hostile runs the hostile-input corpus (testdata/corpus.json, one
// table) against a real ingest on the real Kafka: every case is one request —
// huge, deep, malformed, mistyped, slow or replayed — with the exact answer
// expected (status, the error body's reason, a substring, and for 2xx the
// accepted / dead-lettered / skipped counts). After every case the server
// must still answer /healthz and count no recovered panic; at the end a
// valid body is still accepted, and every payload ingest said it accepted is
// on the raw topics (nothing accepted-then-lost).
//
// Set HOSTILE_RECORD=1 to print what the server answers instead of failing
// (to fill in the expectations of a new case, which must then be reviewed).
package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/stacktest"
)

const (
	tokAll  = "hostile-token-all-scopes"
	tokDash = "hostile-token-oversight-only"
	// readTimeout is ingest.read_timeout for the slow-client cases.
	readTimeout = 3 * time.Second
)

// part is a piece of a case's body; the body is the concatenation.
type part struct {
	Text   string `json:"text,omitempty"`   // literal text
	B64    string `json:"b64,omitempty"`    // literal bytes (base64), for invalid UTF-8
	Repeat string `json:"repeat,omitempty"` // Repeat × N
	N      int    `json:"n,omitempty"`
	// Example is a file under ingest/testdata (e.g. examples/01_…json),
	// optionally with dotted paths Set to raw JSON values or Deleted.
	Example string                     `json:"example,omitempty"`
	Set     map[string]json.RawMessage `json:"set,omitempty"`
	Delete  []string                   `json:"delete,omitempty"`
}

// tcase is one row of the corpus.
type tcase struct {
	Name   string `json:"name"`
	Why    string `json:"why,omitempty"`
	Method string `json:"method,omitempty"` // default POST
	Path   string `json:"path,omitempty"`   // default /v1/litellm
	Token  string `json:"token,omitempty"`  // all (default), none, wrong, oversight, raw:<Authorization value>
	// Headers are sent as given; Content-Type defaults to application/json
	// unless set (an empty value sends none).
	Headers map[string]string `json:"headers,omitempty"`
	Body    []part            `json:"body,omitempty"`
	// Client: "" (one request), "chunked" (no Content-Length), "replay" (the
	// same body twice, both answers must match), "slow_headers" (headers
	// never finished), "slow_body" (body stalls after a few bytes).
	Client string `json:"client,omitempty"`

	Status       int    `json:"status"` // 0: connection closed with no answer
	Reason       string `json:"reason,omitempty"`
	Contains     string `json:"contains,omitempty"`
	Accepted     *int   `json:"accepted,omitempty"`
	DeadLettered *int   `json:"dead_lettered,omitempty"`
	SkippedNulls *int   `json:"skipped_nulls,omitempty"`
}

type answer struct {
	status int
	body   []byte
	reason string
	ok     struct {
		Accepted     int `json:"accepted"`
		SkippedNulls int `json:"skipped_nulls"`
		DeadLettered int `json:"dead_lettered"`
	}
}

func loadCorpus(t *testing.T) []tcase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "corpus.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cs []tcase
	if err := dec.Decode(&cs); err != nil {
		t.Fatalf("corpus.json: %v", err)
	}
	names := map[string]bool{}
	for _, c := range cs {
		if names[c.Name] {
			t.Fatalf("corpus.json: duplicate case name %q", c.Name)
		}
		names[c.Name] = true
	}
	return cs
}

func buildBody(t *testing.T, ps []part) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range ps {
		switch {
		case p.Example != "":
			data, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "ingest", "testdata", p.Example))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Set) > 0 || len(p.Delete) > 0 {
				data = patch(t, data, p.Set, p.Delete)
			}
			b.Write(data)
		case p.B64 != "":
			data, err := base64.StdEncoding.DecodeString(p.B64)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
		case p.Repeat != "":
			b.WriteString(strings.Repeat(p.Repeat, p.N))
		default:
			b.WriteString(p.Text)
		}
	}
	return b.Bytes()
}

// patch sets or deletes dotted paths of a JSON object (re-encoded compact,
// keys sorted: enough for these cases, which test types, not byte forms).
func patch(t *testing.T, data []byte, set map[string]json.RawMessage, del []string) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	walk := func(path string) (map[string]any, string) {
		keys := strings.Split(path, ".")
		cur := m
		for _, k := range keys[:len(keys)-1] {
			next, ok := cur[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[k] = next
			}
			cur = next
		}
		return cur, keys[len(keys)-1]
	}
	for path, v := range set {
		obj, k := walk(path)
		obj[k] = v
	}
	for _, path := range del {
		obj, k := walk(path)
		delete(obj, k)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type server struct {
	url    string
	reg    *prometheus.Registry
	topics raw.Topics
	kc     topic.Config
}

func startIngest(t *testing.T) *server {
	t.Helper()
	kc := topic.NewDefaultConfig()
	kc.Brokers = testenv.Kafka(t)
	topics := raw.Topics{Prefix: testenv.Name(t) + "."}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := topic.EnsureTopics(ctx, kc, topics); err != nil {
		t.Fatal(err)
	}
	cfg := ingest.NewDefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.CreateTopics = false
	cfg.ReadTimeout = readTimeout
	cfg.ProduceTimeout = 30 * time.Second // a busy shared broker must not turn a case into a 503
	cfg.Auth.Tokens = []auth.Token{
		{Name: "all", SHA256: auth.Hash(tokAll), Scopes: auth.Scopes, Reviewer: auth.AnyReviewer},
		{Name: "oversight", SHA256: auth.Hash(tokDash), Scopes: []auth.Scope{auth.ScopeOversight}, Reviewer: auth.AnyReviewer},
	}
	reg := prometheus.NewRegistry()
	srv, err := ingest.New(cfg, topic.Shared{Kafka: kc, Topics: topics}, ingest.Settings{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(rctx, ln) }()
	t.Cleanup(func() {
		rcancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ingest stopped with %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("ingest did not stop within a minute")
		}
	})
	return &server{url: "http://" + ln.Addr().String(), reg: reg, topics: topics, kc: kc}
}

func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

var client = &http.Client{Timeout: 2 * time.Minute}

func (s *server) do(t *testing.T, c tcase, body []byte) answer {
	t.Helper()
	method := c.Method
	if method == "" {
		method = http.MethodPost
	}
	path := c.Path
	if path == "" {
		path = "/v1/litellm"
	}
	var rd io.Reader = bytes.NewReader(body)
	if c.Client == "chunked" {
		rd = io.MultiReader(bytes.NewReader(body)) // hides the length: sent chunked
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if _, set := c.Headers["Content-Type"]; !set {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.Headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	switch tok := c.Token; {
	case tok == "" || tok == "all":
		req.Header.Set("Authorization", "Bearer "+tokAll)
	case tok == "oversight":
		req.Header.Set("Authorization", "Bearer "+tokDash)
	case tok == "wrong":
		req.Header.Set("Authorization", "Bearer "+tokAll+"x")
	case tok == "none":
	case strings.HasPrefix(tok, "raw:"):
		req.Header.Set("Authorization", strings.TrimPrefix(tok, "raw:"))
	default:
		t.Fatalf("unknown token %q", tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return parseAnswer(resp.StatusCode, b)
}

func parseAnswer(code int, b []byte) answer {
	a := answer{status: code, body: b}
	if code/100 == 2 {
		_ = json.Unmarshal(b, &a.ok)
	} else {
		var eb struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(b, &eb)
		a.reason = eb.Reason
	}
	return a
}

// slow sends the start of a request over a raw connection and then stalls,
// and returns the server's answer (status 0 when it closes the connection
// without one).
func (s *server) slow(t *testing.T, c tcase, body []byte) answer {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := c.Path
	if path == "" {
		path = "/v1/litellm"
	}
	head := "POST " + path + " HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer " + tokAll + "\r\n"
	switch c.Client {
	case "slow_headers": // a header line trickles in and never ends
		if _, err := io.WriteString(conn, head+"X-Slow: a"); err != nil {
			t.Fatal(err)
		}
	case "slow_body": // the headers promise more body than ever comes
		head += "Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)+1000) + "\r\n\r\n"
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return answer{} // closed without an answer
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return parseAnswer(resp.StatusCode, b)
}

func TestHostileCorpus(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < 50 {
		t.Errorf("the corpus has %d cases, want at least 50", len(cases))
	}
	s := startIngest(t)
	record := os.Getenv("HOSTILE_RECORD") == "1"
	accepted := map[string]int{} // path → payloads answered as accepted
	valid := tcase{Name: "valid", Body: []part{{Example: "examples/01_success_plain_openai.json"}}}
	for _, c := range cases {
		path := c.Path
		if path == "" {
			path = "/v1/litellm"
		}
		t.Run(c.Name, func(t *testing.T) {
			body := buildBody(t, c.Body)
			var got answer
			switch c.Client {
			case "slow_headers", "slow_body":
				got = s.slow(t, c, body)
			case "replay":
				got = s.do(t, c, body)
				again := s.do(t, c, body)
				if again.status != got.status || again.ok != got.ok {
					t.Errorf("replay answered %d %s, first %d %s", again.status, again.body, got.status, got.body)
				}
				accepted[path] += again.ok.Accepted
			default:
				got = s.do(t, c, body)
			}
			if got.status/100 == 2 {
				accepted[path] += got.ok.Accepted
			}
			if record {
				t.Logf("RECORD %s: status %d reason %q accepted %d dead %d nulls %d body %.300s", c.Name, got.status, got.reason,
					got.ok.Accepted, got.ok.DeadLettered, got.ok.SkippedNulls, got.body)
			} else {
				check(t, c, got)
			}
			if got.status >= 500 && got.status != http.StatusServiceUnavailable || got.reason == "panic" {
				t.Errorf("server error %d: %s", got.status, got.body)
			}
			// The server stays healthy and never panicked.
			resp, err := client.Get(s.url + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("/healthz after %s: %v %v", c.Name, err, resp)
			}
			resp.Body.Close()
			if n := s.metric(t, "auditline_ingest_panics_total"); n != 0 {
				t.Fatalf("ingest recovered %v panics", n)
			}
		})
	}
	// Still serving valid traffic.
	if a := s.do(t, valid, buildBody(t, valid.Body)); a.status != 200 || a.ok.Accepted != 1 {
		t.Fatalf("a valid body after the corpus: %d %s", a.status, a.body)
	}
	accepted["/v1/litellm"]++
	// Nothing accepted was lost: the raw topics hold (at least) every
	// payload ingest answered as accepted (its watermark records are not
	// payloads).
	ends := eventCounts(t, s)
	for path, topicName := range map[string]string{
		"/v1/litellm": s.topics.RawLiteLLM(), "/v1/gateway": s.topics.RawGateway(),
		"/v1/litellm/alerts": s.topics.RawAlerts(), "/v1/litellm/audit": s.topics.RawAdmin(),
	} {
		if ends[topicName] != int64(accepted[path]) {
			t.Errorf("%s: %d records on %s, ingest answered %d payloads accepted", path, ends[topicName], topicName, accepted[path])
		}
	}
	t.Logf("%d cases; accepted per endpoint %v; DLQ holds %d records", len(cases), accepted, ends[s.topics.DLQ()])
}

func eventCounts(t *testing.T, s *server) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := stacktest.EventCounts(ctx, s.kc, s.topics.RawLiteLLM(), s.topics.RawGateway(), s.topics.RawAlerts(), s.topics.RawAdmin(), s.topics.DLQ())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func check(t *testing.T, c tcase, got answer) {
	t.Helper()
	if got.status != c.Status {
		t.Errorf("status %d, want %d (reason %q, body %.300s)", got.status, c.Status, got.reason, got.body)
	}
	if c.Status/100 != 2 && got.reason != c.Reason {
		t.Errorf("reason %q, want %q (body %.300s)", got.reason, c.Reason, got.body)
	}
	if c.Contains != "" && !bytes.Contains(got.body, []byte(c.Contains)) {
		t.Errorf("body %.300s does not contain %q", got.body, c.Contains)
	}
	want := func(name string, w *int, g int) {
		if w != nil && *w != g {
			t.Errorf("%s %d, want %d (body %.300s)", name, g, *w, got.body)
		}
	}
	want("accepted", c.Accepted, got.ok.Accepted)
	want("dead_lettered", c.DeadLettered, got.ok.DeadLettered)
	want("skipped_nulls", c.SkippedNulls, got.ok.SkippedNulls)
	if c.Status/100 == 2 && (c.Accepted == nil || c.DeadLettered == nil || c.SkippedNulls == nil) {
		t.Errorf("a 2xx case must state accepted, dead_lettered and skipped_nulls")
	}
}
