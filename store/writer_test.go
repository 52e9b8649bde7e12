package store

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

func setupTopics(t testing.TB) (topic.Config, raw.Topics) {
	t.Helper()
	kc := kafkaConfig(t)
	topics := raw.Topics{Prefix: testenv.Name(t) + "."}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topic.EnsureTopics(ctx, kc, topics); err != nil {
		t.Fatal(err)
	}
	return kc, topics
}

// TestRoundTrip writes fully populated decisions (every field non-zero, found
// by reflection), a sparse one, two undecodable values and raw events of every
// topic through Kafka and the store, and reads them back field by field.
func TestRoundTrip(t *testing.T) { testenv.ForEachClickHouse(t, testRoundTrip) }

func testRoundTrip(t *testing.T) {
	conn, db, _ := testDB(t)
	kc, topics := setupTopics(t)

	var want []record.Decision
	var recs []*kgo.Record
	for i := range 20 {
		d := fullDecision(i, "acme")
		want = append(want, d)
		recs = append(recs, decisionRecord(t, topics, d))
	}
	sparse := record.Decision{SchemaVersion: 1, RecordID: record.ID("sparse"), Version: 3, Completeness: record.TimedOut}
	sparse.Request.RequestKey = "sparse"
	want = append(want, sparse)
	recs = append(recs, decisionRecord(t, topics, sparse))
	// Values that cannot become rows go to rejected_records, unchanged.
	recs = append(recs,
		&kgo.Record{Topic: topics.Decisions(), Key: []byte("bad"), Value: []byte(`{"record_id": 7`)},
		&kgo.Record{Topic: topics.Decisions(), Key: []byte("noid"), Value: []byte(`{"schema_version":1,"version":1}`)})
	// Raw events: one per raw topic, with the headers ingest sets, after
	// ingest's watermarks (not events: no row).
	now := time.UnixMilli(int64(baseTime)).UTC()
	for _, tn := range []string{topics.RawLiteLLM(), topics.RawGateway()} {
		for p := range int32(4) {
			recs = append(recs, raw.WatermarkRecord(tn, p, raw.Watermark{Instance: "i", At: now}))
		}
	}
	for i, src := range []raw.Source{raw.SourceLiteLLM, raw.SourceGateway, raw.SourceAlert, raw.SourceAdmin, "bogus"} {
		r := topics.Record(raw.Event{Source: src, Format: raw.FormatSingle, Key: fmt.Sprintf("k%d", i),
			EventID: fmt.Sprintf("ev%d", i), Value: []byte(fmt.Sprintf(`{"n":%d,"s":"ü\u0000"}`, i))}, now, "cafe", i)
		recs = append(recs, r)
	}
	produce(t, kc, recs)

	st := startStore(t, testStoreConfig(testenv.ClickHouse(t), db, testenv.Name(t)), kc, topics)
	q := func(s string) string { return strings.ReplaceAll(s, "{db}", quote(db)) }
	waitCount(t, conn, time.Minute, uint64(len(want)), q("SELECT count() FROM {db}."+ViewLatest))
	waitCount(t, conn, time.Minute, 2, q("SELECT count() FROM {db}."+TableRejected))
	waitCount(t, conn, time.Minute, 5, q("SELECT count() FROM {db}."+TableRawEvents))
	if n := count(t, conn, q("SELECT count() FROM {db}."+TableRawEvents+" WHERE source = ?"), string(raw.SourceWatermark)); n != 0 {
		t.Errorf("%d watermark rows in raw_events, want none", n)
	}

	got := readDecisions(t, conn, q("SELECT * FROM {db}."+ViewLatest))
	for _, w := range want {
		g, ok := got[fmt.Sprintf("%s/%d", w.RecordID, w.Version)]
		if !ok {
			t.Errorf("record %s v%d not stored", w.RecordID, w.Version)
			continue
		}
		if w.RecordID == sparse.RecordID {
			// Empty lists come back as [] where the original had null.
			normalizeNil(&w, &g)
		}
		diffDecisions(t, w, g)
	}

	// Kafka positions are kept for the review loop.
	if n := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions+" WHERE kafka_topic = ? AND kafka_offset >= 0"), topics.Decisions()); n != uint64(len(want)) {
		t.Errorf("%d rows carry their Kafka position, want %d", n, len(want))
	}
	// Rejects keep their bytes and a reason.
	var reason, value string
	if err := conn.QueryRow(context.Background(), q("SELECT reason, value FROM {db}."+TableRejected+" WHERE key = 'noid'")).Scan(&reason, &value); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "empty record_id") || value != `{"schema_version":1,"version":1}` {
		t.Errorf("reject = %q %q", reason, value)
	}
	// Raw events keep their original bytes, headers and hash.
	var body, sum, source, eventID string
	var recvMS int64
	var hkeys []string
	if err := conn.QueryRow(context.Background(), q("SELECT body, sha256, source, event_id, received_at_ms, headers.key FROM {db}."+TableRawEvents+" WHERE key = 'k2'")).
		Scan(&body, &sum, &source, &eventID, &recvMS, &hkeys); err != nil {
		t.Fatal(err)
	}
	if body != `{"n":2,"s":"ü\u0000"}` || source != "alert" || eventID != "ev2" || recvMS != int64(baseTime) || len(hkeys) != 5 || len(sum) != 64 {
		t.Errorf("raw event = %q %s %s %d %v %s", body, source, eventID, recvMS, hkeys, sum)
	}
	if err := st.stop(); err != nil {
		t.Fatalf("store run: %v", err)
	}
	if r := st.counter("auditline_store_rejected_total", TableDecisions); r != 2 {
		t.Errorf("rejected counter = %v, want 2", r)
	}
}

// normalizeNil makes nil and empty lists compare equal.
func normalizeNil(a, b *record.Decision) {
	for _, d := range []*record.Decision{a, b} {
		for _, f := range record.Fields() {
			if f.Kind != record.KindStrings && f.Kind != record.KindStructList {
				continue
			}
			v := reflect.ValueOf(d).Elem().FieldByIndex(f.Index)
			if v.Len() == 0 {
				v.SetZero()
			}
		}
	}
}

// amendedSet produces n records, and a second version of the first 2k of
// them: k keep their sorting key (a review outcome arrived), k change tenant
// and start time (a late gateway event), which FINAL alone cannot collapse.
func amendedSet(t testing.TB, topics raw.Topics, n, k int) (recs []*kgo.Record, latest map[string]record.Decision) {
	latest = map[string]record.Decision{}
	for i := range n {
		d := fullDecision(i, fmt.Sprintf("tenant-%d", i%3))
		d.Risk.ReviewStatus = ""
		recs = append(recs, decisionRecord(t, topics, d))
		latest[d.RecordID] = d
	}
	for i := range 2 * k {
		d := latest[record.ID(fmt.Sprintf("req-%d", i))]
		d.Version = 2
		d.Completeness = record.Amended
		d.Risk.ReviewStatus = "approve"
		if i >= k {
			d.Identity.Tenant = "moved"
			d.Request.StartTime += 3_600_000 * 24 * 40 // another month: another partition
		}
		recs = append(recs, decisionRecord(t, topics, d))
		latest[d.RecordID] = d
	}
	return recs, latest
}

// TestReplay replays the same offsets twice more, once with store_progress
// (every message is skipped) and once without it (every row is inserted
// again, as on a server that lost the progress table): both leave exactly one
// visible latest row per record, at its highest version.
func TestReplay(t *testing.T) { testenv.ForEachClickHouse(t, testReplay) }

func testReplay(t *testing.T) {
	conn, db, _ := testDB(t)
	kc, topics := setupTopics(t)
	const n, k = 3000, 100
	recs, latest := amendedSet(t, topics, n, k)
	produce(t, kc, recs)
	q := func(s string) string { return strings.ReplaceAll(s, "{db}", quote(db)) }
	addr := testenv.ClickHouse(t)

	check := func(stage string) {
		t.Helper()
		var rows, ids uint64
		if err := conn.QueryRow(context.Background(), q("SELECT count(), uniqExact(record_id) FROM {db}."+ViewLatest)).Scan(&rows, &ids); err != nil {
			t.Fatal(err)
		}
		if rows != n || ids != n {
			t.Fatalf("%s: latest view has %d rows for %d record ids, want %d and %d", stage, rows, ids, n, n)
		}
		var wrong uint64
		if err := conn.QueryRow(context.Background(), q(`SELECT count() FROM {db}.`+ViewLatest+`
			WHERE (version = 2) != (review_status = 'approve') OR (version = 2 AND record_id IN (SELECT record_id FROM {db}.`+TableDecisions+` WHERE tenant = 'moved') AND tenant != 'moved')`)).Scan(&wrong); err != nil {
			t.Fatal(err)
		}
		if wrong != 0 {
			t.Fatalf("%s: %d latest rows are not the latest version", stage, wrong)
		}
	}

	// First pass.
	st := startStore(t, testStoreConfig(addr, db, testenv.Name(t)), kc, topics)
	waitCount(t, conn, time.Minute, uint64(len(recs)), q("SELECT count() FROM {db}."+TableDecisions))
	if err := st.stop(); err != nil {
		t.Fatal(err)
	}
	check("first pass")

	// Replay from offset 0 with a new group: store_progress skips everything.
	st = startStore(t, testStoreConfig(addr, db, testenv.Name(t)), kc, topics)
	deadline := time.Now().Add(time.Minute)
	for st.counter("auditline_store_replayed_skipped_total", TableDecisions) < float64(len(recs)) {
		if time.Now().After(deadline) {
			t.Fatalf("replay skipped %v messages, want %d", st.counter("auditline_store_replayed_skipped_total", TableDecisions), len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := st.stop(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions)); got != uint64(len(recs)) {
		t.Fatalf("replay with progress inserted rows again: %d rows, want %d", got, len(recs))
	}
	check("replay with progress")

	// Replay once more with the progress table emptied: every row is
	// inserted a second time, and ReplacingMergeTree + the view hide it.
	if err := conn.Exec(context.Background(), q("TRUNCATE TABLE {db}."+TableProgress)); err != nil {
		t.Fatal(err)
	}
	st = startStore(t, testStoreConfig(addr, db, testenv.Name(t)), kc, topics)
	// (count() of the table cannot show the second copies: background
	// merges collapse them as they arrive.)
	deadline = time.Now().Add(time.Minute)
	for st.counter("auditline_store_rows_inserted_total", TableDecisions) < float64(len(recs)) {
		if time.Now().After(deadline) {
			t.Fatalf("replay without progress inserted %v rows, want %d", st.counter("auditline_store_rows_inserted_total", TableDecisions), len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := st.stop(); err != nil {
		t.Fatal(err)
	}
	check("replay without progress")
	testenv.OptimizeFinal(t, conn, db, TableDecisions)
	// After merges, the replayed copies collapse and every version stays
	// (the version is in the sorting key): n first versions, 2k second ones;
	// the view picks v2.
	if got := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions)); got != n+2*k {
		t.Errorf("after OPTIMIZE FINAL: %d rows, want %d", got, n+2*k)
	}
	check("after merge")

	// The latest versions read back intact.
	got := readDecisions(t, conn, q("SELECT * FROM {db}."+ViewLatest+" WHERE version = 2"))
	if len(got) != 2*k {
		t.Fatalf("%d latest rows at version 2, want %d", len(got), 2*k)
	}
	for key, g := range got {
		w := latest[strings.Split(key, "/")[0]]
		diffDecisions(t, w, g)
	}
}
