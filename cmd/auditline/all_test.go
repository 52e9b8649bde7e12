package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
)

// TestAllVerticalSlice is the foundation's end-to-end proof, on the real
// Kafka, ClickHouse and MinIO, through the binary as a user runs it:
// `auditline migrate`, then `auditline all`; one LiteLLM generic_api body in
// its default array form (a fallback request: azure 429 then anthropic, and a
// plain OpenAI request) posted to ingest becomes one decision record per
// request in ClickHouse and one leaf each in a sealed Parquet batch on the
// Object Lock bucket, in COMPLIANCE mode, which `auditline verify` and an
// offline inclusion proof accept.
func TestAllVerticalSlice(t *testing.T) {
	kafka := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	s3 := testenv.S3(t)
	name := testenv.Name(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = sliceEnv()
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("auditline %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	key := filepath.Join(dir, "archive.pem")
	run("", "keys", "generate", "--out", key)
	hash := strings.TrimSpace(run("admin-pw\n", "passwd"))
	ingestPort, dashPort := testenv.FreePort(t), testenv.FreePort(t)
	const token = "slice-ingest-token"
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"$KAFKA", strings.Join(kafka, ", "), "$NAME", name, "$DIR", dir, "$CH", chAddr, "$KEY", key, "$HASH", hash,
		"$INGEST_PORT", fmt.Sprint(ingestPort), "$DASH_PORT", fmt.Sprint(dashPort),
		"$S3", fmt.Sprintf("{endpoint: %q, secure: %v, access_key: %q, secret_key: %q, bucket: %q}", s3.Endpoint, s3.Secure, s3.AccessKey, s3.SecretKey, s3.Bucket),
	).Replace(`kafka:
  brokers: [$KAFKA]
  partitions: 2
topic_prefix: $NAME.
ops:
  listen: ""
ingest:
  listen: 127.0.0.1:$INGEST_PORT
  auth:
    tokens:
      - {name: litellm, file: $DIR/token, scopes: [litellm, oversight]}
store:
  clickhouse: {addr: ["$CH"], database: $NAME}
  group: $NAME-store
  linger: 200ms
archive:
  s3: $S3
  group: $NAME-archive
  prefix: slice/$NAME/
  signing_key_file: $KEY
  retention: {mode: COMPLIANCE, period: 2m}
  batch: {max_age: 2s}
  checkpoint: {interval: 5s}
enrich:
  group: $NAME-enrich
dashboard:
  listen: 127.0.0.1:$DASH_PORT
  ingest: {url: "http://127.0.0.1:$INGEST_PORT/v1/oversight", token_file: $DIR/token}
  auth:
    users:
      - {name: admin, password_hash: "$HASH", role: admin, tenants: ["*"]}
`)
	config := filepath.Join(dir, "auditline.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	run("", "migrate", "--config", config)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, Auth: clickhouse.Auth{Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`")
		conn.Close()
	})
	logf := startProc(t, bin, dir, "all", config).logf
	ingest := fmt.Sprintf("http://127.0.0.1:%d", ingestPort)
	waitFor(t, logf, "ingest and dashboard ready", time.Minute, func() error {
		for _, u := range []string{ingest + "/readyz", fmt.Sprintf("http://127.0.0.1:%d/readyz", dashPort)} {
			resp, err := http.Get(u)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s: %s", u, resp.Status)
			}
		}
		return nil
	})

	// One LiteLLM callback body, array form, as the proxy posts it.
	body, err := os.ReadFile("../../ingest/testdata/examples/09_generic_api_batch_post_body_json_array.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, ingest+"/v1/litellm", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(reply), `"accepted":3`) {
		t.Fatalf("POST /v1/litellm: %s %s", resp.Status, reply)
	}

	// ClickHouse: one record per request, joined across its two payloads.
	type row struct {
		requested, served, provider, outcome, team string
		fallback                                   uint8
		attempts                                   int32
		cost                                       float64
	}
	want := map[string]row{
		"7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47": {requested: "gpt-4o", served: "claude-sonnet-4-5-20250929", provider: "anthropic", outcome: "success", fallback: 1, attempts: 2},
		"b980db26-9512-45cc-b1da-c511a363b83f": {requested: "gpt-4o", served: "gpt-4o", provider: "openai", outcome: "success", attempts: 1},
	}
	got := map[string]row{}
	waitFor(t, logf, "both decision records in ClickHouse", 2*time.Minute, func() error {
		rows, err := conn.Query(context.Background(), fmt.Sprintf(
			"SELECT request_key, requested_alias, served_model, provider, outcome, team_id, fallback_used, attempt_count, cost_usd FROM `%s`.decision_records_latest", name))
		if err != nil {
			return err
		}
		defer rows.Close()
		clear(got)
		for rows.Next() {
			var k string
			var r row
			if err := rows.Scan(&k, &r.requested, &r.served, &r.provider, &r.outcome, &r.team, &r.fallback, &r.attempts, &r.cost); err != nil {
				return err
			}
			got[k] = r
		}
		if len(got) < len(want) {
			return fmt.Errorf("%d of %d records", len(got), len(want))
		}
		return rows.Err()
	})
	if len(got) != len(want) {
		t.Fatalf("records %v, want exactly the keys of %v", got, want)
	}
	for k, w := range want {
		g := got[k]
		if g.requested != w.requested || g.served != w.served || g.provider != w.provider || g.outcome != w.outcome ||
			g.fallback != w.fallback || g.attempts != w.attempts || g.team != "0b9f6c3e-5d8a-4f8e-9c61-2a7e4d1b3f90" || g.cost <= 0 {
			t.Errorf("record %s: got %+v, want %+v with the team and a cost", k, g, w)
		}
	}

	// The archive: each record is a leaf of a sealed batch, provable offline.
	var batch string
	for k := range want {
		id := record.ID(k)
		proof := filepath.Join(dir, id+".json")
		waitFor(t, logf, "record "+id+" sealed", 2*time.Minute, func() error {
			cmd := exec.Command(bin, "prove", "--config", config, "--out", proof, id)
			cmd.Env = sliceEnv()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		out := run("", "verify-proof", "--key", key+".pub", proof)
		m := regexp.MustCompile(`is leaf \d+ of \d+ in (\S+\.parquet)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("verify-proof: %s", out)
		}
		batch = m[1]
	}
	out := run("", "verify", "--config", config, "--min-retention", "1m")
	if !strings.Contains(out, "OK") || !strings.Contains(out, "2 leaves") {
		t.Errorf("verify:\n%s", out)
	}
	t.Logf("verify:\n%s", out)

	// The batch object is under Object Lock, COMPLIANCE: no one can delete it.
	mc, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Secure: s3.Secure})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := mc.StatObject(ctx, s3.Bucket, batch, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mode, until, err := mc.GetObjectRetention(ctx, s3.Bucket, batch, st.VersionID)
	if err != nil || mode == nil || *mode != minio.Compliance || until == nil || until.Before(time.Now()) {
		t.Fatalf("batch %s retention: %v %v %v", batch, mode, until, err)
	}
	if err := mc.RemoveObject(ctx, s3.Bucket, batch, minio.RemoveObjectOptions{VersionID: st.VersionID, GovernanceBypass: true}); err == nil {
		t.Fatalf("deleting the sealed batch %s version %s succeeded", batch, st.VersionID)
	}
	t.Logf("sealed batch s3://%s/%s: COMPLIANCE until %s; delete refused", s3.Bucket, batch, until.Format(time.RFC3339))
}

// sliceEnv is the environment of the binary: the config file alone says where
// the servers are (the shared stack's short forms would override it).
func sliceEnv() []string {
	return append(os.Environ(), "AUDITLINE_KAFKA=", "AUDITLINE_CLICKHOUSE=", "AUDITLINE_S3=", "AUDITLINE_S3_BUCKET=", "AUDITLINE_CONFIG=")
}

// buildBinary compiles this command into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "auditline")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is an auditline subcommand running for one test.
type proc struct {
	cmd    *exec.Cmd
	logf   string
	exited chan struct{} // closed once it has exited; err is then set
	err    error
}

// startProc starts `auditline <subcommand> --config config` with its output
// in dir/<subcommand>.log, and when the test ends stops it with SIGTERM,
// requiring a clean exit within 45 s, and logs the tail of its output if
// the test failed.
func startProc(t *testing.T, bin, dir, subcommand, config string) *proc {
	t.Helper()
	p := &proc{logf: filepath.Join(dir, subcommand+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.logf)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, subcommand, "--config", config)
	p.cmd.Env = sliceEnv()
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); f.Close(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.err != nil {
				t.Errorf("auditline %s did not stop cleanly: %v", subcommand, p.err)
			}
		case <-time.After(45 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("auditline %s did not stop within 45 s of SIGTERM", subcommand)
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.logf)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("auditline %s log:\n%s", subcommand, b)
		}
	})
	return p
}

// waitFor polls check until it returns nil, failing after timeout with the
// last error.
func waitFor(t *testing.T, logf, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v (log %s)", what, timeout, err, logf)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
