package stacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditline/auditline/deploy/testenv"
)

// LiteLLM is a private LiteLLM proxy and its fake OpenAI upstream
// (deploy/litellm/fakeupstream), started with deploy/litellm/start.sh for
// one test on free ports, its callbacks posting to an auditline ingest.
type LiteLLM struct {
	URL    string // the proxy
	Fake   string // the fake upstream (POST /control sets its next failures)
	Master string // the proxy's master key
	Data   string // its data folder (logs in Data/log)
	Env    []string
	t      testing.TB
	hc     *http.Client
}

// StartLiteLLM starts the pinned LiteLLM proxy (gated like the servers:
// skipped when not installed, failed under AUDITLINE_REQUIRE_SERVERS=1) with
// deploy/litellm/config.yaml — auditline's plugin posting to
// ingestURL/v1/litellm (and /started, /config), its spool under Data — and
// its budget alerts to ingestURL/v1/litellm/alerts, both with token. It is
// stopped when the test ends, and its log's tail is printed if the test
// failed.
func StartLiteLLM(t testing.TB, ingestURL, token string) *LiteLLM {
	t.Helper()
	return StartLiteLLMWith(t, ingestURL, token, LiteLLMOptions{})
}

// LiteLLMOptions vary the proxy StartLiteLLMWith starts.
type LiteLLMOptions struct {
	// Callbacks replaces config.yaml's litellm_settings.callbacks value, e.g.
	// StockCallbacks for LiteLLM's own generic_api logger (the degraded,
	// configuration-only mode). Empty: config.yaml's (the plugin).
	Callbacks string
	Workers   int      // --num_workers (0: 1)
	Env       []string // more environment for start.sh and the proxy (AUDITLINE_SPOOL_*, ...)
}

// StockCallbacks is the callbacks value of the degraded mode: LiteLLM's
// generic_api logger as configured in config.yaml's callback_settings.
const StockCallbacks = `["auditline"]`

// StartLiteLLMWith is StartLiteLLM with options.
func StartLiteLLMWith(t testing.TB, ingestURL, token string, o LiteLLMOptions) *LiteLLM {
	t.Helper()
	return StartLiteLLMs(t, ingestURL, token, o)[0]
}

// StartLiteLLMs starts one proxy per options at once (each start takes a
// while on a busy machine) and returns them in that order.
func StartLiteLLMs(t testing.TB, ingestURL, token string, opts ...LiteLLMOptions) []*LiteLLM {
	t.Helper()
	testenv.LiteLLM(t)
	ps := make([]*LiteLLM, len(opts))
	for i, o := range opts {
		ps[i] = newLiteLLM(t, ingestURL, token, o)
	}
	start := time.Now()
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(filepath.Join(RepoRoot(), "deploy", "litellm", "start.sh"), "all")
			cmd.Env = p.Env
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("deploy/litellm/start.sh all: %v\n%s\nlitellm.log:\n%s", err, out, Tail(p.Log(), 4000))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d LiteLLM %s proxies and fakeupstreams started in %s", len(ps), testenv.LiteLLMVersion(), time.Since(start).Round(time.Second))
	return ps
}

// newLiteLLM prepares a proxy's data folder, ports and environment, and its
// stop when the test ends.
func newLiteLLM(t testing.TB, ingestURL, token string, o LiteLLMOptions) *LiteLLM {
	t.Helper()
	data := t.TempDir()
	lport, fport := FreePort(), FreePort()
	p := &LiteLLM{URL: fmt.Sprintf("http://127.0.0.1:%d", lport), Fake: fmt.Sprintf("http://127.0.0.1:%d", fport),
		Master: "sk-auditline-e2e-master", Data: data, t: t, hc: &http.Client{Timeout: 2 * time.Minute}}
	p.Env = append(os.Environ(),
		"AUDITLINE_DATA="+data,
		fmt.Sprintf("LITELLM_PORT=%d", lport), fmt.Sprintf("FAKEUPSTREAM_PORT=%d", fport),
		"AUDITLINE_LITELLM_ENDPOINT="+ingestURL+"/v1/litellm",
		"AUDITLINE_INGEST_TOKEN="+token,
		"WEBHOOK_URL="+ingestURL+"/v1/litellm/alerts?access_token="+token,
		"LITELLM_MASTER_KEY="+p.Master,
		"DEFAULT_FLUSH_INTERVAL_SECONDS=1",
		"LITELLM_START_TIMEOUT=300",
	)
	if o.Workers > 1 {
		p.Env = append(p.Env, fmt.Sprintf("LITELLM_NUM_WORKERS=%d", o.Workers))
	}
	if o.Callbacks != "" {
		p.Env = append(p.Env, "LITELLM_CONFIG="+liteLLMConfig(t, data, o.Callbacks))
	}
	p.Env = append(p.Env, o.Env...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("litellm log (tail):\n%s", Tail(p.Log(), 4000))
		}
		for _, n := range []string{"litellm", "fakeupstream"} {
			cmd := exec.Command(filepath.Join(RepoRoot(), "deploy", "local", "stop.sh"), n)
			cmd.Env = p.Env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("stop.sh %s: %v\n%s", n, err, out)
			}
		}
	})
	return p
}

// liteLLMConfig writes a copy of deploy/litellm/config.yaml whose
// litellm_settings.callbacks is callbacks into data/config/, beside links to
// the modules config.yaml loads by path (the custom guardrail, the plugin).
func liteLLMConfig(t testing.TB, data, callbacks string) string {
	t.Helper()
	src := filepath.Join(RepoRoot(), "deploy", "litellm")
	b, err := os.ReadFile(filepath.Join(src, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^  callbacks: .*$`)
	if n := len(re.FindAll(b, -1)); n != 1 {
		t.Fatalf("deploy/litellm/config.yaml: %d litellm_settings.callbacks lines, want 1", n)
	}
	b = re.ReplaceAll(b, []byte("  callbacks: "+callbacks))
	dir := filepath.Join(data, "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"auditline_guardrail.py", "auditline_litellm"} {
		if err := os.Symlink(filepath.Join(src, n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Log returns the proxy's log so far.
func (p *LiteLLM) Log() []byte {
	b, _ := os.ReadFile(filepath.Join(p.Data, "log", "litellm.log"))
	return b
}

// LogCount returns how many times s appears in the proxy's log.
func (p *LiteLLM) LogCount(s string) int { return bytes.Count(p.Log(), []byte(s)) }

// Control sets the fake upstream's next failures (POST /control).
func (p *LiteLLM) Control(body string) {
	p.t.Helper()
	resp, err := p.hc.Post(p.Fake+"/control", "application/json", strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		p.t.Fatalf("fakeupstream /control %s: %d %s", body, resp.StatusCode, b)
	}
}

// Reply is what a client of the proxy saw.
type Reply struct {
	Status int
	CallID string // x-litellm-call-id
	Cost   string // x-litellm-response-cost
	Body   []byte
}

// Chat sends one OpenAI-format chat completion through the proxy with the
// master key, reading a stream to its end.
func (p *LiteLLM) Chat(req map[string]any) Reply {
	p.t.Helper()
	b, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, p.URL+"/v1/chat/completions", bytes.NewReader(b))
	hr.Header.Set("Authorization", "Bearer "+p.Master)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(hr)
	if err != nil {
		p.t.Fatalf("POST /v1/chat/completions: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("reading the reply: %v", err)
	}
	return Reply{Status: resp.StatusCode, CallID: resp.Header.Get("x-litellm-call-id"), Cost: resp.Header.Get("x-litellm-response-cost"), Body: body}
}
