package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkStoreVsKafkaEngine consumes the same decisions topic three ways,
// side by side on one private ClickHouse 18.16, and reports rows/s of each:
//
//   - store: our writer (topic.Reader → decode → columnar INSERT per offset
//     window, progress and versions materialized views), from offset 0 with a
//     new group, until every row is in decision_records;
//   - kafka_engine: ClickHouse's own Kafka table engine + a materialized view
//     into a ReplacingMergeTree of the same shape, the peer a user would
//     otherwise pick (kafka_format = 'JSONEachRow');
//   - ceiling: clickhouse-go batch INSERTs of the same rows, already decoded
//     into columns, into decision_records (no Kafka, no JSON).
//
// The Kafka engine's JSONEachRow on 18.16 reads neither arrays of objects nor
// a null where an array is declared (a record's empty lists are null), so the
// peer stores every scalar field but no list (attempts, guardrails, near-miss
// reasons, …): it does less work per row than the store. It needs
// input_format_import_nested_json and input_format_skip_unknown_fields (for
// the lists it leaves out) in the server's default profile: the Kafka engine
// reads with the global settings, which is why the benchmark starts a private
// server.
//
//	go test ./store -run '^$' -bench StoreVsKafkaEngine -benchtime 1x
//
// AUDITLINE_BENCH_DECISIONS sets the number of decisions (default 100,000).
func BenchmarkStoreVsKafkaEngine(b *testing.B) {
	n := envInt("AUDITLINE_BENCH_DECISIONS", 100_000)
	ch := testenv.StartPrivate(b, "clickhouse")
	// The Kafka engine parses with the default profile's settings.
	usersD := filepath.Join(ch.Data, "clickhouse", "users.d")
	if err := os.MkdirAll(usersD, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(usersD, "nested-json.xml"), []byte(
		`<?xml version="1.0"?><yandex><profiles><default><input_format_import_nested_json>1</input_format_import_nested_json><input_format_skip_unknown_fields>1</input_format_skip_unknown_fields></default></profiles></yandex>`), 0o644); err != nil {
		b.Fatal(err)
	}
	ch.Stop(b)
	ch.Start(b)

	kc, topics := setupTopics(b)
	kc.Partitions = 2
	values := make([][]byte, n)
	recs := make([]*kgo.Record, n)
	var bytes int
	for i := range n {
		d := genDecision(i)
		values[i] = mustJSON(b, d)
		bytes += len(values[i])
		recs[i] = &kgo.Record{Topic: topics.Decisions(), Key: []byte(d.Request.RequestKey), Value: values[i]}
	}
	produce(b, kc, recs)
	b.Logf("%d decisions (%.1f KiB average) on %s", n, float64(bytes)/float64(n)/1024, topics.Decisions())

	var ours, peer, ceiling float64
	var cpu [3]cpuUse
	var inserts float64
	for b.Loop() {
		cpu[0] = measureCPU(ch, func() { ceiling = benchCeiling(b, ch.Addr, values) })
		cpu[1] = measureCPU(ch, func() { ours, inserts = benchStore(b, ch, kc, topics, n) })
		cpu[2] = measureCPU(ch, func() { peer = benchKafkaEngine(b, ch, kc, topics, n) })
	}
	b.ReportMetric(ours, "store_rows/s")
	b.ReportMetric(peer, "kafka_engine_rows/s")
	b.ReportMetric(ceiling, "ceiling_rows/s")
	// CPU per row barely moves with the shared box's load; rows/s does.
	for i, name := range []string{"ceiling", "store", "kafka_engine"} {
		b.ReportMetric(cpu[i].server/float64(n)*1e6, name+"_server_cpu_us/row")
		if i < 2 {
			b.ReportMetric(cpu[i].client/float64(n)*1e6, name+"_client_cpu_us/row")
		}
	}
	b.ReportMetric(inserts, "store_inserts")
	b.ReportMetric(ours/peer, "store/kafka_engine")
	b.ReportMetric(ours/ceiling, "store/ceiling")
	b.Logf("store %.0f rows/s, kafka engine %.0f rows/s (ratio %.2f), clickhouse-go insert ceiling %.0f rows/s (store at %.0f%%)",
		ours, peer, ours/peer, ceiling, 100*ours/ceiling)
}

// benchDB migrates a fresh database on addr, dropped when the benchmark ends.
func benchDB(b *testing.B, addr string) (driver.Conn, string) {
	conn, db, _ := testDBAt(b, addr)
	return conn, db
}

func benchCeiling(b *testing.B, addr string, values [][]byte) float64 {
	conn, db := benchDB(b, addr)
	defer dropDB(conn, db)
	var batches []*decisionRows
	for lo := 0; lo < len(values); lo += DefaultBatchRows {
		r := newDecisionRows()
		for i := lo; i < min(lo+DefaultBatchRows, len(values)); i++ {
			if err := r.add(&kgo.Record{Topic: "t", Partition: int32(i % 2), Offset: int64(i), Value: values[i]}); err != nil {
				b.Fatal(err)
			}
		}
		batches = append(batches, r)
	}
	ctx := context.Background()
	start := time.Now()
	for _, r := range batches {
		if err := insert(ctx, conn, db, TableDecisions, r.columns(), r.values(), ""); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(values)) / time.Since(start).Seconds()
}

// cpuUse is the CPU seconds one phase of the benchmark used: the private
// ClickHouse server's (background merges of the phase included, as far as
// they ran during it), and this process's (the client: the store's reader,
// decode and INSERTs, or the ceiling's INSERTs).
type cpuUse struct{ server, client float64 }

func measureCPU(ch *testenv.Private, phase func()) cpuUse {
	s0, c0 := serverCPU(ch), selfCPU()
	phase()
	return cpuUse{server: serverCPU(ch) - s0, client: selfCPU() - c0}
}

// serverCPU is the private server's user+system CPU seconds, from
// /proc/<pid>/stat (0 when it cannot be read).
func serverCPU(ch *testenv.Private) float64 {
	pid, err := os.ReadFile(filepath.Join(ch.Data, "run", "clickhouse.pid"))
	if err != nil {
		return 0
	}
	st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(st), ')')
	f := strings.Fields(string(st[i+1:]))
	if i < 0 || len(f) <= 12 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	sy, _ := strconv.ParseFloat(f[12], 64)
	return (ut + sy) / 100 // USER_HZ
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// benchStore returns rows/s and the number of INSERTs into decision_records.
func benchStore(b *testing.B, ch *testenv.Private, kc topic.Config, topics raw.Topics, n int) (float64, float64) {
	conn, db := benchDB(b, ch.Addr)
	defer dropDB(conn, db)
	cfg := NewDefaultConfig()
	cfg.ClickHouse.Addr = []string{ch.Addr}
	cfg.ClickHouse.Database = db
	cfg.Group = testenv.Name(b)
	cfg.RawEvents = false
	start := time.Now()
	st := startStore(b, cfg, kc, topics)
	waitRows(b, conn, db+"."+TableDecisions, n, start, ch)
	elapsed := time.Since(start)
	if err := st.stop(); err != nil {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds(), st.counter("auditline_store_batches_total", TableDecisions)
}

// benchKafkaEngine builds the peer: Kafka table → materialized view →
// ReplacingMergeTree with the store's scalar columns.
func benchKafkaEngine(b *testing.B, ch *testenv.Private, kc topic.Config, topics raw.Topics, n int) float64 {
	conn, db := benchDB(b, ch.Addr)
	defer dropDB(conn, db)
	var queue, target, sel []string
	for _, f := range record.Fields() {
		in := quote(f.JSON) // the JSON path: nested objects arrive as "a.b" columns
		switch f.Kind {
		case record.KindStructList, record.KindStrings:
			continue // JSONEachRow on 18.16 reads neither arrays of objects nor null arrays
		case record.KindTime:
			queue = append(queue, in+" Nullable(String)")
			dt := fmt.Sprintf("toDateTime(replaceOne(substring(ifNull(%s, '1970-01-01T00:00:00'), 1, 19), 'T', ' '), 'UTC')", in)
			target = append(target, quote(f.Name)+" DateTime('UTC')", quote(f.Name+"_ms")+" Int64")
			sel = append(sel, dt+" AS "+quote(f.Name),
				fmt.Sprintf("toInt64(toUnixTimestamp(%s)) * 1000 + toInt64OrZero(substring(ifNull(%s, ''), 21, 3)) AS %s", dt, in, quote(f.Name+"_ms")))
		default:
			typ := map[record.Kind]string{record.KindString: "String", record.KindBool: "UInt8", record.KindInt32: "Int32",
				record.KindInt64: "Int64", record.KindUint32: "UInt32", record.KindFloat64: "Float64",
				record.KindNullFloat: "Nullable(Float64)"}[f.Kind]
			queue = append(queue, in+" "+typ)
			target = append(target, quote(f.Name)+" "+typ)
			sel = append(sel, in+" AS "+quote(f.Name))
		}
	}
	ctx := context.Background()
	for _, q := range []string{
		fmt.Sprintf("CREATE TABLE %s.peer_records (%s) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(start_time) ORDER BY (tenant, start_time, record_id)",
			quote(db), strings.Join(target, ", ")),
		fmt.Sprintf("CREATE TABLE %s.peer_queue (%s) ENGINE = Kafka SETTINGS kafka_broker_list = %s, kafka_topic_list = %s, kafka_group_name = %s, kafka_format = 'JSONEachRow', kafka_num_consumers = %d",
			quote(db), strings.Join(queue, ", "), sqlString(strings.Join(kc.Brokers, ",")), sqlString(topics.Decisions()),
			sqlString(testenv.Name(b)), kc.Partitions),
	} {
		if err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("%v\n%s", err, q)
		}
	}
	start := time.Now()
	q := fmt.Sprintf("CREATE MATERIALIZED VIEW %s.peer_mv TO %s.peer_records AS SELECT %s FROM %s.peer_queue",
		quote(db), quote(db), strings.Join(sel, ", "), quote(db))
	if err := conn.Exec(ctx, q); err != nil {
		b.Fatalf("%v\n%s", err, q)
	}
	waitRows(b, conn, db+".peer_records", n, start, ch)
	elapsed := time.Since(start)
	// Stop consuming before the database goes.
	_ = conn.Exec(ctx, "DROP TABLE "+quote(db)+".peer_mv")
	_ = conn.Exec(ctx, "DROP TABLE "+quote(db)+".peer_queue")

	// The peer stored what it could read, intact.
	var tenant string
	var ms int64
	if err := conn.QueryRow(ctx, "SELECT tenant, start_time_ms FROM "+quote(db)+".peer_records WHERE record_id = ?", record.ID("call-00000042")).Scan(&tenant, &ms); err != nil {
		b.Fatal(err)
	}
	if d := genDecision(42); tenant != d.Identity.Tenant || ms != int64(d.Request.StartTime) {
		b.Fatalf("kafka engine stored tenant %q start %d, want %q %d", tenant, ms, d.Identity.Tenant, d.Request.StartTime)
	}
	return float64(n) / elapsed.Seconds()
}

// waitRows polls count() of table until it reaches n, logging the time to
// 50 % and 100 %. It fails, with the tail of the server's error log, once the
// count has not moved for a minute.
func waitRows(b *testing.B, conn driver.Conn, table string, n int, start time.Time, ch *testenv.Private) {
	half := false
	var last uint64
	moved := time.Now()
	for {
		var got uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+table).Scan(&got); err != nil {
			b.Fatal(err)
		}
		if !half && got >= uint64(n/2) {
			half = true
			b.Logf("%s: half of %d rows after %s", table, n, time.Since(start).Round(time.Millisecond))
		}
		if got >= uint64(n) {
			b.Logf("%s: %d rows after %s", table, got, time.Since(start).Round(time.Millisecond))
			return
		}
		if got != last {
			last, moved = got, time.Now()
		}
		if time.Since(moved) > time.Minute {
			errLog, _ := os.ReadFile(filepath.Join(ch.Data, "log", "clickhouse-server.err.log"))
			if len(errLog) > 4000 {
				errLog = errLog[len(errLog)-4000:]
			}
			b.Fatalf("%s: stuck at %d of %d rows for a minute; server error log ends:\n%s", table, got, n, errLog)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dropDB(conn driver.Conn, db string) {
	_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+quote(db))
}
