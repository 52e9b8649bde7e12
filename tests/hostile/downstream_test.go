package hostile

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/tests/internal/pipeline"
)

// TestHostileDownstream sends every case of the corpus that ingest accepts
// through the whole pipeline — `auditline ingest`, `enrich`, `store` and
// `archive` processes on the real Kafka, ClickHouse and MinIO — and checks
// that no accepted event is lost after ingest: every request key on the raw
// topics has exactly one latest decision record in ClickHouse and one leaf
// at that version in the archive, no stage panicked, and `auditline verify`
// passes. (The replayed case is delivered twice; enrich drops the copy, so
// it still yields one record.)
func TestHostileDownstream(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the whole pipeline")
	}
	kafka := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	s3 := testenv.S3(t)
	name := testenv.Name(t)
	dir := t.TempDir()
	bin := pipeline.Build(t, dir)
	port := testenv.FreePort(t)
	keyFile := filepath.Join(dir, "archive-key.pem")
	prefix := "hostile/" + name + "/"
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
topic_prefix: %s.
log:
  level: info
ops:
  listen: ""
ingest:
  listen: 127.0.0.1:%d
  read_timeout: 3s
  produce_timeout: 30s
  auth:
    tokens:
      - {name: all, sha256: %s, scopes: [litellm, alerts, audit, gateway, oversight]}
      - {name: oversight, sha256: %s, scopes: [oversight]}
enrich:
  group: %s-enrich
  litellm_wait: 10s
store:
  clickhouse:
    addr: [%s]
    database: %s
  group: %s-store
archive:
  s3: {endpoint: %q, secure: %v, access_key: %q, secret_key: %q, bucket: %q}
  group: %s-archive
  prefix: %s
  signing_key_file: %s
  retention: {mode: GOVERNANCE, period: 1m}
  batch: {max_age: 2s}
  checkpoint: {interval: 5s}
`, strings.Join(kafka, ", "), name, port, auth.Hash(tokAll), auth.Hash(tokDash), name, chAddr, name, name,
		s3.Endpoint, s3.Secure, s3.AccessKey, s3.SecretKey, s3.Bucket, name, prefix, keyFile)
	cfgPath := filepath.Join(dir, "auditline.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "AUDITLINE_KAFKA=", "AUDITLINE_CLICKHOUSE=", "AUDITLINE_S3=", "AUDITLINE_S3_BUCKET=", "AUDITLINE_CONFIG=")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("keys", "generate", "--out", keyFile); err != nil {
		t.Fatalf("keys generate: %v\n%s", err, out)
	}
	if out, err := run("migrate", "--config", cfgPath); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, Auth: clickhouse.Auth{Database: name, Username: "default"},
		DialTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`")
		conn.Close()
	})
	order := []string{"ingest", "enrich", "store", "archive"}
	stages := map[string]*pipeline.Proc{}
	for _, st := range order {
		f, err := os.Create(filepath.Join(dir, st+".log"))
		if err != nil {
			t.Fatal(err)
		}
		stages[st] = &pipeline.Proc{T: t, Name: st, Args: []string{bin, st, "--config", cfgPath}, Env: env, Log: f}
		stages[st].Start()
	}
	stopAll := func() {
		for _, st := range order {
			stages[st].Stop()
		}
	}
	t.Cleanup(func() {
		stopAll()
		for _, st := range order {
			stages[st].Log.Close()
			if t.Failed() {
				b, _ := os.ReadFile(stages[st].Log.Name())
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("auditline %s log (tail):\n%s", st, b)
			}
		}
	})
	s := &server{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := client.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest not ready: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Every case ingest accepts (2xx), as the corpus states.
	sent := 0
	for _, c := range loadCorpus(t) {
		if c.Status/100 != 2 || strings.HasPrefix(c.Client, "slow") {
			continue
		}
		body := buildBody(t, c.Body)
		n := 1
		if c.Client == "replay" {
			n = 2
		}
		for range n {
			if a := s.do(t, c, body); a.status != c.Status {
				t.Fatalf("%s: %d %s, the corpus says %d", c.Name, a.status, a.body, c.Status)
			}
			sent++
		}
	}

	// The request keys ingest put on the raw topics are the records owed.
	topics := raw.Topics{Prefix: name + "."}
	rkeys := topicKeys(t, kafka, topics.RawLiteLLM(), topics.RawGateway())
	want := map[string]string{} // record id → request key
	for k := range rkeys {
		want[record.ID(k)] = k
	}
	pipeline.Say("hostile downstream: %d accepted bodies, %d request keys on the raw topics", sent, len(want))
	if len(want) == 0 {
		t.Fatal("nothing reached the raw topics")
	}

	b, err := bucket.New(bucket.Config{Endpoint: s3.Endpoint, Secure: s3.Secure, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Bucket: s3.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.Load(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	arch := pipeline.NewArchive(b, prefix, keys.NewRing(priv.Public().(ed25519.PublicKey)))
	ctx := context.Background()
	var ch map[string]pipeline.CHRecord
	var pending []string
	deadline = time.Now().Add(5 * time.Minute)
	for {
		ch, err = pipeline.ReadClickHouse(ctx, conn, name)
		if err == nil {
			err = arch.Update(ctx)
		}
		pending = pending[:0]
		if err == nil {
			latest := arch.Latest()
			for id, k := range want {
				if c, ok := ch[id]; !ok || latest[id] != c.Latest {
					pending = append(pending, k)
				}
			}
			if len(pending) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 min, %d request keys have no record in both ClickHouse and the archive (err %v): %q", len(pending), err, pending)
		}
		time.Sleep(2 * time.Second)
	}
	stopAll()
	latest := arch.Latest()
	for id, k := range want {
		if n := ch[id].RowsAtLatest; n != 1 {
			t.Errorf("request %q: %d rows at its latest version in ClickHouse", k, n)
		}
		if n := arch.Leaves[pipeline.IDVersion{ID: id, V: latest[id]}]; n != 1 {
			t.Errorf("request %q: %d archived leaves at its latest version", k, n)
		}
	}
	for id := range ch {
		if _, ok := want[id]; !ok {
			t.Errorf("record %s in ClickHouse for no request key on the raw topics", id)
		}
	}
	for _, st := range order {
		if data, _ := os.ReadFile(stages[st].Log.Name()); bytes.Contains(data, []byte("panic:")) {
			t.Errorf("auditline %s logged a panic", st)
		}
		if k, e := stages[st].Counts(); e > 0 {
			t.Errorf("auditline %s exited on its own %d times (killed %d)", st, e, k)
		}
	}
	if out, err := run("verify", "--config", cfgPath, "--key", keyFile+".pub", "--retention-mode", "GOVERNANCE"); err != nil {
		t.Errorf("auditline verify: %v\n%s", err, out)
	}
	t.Logf("%d accepted bodies → %d request keys → %d records in ClickHouse, %d leaves in the archive", sent, len(want), len(ch), len(arch.Leaves))
}

// topicKeys returns the distinct record keys of the topics, read to their
// current end.
func topicKeys(t *testing.T, brokers []string, topicNames ...string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topicNames...)
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if left[o.Topic] == nil {
				left[o.Topic] = map[int32]int64{}
			}
			left[o.Topic][o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topicNames...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]bool{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %v: %v (left %v)", topicNames, err, left)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out[string(r.Key)] = true
			if end, ok := left[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(left[r.Topic], r.Partition)
				if len(left[r.Topic]) == 0 {
					delete(left, r.Topic)
				}
			}
		})
	}
	return out
}
