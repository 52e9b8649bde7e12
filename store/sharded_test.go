package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
)

// TestShardedHalfInsert forces a half-landed Distributed INSERT on a real
// two-shard ClickHouse 18.16 and checks that the store's per-shard check
// (sharded.go) makes the retry exactly-once.
//
// Two private ClickHouse 18.16 servers, A and B, form a cluster of two
// shards (one replica each, plain engines: no ZooKeeper, so no replicated
// deduplication to hide a duplicate). The store writes through A's
// Distributed tables with insert_distributed_sync. A first batch lands on
// both shards; then B is made to refuse inserts and a second batch produced: A stores its
// part of each INSERT, B's part fails, and the store retries. While B refuses
// blocks ("Too many parts"), A's rows of the second batch are checked to be
// there (the INSERT half-landed) and B's not. When B accepts again, every record must be on exactly one shard, exactly once
// (counted on each shard's local table, without FINAL, so a duplicate a
// merge would hide later is still seen), the materialized views must have
// fired once per row, and the store must report the rows it did not send
// again.
func TestShardedHalfInsert(t *testing.T) {
	a := testenv.StartPrivate(t, "clickhouse")
	b := testenv.StartPrivate(t, "clickhouse")
	cluster := "auditline_two_shards"
	// No merges (no part is small enough to be merged): ReplacingMergeTree
	// would collapse a duplicate row, and the counts below must see it.
	shards := fmt.Sprintf(`<?xml version="1.0"?>
<yandex><remote_servers><%[1]s>
  <shard><replica><host>127.0.0.1</host><port>%[2]s</port></replica></shard>
  <shard><replica><host>127.0.0.1</host><port>%[3]s</port></replica></shard>
</%[1]s></remote_servers>
<merge_tree><max_bytes_to_merge_at_max_space_in_pool>1</max_bytes_to_merge_at_max_space_in_pool></merge_tree></yandex>
`, cluster, port(a.Addr), port(b.Addr))
	a.ClickHouseConfigD(t, "shards", shards)
	b.ClickHouseConfigD(t, "shards", shards)

	db := testenv.Name(t)
	open := func(addr string) driver.Conn {
		conn, err := Open(ClickHouseConfig{Addr: []string{addr}, Username: "default"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	connA, connB := open(a.Addr), open(b.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := Detect(ctx, connA)
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := ClusterPlan(db, cluster, srv, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range []driver.Conn{connA, connB} {
		for _, q := range stmts {
			if err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%v\n%s", err, q)
			}
		}
	}
	local := func(conn driver.Conn, q string) uint64 {
		t.Helper()
		return count(t, conn, fmt.Sprintf(q, quote(db)+"."+quote(TableDecisions+"_local")))
	}

	kc, topics := setupTopics(t)
	const first, second = 600, 1400
	batch := func(from, n int) []*kgo.Record {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = decisionRecord(t, topics, fullDecision(from+i, "acme"))
		}
		return recs
	}
	cfg := testStoreConfig(a.Addr, db, testenv.Name(t))
	cfg.RetryMax = 500 * time.Millisecond
	st := startStore(t, cfg, kc, topics)

	// 1. Both shards up: the first batch lands on both.
	produce(t, kc, batch(0, first))
	waitCount(t, connA, 2*time.Minute, first, "SELECT count() FROM "+quote(db)+"."+quote(TableDecisions))
	onA := local(connA, "SELECT count() FROM %s")
	if onA == 0 || onA == first {
		t.Fatalf("shard A holds %d of %d records: the sharding key does not spread them", onA, first)
	}

	// 2. Shard B refuses every block ("Too many parts", as when its merges
	// fall behind): the second batch's INSERTs land on A only. The refusal
	// comes when B's part is committed, at the end of the INSERT (18.16
	// squashes each shard's part until then), so A's part is stored while
	// the INSERT fails. (A shard that is down is different: the connection
	// fails before any part is sent, and nothing lands anywhere.)
	b.ClickHouseConfigD(t, "refuse", `<?xml version="1.0"?>
<yandex><merge_tree><parts_to_delay_insert>1</parts_to_delay_insert><parts_to_throw_insert>1</parts_to_throw_insert><max_bytes_to_merge_at_max_space_in_pool>1</max_bytes_to_merge_at_max_space_in_pool></merge_tree></yandex>
`)
	t.Log("shard B refuses inserts")
	produce(t, kc, batch(first, second))
	deadline := time.Now().Add(2 * time.Minute)
	for local(connA, "SELECT count() FROM %s") == onA {
		if time.Now().After(deadline) {
			t.Fatal("shard A got none of the second batch while B refused it")
		}
		time.Sleep(200 * time.Millisecond)
	}
	onB := local(connB, "SELECT count() FROM %s")
	// Let the store retry a few times against the half-landed state.
	deadline = time.Now().Add(2 * time.Minute)
	for st.counter("auditline_store_insert_retries_total", TableDecisions) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the store did not retry while shard B was down")
		}
		time.Sleep(200 * time.Millisecond)
	}
	halfA := local(connA, "SELECT count() FROM %s")
	if n := local(connB, "SELECT count() FROM %s"); n != onB {
		t.Fatalf("shard B took rows while refusing inserts: %d, then %d", onB, n)
	}
	t.Logf("while B refused: shard A holds %d records (%d before), B %d; retries %v", halfA, onA, onB,
		st.counter("auditline_store_insert_retries_total", TableDecisions))

	// 3. B accepts again: the retry sends only what B lacks.
	b.ClickHouseConfigD(t, "refuse", "")
	t.Log("shard B accepts inserts again")
	total := uint64(first + second)
	waitCount(t, connA, 3*time.Minute, total, "SELECT count() FROM "+quote(db)+"."+quote(TableDecisions))
	// Anything extra (a late retry) would show now: wait until the store's
	// lag is zero, i.e. it has committed every message.
	time.Sleep(2 * time.Second)

	var merged uint64
	for _, conn := range []driver.Conn{connA, connB} {
		merged += count(t, conn, "SELECT count() FROM system.parts WHERE database = ? AND level > 0", db)
	}
	if merged > 0 {
		t.Fatalf("%d merged parts: a merge may have hidden a duplicate", merged)
	}
	ids := map[string]int{}
	var rows uint64
	for name, conn := range map[string]driver.Conn{"A": connA, "B": connB} {
		n := local(conn, "SELECT count() FROM %s")
		if u := local(conn, "SELECT uniqExact(record_id) FROM %s"); u != n {
			t.Errorf("shard %s: %d rows for %d record ids: duplicates", name, n, u)
		}
		if o := local(conn, "SELECT uniqExact(kafka_partition, kafka_offset) FROM %s"); o != n {
			t.Errorf("shard %s: %d rows for %d Kafka offsets: duplicates", name, n, o)
		}
		if v := count(t, conn, "SELECT count() FROM "+quote(db)+"."+quote(TableVersions+"_local")); v != n {
			t.Errorf("shard %s: decision_versions has %d rows for %d records", name, v, n)
		}
		rows += n
		r, err := conn.Query(ctx, "SELECT record_id FROM "+quote(db)+"."+quote(TableDecisions+"_local"))
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var id string
			if err := r.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids[id]++
		}
		r.Close()
	}
	if rows != total || len(ids) != int(total) {
		t.Errorf("%d rows, %d distinct records on the two shards, want %d of each", rows, len(ids), total)
	}
	for i := range int(total) {
		if n := ids[string(record.ID(keyOf(i)))]; n != 1 {
			t.Errorf("record %s stored %d times over the shards", keyOf(i), n)
		}
	}
	skipped := st.counter("auditline_store_replayed_skipped_total", TableDecisions)
	if skipped == 0 {
		t.Error("the store sent no row less on retry: the INSERT did not half-land, or the per-shard check did not run")
	}
	t.Logf("exactly once over 2 shards: %d records (shard A %d, B %d); %v rows found on their shard and not sent again (summed over the retries)",
		total, local(connA, "SELECT count() FROM %s"), local(connB, "SELECT count() FROM %s"), skipped)
	if err := st.stop(); err != nil {
		t.Fatal(err)
	}
}

// port is the port of host:port.
func port(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}
