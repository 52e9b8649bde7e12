package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/tests/internal/pipeline"
)

const ingestToken = "e2e-litellm-ingest-token"

// stack is auditline's ingest, enrich, store and archive as child processes
// on the real Kafka, ClickHouse and MinIO, with a unique topic prefix,
// database and archive prefix.
type stack struct {
	t      *testing.T
	bin    string
	dir    string
	config string
	pubKey string
	env    []string
	ingest string // base URL
	db     string
	conn   clickhouse.Conn
	stages map[string]*pipeline.Proc
}

func newStack(t *testing.T) *stack {
	t.Helper()
	kafka := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	s3 := testenv.S3(t)
	name := testenv.Name(t)
	dir := t.TempDir()
	s := &stack{t: t, dir: dir, db: name, bin: pipeline.Build(t, dir), stages: map[string]*pipeline.Proc{}}
	port := testenv.FreePort(t)
	s.ingest = fmt.Sprintf("http://127.0.0.1:%d", port)
	key := filepath.Join(dir, "archive-key.pem")
	s.pubKey = key + ".pub"
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
topic_prefix: %s.
log:
  level: info
ops:
  listen: ""
ingest:
  listen: 127.0.0.1:%d
  auth:
    tokens:
      - {name: litellm, env: E2E_INGEST_TOKEN, scopes: [litellm, alerts]}
    query_token: true
enrich:
  group: %s-enrich
store:
  clickhouse:
    addr: [%s]
    database: %s
  group: %s-store
  linger: 200ms
archive:
  s3: {endpoint: %q, secure: %v, access_key: %q, secret_key: %q, bucket: %q}
  group: %s-archive
  prefix: e2e-litellm/%s/
  signing_key_file: %s
  retention: {mode: GOVERNANCE, period: 1m}
  batch: {max_age: 2s}
  checkpoint: {interval: 5s}
`, strings.Join(kafka, ", "), name, port, name, chAddr, name, name,
		s3.Endpoint, s3.Secure, s3.AccessKey, s3.SecretKey, s3.Bucket, name, name, key)
	s.config = filepath.Join(dir, "auditline.yaml")
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The shared-stack short forms would override this config's addresses.
	s.env = append(os.Environ(), "E2E_INGEST_TOKEN="+ingestToken,
		"AUDITLINE_KAFKA=", "AUDITLINE_CLICKHOUSE=", "AUDITLINE_S3=", "AUDITLINE_S3_BUCKET=", "AUDITLINE_CONFIG=")
	s.must("keys", "generate", "--out", key)
	s.must("migrate", "--config", s.config)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, Auth: clickhouse.Auth{Database: name, Username: "default"},
		DialTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.conn = conn
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`")
		conn.Close()
	})
	order := []string{"ingest", "enrich", "store", "archive"}
	for _, st := range order {
		f, err := os.Create(filepath.Join(dir, st+".log"))
		if err != nil {
			t.Fatal(err)
		}
		p := &pipeline.Proc{T: t, Name: st, Args: []string{s.bin, st, "--config", s.config}, Env: s.env, Log: f}
		s.stages[st] = p
		p.Start()
	}
	t.Cleanup(func() {
		for _, st := range order {
			s.stages[st].Stop()
			s.stages[st].Log.Close()
			b, _ := os.ReadFile(s.stages[st].Log.Name())
			if bytes.Contains(b, []byte("panic:")) {
				t.Errorf("auditline %s logged a panic", st)
			}
			if t.Failed() {
				t.Logf("auditline %s log (tail):\n%s", st, tail(b, 3000))
			}
		}
	})
	s.waitReady()
	return s
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// run runs the binary to completion.
func (s *stack) run(args ...string) (string, error) {
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *stack) must(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatalf("auditline %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *stack) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(s.ingest + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ingest not ready at %s: %v", s.ingest, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// proxy is a private LiteLLM proxy and fake upstream started with
// deploy/litellm/start.sh for one test.
type proxy struct {
	t        *testing.T
	data     string
	env      []string
	url      string
	fake     string
	master   string
	hc       *http.Client
	runLabel string
}

func startProxy(t *testing.T, ingestURL string) *proxy {
	t.Helper()
	testenv.LiteLLM(t)
	data := t.TempDir()
	lport, fport := testenv.FreePort(t), testenv.FreePort(t)
	p := &proxy{t: t, data: data, url: fmt.Sprintf("http://127.0.0.1:%d", lport), fake: fmt.Sprintf("http://127.0.0.1:%d", fport),
		master: "sk-auditline-e2e-master", hc: &http.Client{Timeout: 2 * time.Minute}, runLabel: testenv.Name(t)}
	p.env = append(os.Environ(),
		"AUDITLINE_DATA="+data,
		fmt.Sprintf("LITELLM_PORT=%d", lport), fmt.Sprintf("FAKEUPSTREAM_PORT=%d", fport),
		"AUDITLINE_LITELLM_ENDPOINT="+ingestURL+"/v1/litellm",
		"AUDITLINE_INGEST_TOKEN="+ingestToken,
		"WEBHOOK_URL="+ingestURL+"/v1/litellm/alerts?access_token="+ingestToken,
		"LITELLM_MASTER_KEY="+p.master,
		"DEFAULT_FLUSH_INTERVAL_SECONDS=1",
		"LITELLM_START_TIMEOUT=300",
	)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(data, "log", "litellm.log"))
			t.Logf("litellm log (tail):\n%s", tail(b, 4000))
		}
		for _, n := range []string{"litellm", "fakeupstream"} {
			cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "deploy", "local", "stop.sh"), n)
			cmd.Env = p.env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("stop.sh %s: %v\n%s", n, err, out)
			}
		}
	})
	start := time.Now()
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "deploy", "litellm", "start.sh"), "all")
	cmd.Env = p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		b, _ := os.ReadFile(filepath.Join(data, "log", "litellm.log"))
		t.Fatalf("deploy/litellm/start.sh all: %v\n%s\nlitellm.log:\n%s", err, out, tail(b, 4000))
	}
	t.Logf("LiteLLM %s and fakeupstream started in %s", testenv.LiteLLMVersion(), time.Since(start).Round(time.Second))
	return p
}

// control sets the fake upstream's next failures (POST /control).
func (p *proxy) control(body string) {
	p.t.Helper()
	resp, err := p.hc.Post(p.fake+"/control", "application/json", strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		p.t.Fatalf("fakeupstream /control %s: %d %s", body, resp.StatusCode, b)
	}
}

// reply is what the client saw.
type reply struct {
	status int
	callID string
	cost   string // x-litellm-response-cost
	body   []byte
}

// chat sends one OpenAI-format chat completion through the proxy.
func (p *proxy) chat(req map[string]any) reply {
	p.t.Helper()
	b, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, p.url+"/v1/chat/completions", bytes.NewReader(b))
	hr.Header.Set("Authorization", "Bearer "+p.master)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(hr)
	if err != nil {
		p.t.Fatalf("POST /v1/chat/completions: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // a stream is read to its end
	if err != nil {
		p.t.Fatalf("reading the reply: %v", err)
	}
	return reply{status: resp.StatusCode, callID: resp.Header.Get("x-litellm-call-id"), cost: resp.Header.Get("x-litellm-response-cost"), body: body}
}

// logHas reports whether the proxy's log contains s.
func (p *proxy) logHas(s string) bool {
	b, _ := os.ReadFile(filepath.Join(p.data, "log", "litellm.log"))
	return bytes.Contains(b, []byte(s))
}

func (p *proxy) logCount(s string) int {
	b, _ := os.ReadFile(filepath.Join(p.data, "log", "litellm.log"))
	return bytes.Count(b, []byte(s))
}

// row is the latest version of one decision record in ClickHouse.
type row struct {
	RecordID, CallID, Completeness, Alias, ServedGroup, ServedModel string
	Deployment, Provider, Outcome, BlockedBy, GuardrailStatus       string
	EndUser                                                         string
	Tags                                                            []string
	GuardrailNames, GuardrailStatuses                               []string
	Version                                                         uint32
	Attempts, Retries                                               int32
	Fallback, CacheHit, Stream                                      uint8
	CostUSD, SavedUSD                                               float64
	Rows                                                            uint64
}

// latest reads every record's latest version without FINAL (argMax by
// version, which ClickHouse 18.16 has too).
func (s *stack) latest(ctx context.Context) (map[string]row, error) {
	q := "SELECT record_id, argMax(call_id, version), argMax(completeness, version), argMax(requested_alias, version), " +
		"argMax(served_model_group, version), argMax(served_model, version), argMax(deployment_id, version), argMax(provider, version), " +
		"argMax(outcome, version), argMax(blocked_by, version), argMax(guardrail_status, version), argMax(end_user, version), " +
		"argMax(tags, version), argMax(`guardrails.name`, version), argMax(`guardrails.status`, version), max(version), " +
		"argMax(attempt_count, version), argMax(retry_count, version), argMax(fallback_used, version), argMax(cache_hit, version), " +
		"argMax(stream, version), argMax(cost_usd, version), argMax(saved_cost_usd, version), count() FROM `" + s.db + "`.decision_records GROUP BY record_id"
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.RecordID, &r.CallID, &r.Completeness, &r.Alias, &r.ServedGroup, &r.ServedModel, &r.Deployment, &r.Provider,
			&r.Outcome, &r.BlockedBy, &r.GuardrailStatus, &r.EndUser, &r.Tags, &r.GuardrailNames, &r.GuardrailStatuses, &r.Version,
			&r.Attempts, &r.Retries, &r.Fallback, &r.CacheHit, &r.Stream, &r.CostUSD, &r.SavedUSD, &r.Rows); err != nil {
			return nil, err
		}
		out[r.CallID] = r
	}
	return out, rows.Err()
}

// waitRecords polls ClickHouse until every call id has a record.
func (s *stack) waitRecords(callIDs []string, within time.Duration) map[string]row {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		got, err := s.latest(ctx)
		cancel()
		missing := 0
		if err == nil {
			for _, id := range callIDs {
				if _, ok := got[id]; !ok {
					missing++
				}
			}
			if missing == 0 {
				return got
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s: %d of %d requests have no decision record in ClickHouse (err %v); have %d records", within, missing, len(callIDs), err, len(got))
		}
		time.Sleep(2 * time.Second)
	}
}
