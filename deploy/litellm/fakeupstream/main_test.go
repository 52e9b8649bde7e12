package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, srv *httptest.Server, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp, v
}

func TestChatDeterministicWithUsage(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	req := `{"model":"m1","messages":[{"role":"user","content":"hello there"}]}`
	_, a := post(t, srv, "/v1/chat/completions", req)
	_, b := post(t, srv, "/chat/completions", req)
	ca := a["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"]
	cb := b["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"]
	if ca != cb || !strings.Contains(ca.(string), "hello there") {
		t.Fatalf("replies differ or miss the prompt: %q vs %q", ca, cb)
	}
	if a["id"] == b["id"] {
		t.Fatalf("ids must be unique per request, both %v", a["id"])
	}
	u := a["usage"].(map[string]any)
	if u["total_tokens"].(float64) != u["prompt_tokens"].(float64)+u["completion_tokens"].(float64) {
		t.Fatalf("usage does not add up: %v", u)
	}
}

func TestAzurePathAndStreamingUsage(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/openai/deployments/dep-a/chat/completions?api-version=2024-10-21", "application/json",
		strings.NewReader(`{"messages":[{"role":"user","content":"a b c"}],"stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "data: ") {
			lines = append(lines, strings.TrimPrefix(l, "data: "))
		}
	}
	if len(lines) < 4 || lines[len(lines)-1] != "[DONE]" {
		t.Fatalf("bad stream: %v", lines)
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-2]), &last); err != nil {
		t.Fatal(err)
	}
	if last["usage"] == nil || len(last["choices"].([]any)) != 0 || last["model"] != "dep-a" {
		t.Fatalf("final chunk should carry usage, no choices, model dep-a: %v", last)
	}
}

func TestFailures(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	resp, body := post(t, srv, "/v1/chat/completions", `{"model":"fail-429","messages":[]}`)
	if resp.StatusCode != 429 || body["error"].(map[string]any)["type"] != "rate_limit_error" {
		t.Fatalf("fail-429: %d %v", resp.StatusCode, body)
	}
	resp, _ = post(t, srv, "/openai/deployments/fail-500/chat/completions", `{"messages":[]}`)
	if resp.StatusCode != 500 {
		t.Fatalf("azure fail-500: %d", resp.StatusCode)
	}
	post(t, srv, "/control", `{"fail_next":2,"status":503,"model":"m2"}`)
	for i, want := range []int{200, 503, 503, 200} {
		model := "m2"
		if i == 0 {
			model = "other" // does not match the filter
		}
		resp, _ := post(t, srv, "/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"x"}]}`)
		if resp.StatusCode != want {
			t.Fatalf("request %d: got %d want %d", i, resp.StatusCode, want)
		}
	}
	resp, err := http.Get(srv.URL + "/control")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Requests map[string]int `json:"requests"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Requests["m2 503"] != 2 || st.Requests["m2 200"] != 1 || st.Requests["fail-429 429"] != 1 {
		t.Fatalf("counters: %v", st.Requests)
	}
}

func TestEmbeddings(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	_, v := post(t, srv, "/v1/embeddings", `{"model":"e","input":["a","b"],"dimensions":4}`)
	data := v["data"].([]any)
	if len(data) != 2 || len(data[0].(map[string]any)["embedding"].([]any)) != 4 {
		t.Fatalf("embeddings: %v", v)
	}
}

// TestCallLog: calls are logged per request tag in arrival order, with the
// status answered, and a client that gives up during delay_ms is recorded as
// having abandoned the call.
func TestCallLog(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	msg := `"messages":[{"role":"user","content":"hello route-tag:t-1"}]`
	post(t, srv, "/control", `{"fail_next":1,"status":503}`)
	post(t, srv, "/v1/chat/completions", `{"model":"a",`+msg+`}`)
	post(t, srv, "/openai/deployments/b/chat/completions", `{"stream":true,`+msg+`}`)
	post(t, srv, "/v1/chat/completions", `{"model":"c","messages":[{"role":"user","content":"other route-tag:t-2"}]}`)
	post(t, srv, "/control", `{"delay_ms":5000}`)
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	if _, err := hc.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"slow",`+msg+`}`)); err == nil {
		t.Fatal("the slow call answered within the client's timeout")
	}
	post(t, srv, "/control", `{"reset":true}`)
	var got struct{ Calls []call }
	deadline := time.Now().Add(time.Minute) // the abandoned call is logged when the handler notices; a loaded box may take more than seconds
	for {
		resp, err := http.Get(srv.URL + "/control/calls?tag=t-1")
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if len(got.Calls) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var short []string
	for _, c := range got.Calls {
		short = append(short, fmt.Sprintf("%s %d %v %v", c.Model, c.Status, c.Stream, c.Abandoned))
	}
	want := []string{"a 503 false false", "b 200 true false", "slow 200 false true"}
	if !slices.Equal(short, want) {
		t.Fatalf("calls %q, want %q", short, want)
	}
	if resp, err := http.Get(srv.URL + "/control/calls"); err != nil || resp.StatusCode != 400 {
		t.Fatalf("no tag: %v %v", resp, err)
	}
}
