// Package privacy proves issue 19's privacy guarantees on the real servers:
// the capture policy holds in every copy auditline keeps (every ClickHouse
// table, the DLQ, the logs).
package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/internal/stacktest"
)

// TestCapturePolicy: under the default policy (hash), a marker string placed
// in a prompt, a response, a client header, a guardrail verdict, an
// undecodable body, an invalid event and a conflicting copy of an event
// appears nowhere in ClickHouse (every table, every column), in the DLQ
// (values and headers) or in the stages' log, while the raw topic still
// holds it (the evidence) — on both ClickHouse engines.
func TestCapturePolicy(t *testing.T) { testenv.ForEachClickHouse(t, testCapturePolicy) }

func testCapturePolicy(t *testing.T) {
	s := stacktest.New(t, stacktest.Shared(t), "")
	c := &s.Config
	if c.Capture() != "hash" || !c.Store.RawEvents || c.Store.RawEventsFull {
		t.Fatalf("defaults changed: capture %q, raw_events %v, raw_events_full %v", c.Capture(), c.Store.RawEvents, c.Store.RawEventsFull)
	}
	c.Enrich.LiteLLMWait = 5 * time.Second
	c.Log.Level = "debug" // the most a log line could say
	s.Migrate()
	run := s.RunInProcess("store", "enrich", "ingest")
	url := s.IngestURL()
	s.WaitReady(url)

	marks := map[string]string{}
	mark := func(where string) string {
		m := "PRIVMARK" + strings.ToUpper(s.Name) + "X" + where
		marks[where] = m
		return m
	}
	example, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "ingest/testdata/examples/01_success_plain_openai.json"))
	if err != nil {
		t.Fatal(err)
	}
	payload := func(key, prompt string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(bytes.ReplaceAll(example, []byte("b980db26-9512-45cc-b1da-c511a363b83f"), []byte(key)), &m); err != nil {
			t.Fatal(err)
		}
		m["messages"] = []any{map[string]any{"role": "user", "content": prompt}}
		m["id"] = "chatcmpl-" + key
		return m
	}
	// post sends a body, again while ingest answers 503 (Kafka slow to
	// acknowledge on a loaded machine), as a sender would.
	post := func(body []byte, header string) int {
		t.Helper()
		for attempt := 0; ; attempt++ {
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/litellm", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+stacktest.Token)
			req.Header.Set("X-Client-Note", header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || attempt == 30 {
				return resp.StatusCode
			}
			time.Sleep(2 * time.Second)
		}
	}
	jsonOf := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// 1. A success with content everywhere LiteLLM puts it.
	key := s.Name + "-one"
	one := payload(key, "prompt "+mark("prompt"))
	one["response"] = map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": "answer " + mark("response")}}}}
	one["metadata"].(map[string]any)["requester_custom_headers"] = map[string]any{"x-tenant-secret": mark("custom_header")}
	one["guardrail_information"] = map[string]any{"guardrail_name": "g", "guardrail_status": "success", "guardrail_response": "saw " + mark("guardrail")}
	if code := post(jsonOf([]any{one}), mark("http_header")); code != 200 {
		t.Fatalf("success payload: %d", code)
	}
	// 2. The same event (same id and status) with other bytes: enrich
	// dead-letters it (event_id_conflict).
	conflict := payload(key, "changed "+mark("conflict"))
	for k, v := range one {
		if k != "messages" {
			conflict[k] = v
		}
	}
	time.Sleep(200 * time.Millisecond)
	if code := post(jsonOf([]any{conflict}), "-"); code != 200 {
		t.Fatalf("conflicting copy: %d", code)
	}
	// 3. A body that is not JSON, and 4. an element that is no LiteLLM
	// payload: ingest dead-letters both.
	if code := post([]byte(`[{"messages": "`+mark("not_json")+`"`), "-"); code != 400 {
		t.Fatalf("invalid JSON: %d, want 400", code)
	}
	if code := post(jsonOf([]any{payload(s.Name+"-two", "fine"), map[string]any{"messages": mark("invalid_event"), "status": 7}}), "-"); code != 200 {
		t.Fatalf("invalid element: %d, want 200 (the valid one accepted)", code)
	}

	ctx := context.Background()
	conn := s.ClickHouse()
	db := c.Store.ClickHouse.Database
	count := func(q string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			return 0
		}
		return n
	}
	stacktest.WaitFor(t, "records and raw events in ClickHouse", 3*time.Minute, func() error {
		recs := count("SELECT count() FROM `" + db + "`.decision_records")
		dlqRows := count("SELECT count() FROM `" + db + "`.raw_events WHERE topic = '" + c.Topics().DLQ() + "'")
		if recs < 2 || dlqRows < 3 {
			return fmt.Errorf("%d records (want 2), %d DLQ rows in raw_events (want 3: not JSON, invalid element, conflict)", recs, dlqRows)
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}

	found := func(where string, b []byte) {
		t.Helper()
		for what, m := range marks {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("the %s marker is in %s", what, where)
			}
		}
	}
	// Every table, every column.
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
	for _, table := range tables {
		dump, n := dumpTable(t, ctx, conn, db, table)
		t.Logf("table %s: %d rows, %d bytes", table, n, len(dump))
		found("ClickHouse table "+table, dump)
	}
	// The DLQ: values and headers.
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
	if dlqN < 3 {
		t.Errorf("%d DLQ records, want 3", dlqN)
	}
	found("the DLQ", dlq.Bytes())
	log, err := os.ReadFile(run.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	found("the stages' log", log)

	// The evidence is still whole on the raw topic.
	err = stacktest.ReadTopics(ctx, c.Kafka, func(r *kgo.Record) error { rawTopic.Write(r.Value); return nil }, c.Topics().RawLiteLLM())
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"prompt", "response", "custom_header", "guardrail", "conflict"} {
		if !bytes.Contains(rawTopic.Bytes(), []byte(marks[what])) {
			t.Errorf("the %s marker is not on the raw topic: the test proves nothing", what)
		}
	}
}

// dumpTable returns every value of every row of db.table as text, and the
// row count.
func dumpTable(t *testing.T, ctx context.Context, conn driver.Conn, db, table string) ([]byte, int) {
	t.Helper()
	rows, err := conn.Query(ctx, "SELECT * FROM `"+db+"`.`"+table+"`")
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out bytes.Buffer
	n := 0
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		for _, v := range vals {
			fmt.Fprintf(&out, "%v\t", reflect.ValueOf(v).Elem().Interface())
		}
		out.WriteByte('\n')
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out.Bytes(), n
}
