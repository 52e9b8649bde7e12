package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/privacy/pseudonym"
	"github.com/auditline/auditline/privacy/rules"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
)

// TestPseudonymisedIdentity: with enrich.content.pseudonymise on, the clear
// identity values of a LiteLLM payload (e-mail, user id, end user, client IP,
// key alias; each a marker) and of an invalid element beside it (dead-lettered)
// appear in no ClickHouse table (every column of every row, raw_events
// included), in no DLQ value or header, on the decisions topic, in no archive object (manifests,
// checkpoints, rules; every batch's canonical records and identity
// columns) and in no log line; their pseudonyms — what `auditline
// pseudonym` prints — are in ClickHouse and the archive; the sealed rules
// name the fields and key id, never the secret. Both ClickHouse engines.
func TestPseudonymisedIdentity(t *testing.T) { testenv.ForEachClickHouse(t, testPseudonymisedIdentity) }

func testPseudonymisedIdentity(t *testing.T) {
	s := stacktest.New(t, stacktest.Shared(t), "")
	c := &s.Config
	secret := "PSSECRET" + strings.ToUpper(s.Name) + strings.Repeat("x", 32)
	c.Enrich.Content.Pseudonymise = pseudonym.Config{
		Fields: []string{"identity.user_email", "identity.user_id", "identity.end_user", "identity.requester_ip", "identity.key_alias"},
		KeyID:  "t1", Secret: secret,
	}
	if !c.Store.RawEvents {
		t.Fatal("store.raw_events is off by default: the test would not check raw_events")
	}
	c.Enrich.LiteLLMWait = 5 * time.Second
	c.Archive.Batch.MaxAge = time.Second
	c.Archive.Checkpoint.Interval = 2 * time.Second
	c.Log.Level = "debug"
	s.Migrate()
	run := s.RunInProcess("archive", "store", "enrich", "ingest")
	url := s.IngestURL()
	s.WaitReady(url)

	mark := "PSMARK" + strings.ToUpper(s.Name)
	clear := map[string]string{
		"user_email": mark + "mail@acme.example", "user_id": mark + "uid", "end_user": mark + "enduser",
		"requester_ip": mark + "ip", "key_alias": mark + "alias",
	}
	example, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "ingest/testdata/examples/01_success_plain_openai.json"))
	if err != nil {
		t.Fatal(err)
	}
	key := s.Name + "-ps"
	var m map[string]any
	if err := json.Unmarshal(bytes.ReplaceAll(example, []byte("b980db26-9512-45cc-b1da-c511a363b83f"), []byte(key)), &m); err != nil {
		t.Fatal(err)
	}
	m["id"] = "chatcmpl-" + key
	md := m["metadata"].(map[string]any)
	md["user_api_key_user_email"] = clear["user_email"]
	md["user_api_key_user_id"] = clear["user_id"]
	md["user_api_key_alias"] = clear["key_alias"]
	md["requester_ip_address"] = clear["requester_ip"]
	m["requester_ip_address"] = clear["requester_ip"]
	m["end_user"] = clear["end_user"]
	// Beside it, an element that is no LiteLLM payload but names the same
	// people: ingest dead-letters it (the DLQ, and raw_events from it).
	invalid := map[string]any{"status": 7, "end_user": clear["end_user"], "metadata": map[string]any{"user_api_key_user_email": clear["user_email"]}}
	body, _ := json.Marshal([]any{m, invalid})
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/litellm", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+stacktest.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || attempt == 30 {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		time.Sleep(2 * time.Second)
	}

	p := pseudonym.New(c.Enrich.Content.Pseudonymise)
	want := map[string]string{}
	for f, v := range clear {
		want[f] = p.Of(v)
	}
	ctx := context.Background()
	conn := s.ClickHouse()
	db := c.Store.ClickHouse.Database
	stacktest.WaitFor(t, "the raw event and the DLQ copy in raw_events", 3*time.Minute, func() error {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM `"+db+"`.raw_events WHERE topic IN (?, ?)", c.Topics().RawLiteLLM(), c.Topics().DLQ()).Scan(&n); err != nil {
			return err
		}
		if n < 2 {
			return fmt.Errorf("%d rows in raw_events, want the payload and the DLQ copy", n)
		}
		return nil
	})
	stacktest.WaitFor(t, "the record in ClickHouse, pseudonymised", 3*time.Minute, func() error {
		var email, uid, end, ip, alias string
		err := conn.QueryRow(ctx, "SELECT user_email, user_id, end_user, requester_ip, key_alias FROM `"+db+"`.decision_records WHERE request_key = ? LIMIT 1", key).
			Scan(&email, &uid, &end, &ip, &alias)
		if err != nil {
			return err
		}
		got := map[string]string{"user_email": email, "user_id": uid, "end_user": end, "requester_ip": ip, "key_alias": alias}
		for f := range want {
			if got[f] != want[f] {
				return stacktest.StopPolling(fmt.Errorf("ClickHouse %s = %q, want the pseudonym %q", f, got[f], want[f]))
			}
		}
		return nil
	})
	// The archive: every object; batches decoded (zstd Parquet).
	b := s.Bucket()
	var archived bytes.Buffer
	stacktest.WaitFor(t, "the record sealed in the archive", 3*time.Minute, func() error {
		archived.Reset()
		found := false
		err := b.List(ctx, c.Archive.Prefix, "", func(in bucket.Info) error {
			data, _, err := b.Get(ctx, in.Key)
			if err != nil {
				return err
			}
			archived.Write(data)
			if !strings.HasSuffix(in.Key, ".parquet") {
				return nil
			}
			f, err := batch.Open(bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("%s: %w", in.Key, err)
			}
			defer f.Close()
			canon, err := f.Binaries(ctx, "archive_canonical")
			if err != nil {
				return err
			}
			for _, cb := range canon {
				archived.Write(cb)
				if bytes.Contains(cb, []byte(key)) {
					found = true
				}
			}
			for col := range clear {
				vals, err := f.Strings(ctx, col)
				if err != nil {
					return fmt.Errorf("%s column %s: %w", in.Key, col, err)
				}
				archived.WriteString(strings.Join(vals, "\n"))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no batch holds the record of %s yet", key)
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}

	for f, ps := range want {
		if !bytes.Contains(archived.Bytes(), []byte(ps)) {
			t.Errorf("the archive lacks the pseudonym of %s (%s)", f, ps)
		}
	}
	check := func(where string, data []byte) {
		t.Helper()
		if bytes.Contains(data, []byte(mark)) {
			i := bytes.Index(data, []byte(mark))
			t.Errorf("a clear identity is in %s: …%s…", where, data[max(0, i-80):min(len(data), i+80)])
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the pseudonymisation secret is in %s", where)
		}
	}
	check("the archive", archived.Bytes())
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine NOT LIKE '%View'", db)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 5 {
		t.Fatalf("tables %v: want the whole schema", tables)
	}
	var all bytes.Buffer
	for _, table := range tables {
		dump, n := dumpTable(t, ctx, conn, db, table)
		t.Logf("table %s: %d rows, %d bytes", table, n, len(dump))
		check("ClickHouse table "+table, dump)
		all.Write(dump)
	}
	if !bytes.Contains(all.Bytes(), []byte(want["user_email"])) {
		t.Error("ClickHouse lacks the e-mail's pseudonym: the grep proves nothing")
	}
	rawDump, _ := dumpTable(t, ctx, conn, db, "raw_events")
	for f, ps := range want {
		if !bytes.Contains(rawDump, []byte(ps)) {
			t.Errorf("raw_events lacks the pseudonym of %s", f)
		}
	}
	var dlq, rawTopic bytes.Buffer
	dlqN := 0
	err = stacktest.ReadTopics(ctx, c.Kafka, func(r *kgo.Record) error {
		dlqN++
		dlq.Write(r.Value)
		for _, h := range r.Headers {
			dlq.WriteString(h.Key + "=" + string(h.Value) + "\n")
		}
		return nil
	}, c.Topics().DLQ())
	if err != nil {
		t.Fatal(err)
	}
	if dlqN == 0 || !bytes.Contains(dlq.Bytes(), []byte(want["end_user"])) {
		t.Errorf("%d DLQ records, want the invalid element with the end user's pseudonym:\n%s", dlqN, dlq.Bytes())
	}
	check("the DLQ", dlq.Bytes())
	// The evidence keeps the clear bytes: the raw topic is the original.
	err = stacktest.ReadTopics(ctx, c.Kafka, func(r *kgo.Record) error { rawTopic.Write(r.Value); return nil }, c.Topics().RawLiteLLM())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rawTopic.Bytes(), []byte(clear["user_email"])) {
		t.Error("the raw topic lacks the clear e-mail: the test proves nothing")
	}
	ds, _, err := stacktest.Decisions(ctx, c.Kafka, c.Topics().Decisions())
	if err != nil {
		t.Fatal(err)
	}
	dj, _ := json.Marshal(ds)
	check("the decisions topic", dj)
	log, err := os.ReadFile(run.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	check("the stages' log", log)
	// The sealed rules name the fields and the key id, not the secret.
	canonical, hash, err := c.Enrich.Rules().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := rules.Load(ctx, b, c.Archive.Prefix, hash)
	if err != nil {
		t.Fatalf("rules %s not sealed: %v", hash, err)
	}
	if !bytes.Equal(sealed, canonical) || !bytes.Contains(sealed, []byte(`"key_id":"t1"`)) || bytes.Contains(sealed, []byte(secret)) {
		t.Errorf("sealed rules: %s", sealed)
	}
}
