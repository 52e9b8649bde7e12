// Command fakeupstream is a small OpenAI-compatible server for local tests of the
// LiteLLM proxy: deterministic chat completions (JSON and SSE streaming),
// embeddings, and failures on demand, so retries and fallbacks can be forced
// without any real provider or network.
//
// Endpoints (any path prefix is accepted, so OpenAI-style api_base ".../v1" and
// Azure-style ".../openai/deployments/<name>/chat/completions?api-version=..."
// both work):
//
//	POST .../chat/completions   chat; "stream": true answers with SSE chunks and,
//	                            with "stream_options": {"include_usage": true},
//	                            a final chunk that carries usage and no choices
//	POST .../embeddings         one deterministic vector per input
//	GET  .../models             the models seen so far
//	GET  /health                {"status":"ok"}
//	POST /control               {"fail_next": 2, "status": 429, "model": "gpt-x",
//	                             "delay_ms": 0, "reset": false}: the next N matching
//	                            requests fail with that status ("model" empty = any)
//	GET  /control               current state and per-model request counters
//	GET  /control/calls?tag=T   every call whose messages hold "route-tag:T", in
//	                            arrival order: {"calls": [{"seq", "tag", "model",
//	                            "status", "stream", "start", "end", "abandoned"}]}
//	                            (abandoned: the client went away during delay_ms,
//	                            e.g. its timeout expired). The proxy's own log of a
//	                            request's attempts can be compared with it exactly.
//
// Failure by model name: a model (body "model", or the Azure deployment name in the
// path) containing "fail-<status>" (fail-429, fail-500, fail-503, ...) always fails
// with that status and an OpenAI-style error body.
//
// Answers are deterministic: the reply text and token counts depend only on the
// request messages and model. Response ids carry a sequence number so that two
// identical requests still get distinct ids, as real providers do.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// created is a fixed timestamp so bodies are reproducible.
const created = 1763807445

type server struct {
	seq atomic.Uint64

	mu       sync.Mutex
	failNext int
	failCode int
	failFor  string // model filter for failNext; "" = any
	delay    time.Duration
	counts   map[string]int // "<model> <status>" -> requests
	calls    []call         // the last maxCalls calls, oldest first
	callSeq  int
}

// call is one upstream call as this server saw it.
type call struct {
	Seq       int       `json:"seq"`
	Tag       string    `json:"tag"`
	Model     string    `json:"model"`
	Status    int       `json:"status"`
	Stream    bool      `json:"stream"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Abandoned bool      `json:"abandoned"`
}

const maxCalls = 10000

var routeTag = regexp.MustCompile(`route-tag:([A-Za-z0-9._-]+)`)

// tagOf returns the request tag a test put in the messages ("route-tag:T"), or "".
func tagOf(prompt string) string {
	if m := routeTag.FindStringSubmatch(prompt); m != nil {
		return m[1]
	}
	return ""
}

type chatRequest struct {
	Model         string          `json:"model"`
	Messages      []chatMessage   `json:"messages"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	MaxTokens     *int            `json:"max_tokens"`
	User          string          `json:"user"`
	Tools         json.RawMessage `json:"tools"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

var failModel = regexp.MustCompile(`fail-([0-9]{3})`)
var azureDeployment = regexp.MustCompile(`/deployments/([^/]+)/`)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address (keep it on loopback)")
	quiet := flag.Bool("quiet", false, "do not log each request")
	flag.Parse()

	h := newHandler()
	if !*quiet {
		h = logRequests(h)
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("fakeupstream listening on %s", *addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// newHandler returns the whole API with fresh state.
func newHandler() http.Handler {
	s := &server{counts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/control", s.control)
	mux.HandleFunc("GET /control/calls", s.callsFor)
	mux.HandleFunc("/", s.route)
	return mux
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		t0 := time.Now()
		next.ServeHTTP(rec, r)
		model := ""
		if m := rec.Header().Get("X-Fakeupstream-Model"); m != "" {
			model = " model=" + m
		}
		log.Printf("%s %s%s -> %d in %s", r.Method, r.URL.RequestURI(), model, rec.status, time.Since(t0).Round(time.Microsecond))
	})
}

func (s *server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/chat/completions") && r.Method == http.MethodPost:
		s.chat(w, r)
	case strings.HasSuffix(p, "/embeddings") && r.Method == http.MethodPost:
		s.embeddings(w, r)
	case strings.HasSuffix(p, "/models") && r.Method == http.MethodGet:
		s.models(w)
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", "not_found",
			fmt.Sprintf("fakeupstream: no route for %s %s", r.Method, p))
	}
}

// modelOf returns the model a request is for: the Azure deployment in the path
// when there is one, else the body's "model".
func modelOf(r *http.Request, bodyModel string) string {
	if m := azureDeployment.FindStringSubmatch(r.URL.Path); m != nil {
		return m[1]
	}
	return bodyModel
}

// failure decides whether this request fails, and with which status.
func (s *server) failure(model string) int {
	if m := failModel.FindStringSubmatch(model); m != nil {
		code, _ := strconv.Atoi(m[1])
		return code
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 && (s.failFor == "" || s.failFor == model) {
		s.failNext--
		return s.failCode
	}
	return 0
}

// count counts and logs a call, then waits delay_ms (or until the client
// goes away, which the log records as abandoned).
func (s *server) count(w http.ResponseWriter, r *http.Request, model string, status int, tag string, stream bool) {
	w.Header().Set("X-Fakeupstream-Model", model)
	s.mu.Lock()
	s.counts[fmt.Sprintf("%s %d", model, status)]++
	d := s.delay
	s.callSeq++
	c := call{Seq: s.callSeq, Tag: tag, Model: model, Status: status, Stream: stream, Start: time.Now().UTC()}
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			c.Abandoned = true
		}
	}
	c.End = time.Now().UTC()
	s.mu.Lock()
	if len(s.calls) >= maxCalls {
		s.calls = append(s.calls[:0], s.calls[len(s.calls)-maxCalls+1:]...)
	}
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

// callsFor answers GET /control/calls?tag=T.
func (s *server) callsFor(w http.ResponseWriter, r *http.Request) {
	tag := r.URL.Query().Get("tag")
	if tag == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "tag", "tag is required")
		return
	}
	s.mu.Lock()
	out := []call{}
	for _, c := range s.calls {
		if c.Tag == tag {
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	writeJSON(w, http.StatusOK, map[string]any{"calls": out})
}

func (s *server) chat(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "bad_body", err.Error())
		return
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "fakeupstream: body is not JSON: "+err.Error())
		return
	}
	model := modelOf(r, req.Model)
	prompt := promptText(req.Messages)
	tag := tagOf(prompt)
	if code := s.failure(model); code != 0 {
		s.count(w, r, model, code, tag, req.Stream)
		failWith(w, code, model)
		return
	}
	s.count(w, r, model, 200, tag, req.Stream)
	setRateLimitHeaders(w)

	reply := replyFor(model, prompt)
	if req.MaxTokens != nil && *req.MaxTokens > 0 {
		words := strings.Fields(reply)
		if len(words) > *req.MaxTokens {
			reply = strings.Join(words[:*req.MaxTokens], " ")
		}
	}
	u := usage{PromptTokens: tokens(prompt) + 3*len(req.Messages), CompletionTokens: tokens(reply)}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	id := fmt.Sprintf("chatcmpl-fake%06d%s", s.seq.Add(1), shortHash(model+"\x00"+prompt))

	if !req.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": model,
			"system_fingerprint": "fp_fakeupstream",
			"choices": []any{map[string]any{
				"index": 0, "finish_reason": "stop", "logprobs": nil,
				"message": map[string]any{"role": "assistant", "content": reply, "refusal": nil},
			}},
			"usage": u,
		})
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"system_fingerprint": "fp_fakeupstream",
			"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for i, word := range strings.Fields(reply) {
		if i > 0 {
			word = " " + word
		}
		send(chunk(map[string]any{"content": word}, nil))
	}
	send(chunk(map[string]any{}, "stop"))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"system_fingerprint": "fp_fakeupstream", "choices": []any{}, "usage": u,
		})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

func (s *server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model      string          `json:"model"`
		Input      json.RawMessage `json:"input"`
		Dimensions int             `json:"dimensions"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 32<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "fakeupstream: body is not JSON: "+err.Error())
		return
	}
	model := modelOf(r, req.Model)
	if code := s.failure(model); code != 0 {
		s.count(w, r, model, code, "", false)
		failWith(w, code, model)
		return
	}
	s.count(w, r, model, 200, "", false)
	setRateLimitHeaders(w)
	var inputs []string
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		inputs = []string{one}
	} else if err := json.Unmarshal(req.Input, &inputs); err != nil {
		// token arrays: use their JSON text
		inputs = []string{string(req.Input)}
	}
	dims := req.Dimensions
	if dims <= 0 || dims > 4096 {
		dims = 8
	}
	data := make([]any, 0, len(inputs))
	total := 0
	for i, in := range inputs {
		total += tokens(in)
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": vector(in, dims)})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "model": model, "data": data,
		"usage": map[string]int{"prompt_tokens": total, "total_tokens": total},
	})
}

func (s *server) models(w http.ResponseWriter) {
	s.mu.Lock()
	seen := map[string]bool{}
	for k := range s.counts {
		seen[strings.SplitN(k, " ", 2)[0]] = true
	}
	s.mu.Unlock()
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	data := make([]any, 0, len(names))
	for _, n := range names {
		data = append(data, map[string]any{"id": n, "object": "model", "created": created, "owned_by": "fakeupstream"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *server) control(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var c struct {
			FailNext *int   `json:"fail_next"`
			Status   int    `json:"status"`
			Model    string `json:"model"`
			DelayMS  *int   `json:"delay_ms"`
			Reset    bool   `json:"reset"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&c); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", err.Error())
			return
		}
		if c.Status == 0 {
			c.Status = http.StatusTooManyRequests
		}
		if c.Status < 400 || c.Status > 599 {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "bad_status", "status must be 4xx or 5xx")
			return
		}
		s.mu.Lock()
		if c.Reset {
			s.failNext, s.failFor, s.delay, s.counts = 0, "", 0, map[string]int{}
			// the call log stays: tests read it by their own tags
		}
		if c.FailNext != nil {
			s.failNext, s.failCode, s.failFor = *c.FailNext, c.Status, c.Model
		}
		if c.DelayMS != nil {
			s.delay = time.Duration(*c.DelayMS) * time.Millisecond
		}
		s.mu.Unlock()
	} else if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method", "GET or POST")
		return
	}
	s.mu.Lock()
	counts := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		counts[k] = v
	}
	state := map[string]any{
		"fail_next": s.failNext, "status": s.failCode, "model": s.failFor,
		"delay_ms": s.delay.Milliseconds(), "requests": counts,
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, state)
}

// failWith answers with an OpenAI-style error body for the status.
func failWith(w http.ResponseWriter, code int, model string) {
	typ, errCode, msg := "server_error", "server_error", "The server had an error while processing your request."
	switch {
	case code == http.StatusTooManyRequests:
		typ, errCode = "rate_limit_error", "rate_limit_exceeded"
		msg = fmt.Sprintf("Rate limit reached for %s (fakeupstream): limit 0 requests per min. Please try again in 0s.", model)
		w.Header().Set("Retry-After", "0")
		w.Header().Set("x-ratelimit-limit-requests", "0")
		w.Header().Set("x-ratelimit-remaining-requests", "0")
	case code == http.StatusUnauthorized:
		typ, errCode, msg = "invalid_request_error", "invalid_api_key", "Incorrect API key provided (fakeupstream)."
	case code < 500:
		typ, errCode, msg = "invalid_request_error", "bad_request", fmt.Sprintf("fakeupstream: forced %d", code)
	}
	writeError(w, code, typ, errCode, msg)
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func setRateLimitHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("x-ratelimit-limit-requests", "10000")
	h.Set("x-ratelimit-remaining-requests", "9999")
	h.Set("x-ratelimit-limit-tokens", "1000000")
	h.Set("x-ratelimit-remaining-tokens", "999000")
}

// promptText flattens message contents (strings or content-part arrays).
func promptText(msgs []chatMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			b.WriteString(s)
		} else {
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			if json.Unmarshal(m.Content, &parts) == nil {
				for _, p := range parts {
					b.WriteString(p.Text)
					b.WriteByte(' ')
				}
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func lastLine(prompt string) string {
	lines := strings.Split(strings.TrimSpace(prompt), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// replyFor is the deterministic answer: it names the model and echoes the last
// message (at most 24 words).
func replyFor(model, prompt string) string {
	words := strings.Fields(lastLine(prompt))
	if len(words) > 24 {
		words = words[:24]
	}
	return fmt.Sprintf("fakeupstream %s reply %s: %s", model, shortHash(prompt), strings.Join(words, " "))
}

// tokens is a deterministic stand-in for a tokenizer: one token per word, at least one.
func tokens(s string) int {
	n := len(strings.Fields(s))
	if n == 0 {
		return 1
	}
	return n
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x", h[:4])
}

// vector is a unit-length vector derived from the input's SHA-256.
func vector(in string, dims int) []float64 {
	v := make([]float64, dims)
	var norm float64
	seed := sha256.Sum256([]byte(in))
	for i := 0; i < dims; i++ {
		block := sha256.Sum256(append(seed[:], byte(i), byte(i>>8)))
		x := float64(binary.BigEndian.Uint32(block[:4]))/float64(math.MaxUint32)*2 - 1
		v[i] = x
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = math.Round(v[i]/norm*1e6) / 1e6
	}
	return v
}
