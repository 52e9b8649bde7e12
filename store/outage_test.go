package store

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/topic"
)

// TestClickHouseOutage stops a private ClickHouse for 30 s while decisions
// keep arriving, starts it again, and checks that every record is stored
// exactly once: nothing lost, no duplicate row (not even one that a merge
// would hide later).
func TestClickHouseOutage(t *testing.T) { testenv.ForEachClickHouse(t, testClickHouseOutage) }

func testClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a server for 30 s")
	}
	ch := testenv.StartPrivateClickHouse(t)
	conn, db, _ := testDBAt(t, ch.Addr)
	kc, topics := setupTopics(t)
	q := func(s string) string { return strings.ReplaceAll(s, "{db}", quote(db)) }

	// A producer writing ~1,000 decisions/s until told to stop.
	var produced int
	stopProducing := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		w, err := topic.NewWriter(kc)
		if err != nil {
			t.Error(err)
			return
		}
		defer w.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopProducing:
				return
			case <-tick.C:
			}
			recs := make([]*kgo.Record, 100)
			for i := range recs {
				recs[i] = decisionRecord(t, topics, fullDecision(produced+i, "acme"))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := w.Produce(ctx, recs...)
			cancel()
			if err != nil {
				t.Error(err)
				return
			}
			produced += len(recs)
		}
	})

	cfg := testStoreConfig(ch.Addr, db, testenv.Name(t))
	cfg.RetryMax = 2 * time.Second
	st := startStore(t, cfg, kc, topics)
	deadline := time.Now().Add(time.Minute)
	for count(t, conn, q("SELECT count() FROM {db}."+TableDecisions)) < 2000 {
		if time.Now().After(deadline) {
			t.Fatal("no rows before the outage")
		}
		time.Sleep(100 * time.Millisecond)
	}

	ch.Stop(t)
	t.Log("clickhouse stopped")
	time.Sleep(30 * time.Second)
	ch.Start(t)
	t.Log("clickhouse started")
	time.Sleep(3 * time.Second)
	close(stopProducing)
	wg.Wait()
	t.Logf("produced %d decisions", produced)

	waitCount(t, conn, 2*time.Minute, uint64(produced), q("SELECT count() FROM {db}."+TableDecisions))
	time.Sleep(time.Second) // anything extra would show now
	var rows, ids uint64
	var minKey, maxKey string
	if err := conn.QueryRow(context.Background(), q("SELECT count(), uniqExact(record_id), min(request_key), max(request_key) FROM {db}."+TableDecisions)).
		Scan(&rows, &ids, &minKey, &maxKey); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(produced) || ids != uint64(produced) {
		t.Fatalf("%d rows for %d record ids, want %d of each", rows, ids, produced)
	}
	if n := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions+" WHERE record_id IN (SELECT record_id FROM {db}."+ViewLatest+")")); n != uint64(produced) {
		t.Fatalf("latest view misses records: %d", n)
	}
	// Every request key 0 … produced-1 is there.
	if n := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions+" WHERE record_id IN (SELECT record_id FROM {db}."+TableVersions+")")); n != uint64(produced) {
		t.Fatalf("decision_versions misses records: %d", n)
	}
	for _, i := range []int{0, produced / 2, produced - 1} {
		if n := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions+" WHERE record_id = ?"), record.ID(keyOf(i))); n != 1 {
			t.Errorf("record %d stored %d times", i, n)
		}
	}
	retries := st.counter("auditline_store_insert_retries_total", TableDecisions)
	if err := st.stop(); err != nil {
		t.Fatal(err)
	}
	if retries == 0 {
		t.Error("no insert was retried: the outage did not hit the writer")
	}
	t.Logf("insert retries during the outage: %v", retries)
}

func keyOf(i int) string { return "req-" + itoa(i) }
