package store

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

func TestChunkRows(t *testing.T) {
	for _, tc := range []struct{ n, size, chunk, want int }{
		{0, 0, 100, 0},
		{1, 1 << 30, 100, 1},
		{10, 100, 100, 10}, // the batch fits a block
		{10, 1000, 100, 1}, // a block per row
		{10, 250, 100, 4},  // 25 bytes per row: 4 rows a block
		{10_000, 20 << 20, 2 << 20, 1000},
		{3, 1 << 30, 1, 1},
	} {
		got := chunkRows(tc.n, tc.size, tc.chunk)
		if got != tc.want {
			t.Errorf("chunkRows(%d, %d, %d) = %d, want %d", tc.n, tc.size, tc.chunk, got, tc.want)
		}
	}
}

// TestChunkedInsert: a batch sent as many blocks within one INSERT
// (writer.chunkBytes) stores exactly what the same batch sent as one block
// stores — every column of decision_records (read back field by field) and
// of raw_events — and becomes one part per table, with one store_progress
// row: the server squashed the blocks before writing, so the INSERT is as
// atomic as before (it is what the store's exactly-once rests on).
func TestChunkedInsert(t *testing.T) { testenv.ForEachClickHouse(t, testChunkedInsert) }

func testChunkedInsert(t *testing.T) {
	conn, db, srv := testDB(t)
	ctx := context.Background()
	q := func(s string) string { return strings.ReplaceAll(s, "{db}", quote(db)) }
	for _, tb := range []string{TableDecisions, TableRawEvents, TableProgress} {
		if err := conn.Exec(ctx, q("SYSTEM STOP MERGES {db}.")+quote(tb)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testStoreConfig(testenv.ClickHouse(t), db, "g")
	const n = 23 // records per batch
	cfg.BatchRows = n
	now := time.UnixMilli(int64(baseTime)).UTC()
	parts := func(table string) uint64 {
		return count(t, conn, "SELECT count() FROM system.parts WHERE active AND database = ? AND table = ?", db, table)
	}
	for _, tc := range []struct {
		table string
		rows  func() rows
		value func(i int) *kgo.Record
	}{
		{TableDecisions, func() rows { return newDecisionRows() }, func(i int) *kgo.Record {
			d := fullDecision(i, "acme")
			if i%5 == 0 {
				d.Routing.Attempts, d.Guardrails = nil, nil // empty lists between full ones
			}
			return &kgo.Record{Topic: "decisions", Value: mustJSON(t, d)}
		}},
		{TableRawEvents, func() rows { return newRawRows(0, nil) }, func(i int) *kgo.Record {
			return raw.Topics{Prefix: "t"}.Record(raw.Event{Source: raw.SourceLiteLLM, Format: raw.FormatSingle, Key: fmt.Sprintf("k%d", i),
				EventID: fmt.Sprintf("ev%d", i), Value: []byte(fmt.Sprintf(`{"n":%d,"s":"ü\u0000%s"}`, i, strings.Repeat("x", i)))}, now, "cafe", i)
		}},
	} {
		// Partition 0 as one block, partition 1 as blocks of 1 to n rows.
		whole := newWriter(tc.table, db, conn, srv, cfg, tc.rows, quietLog(), m)
		whole.chunkBytes = 1 << 30
		chunked := newWriter(tc.table, db, conn, srv, cfg, tc.rows, quietLog(), m)
		batch := func(part int32, first int64) []*topic.Message {
			msgs := make([]*topic.Message, n)
			for i := range msgs {
				r := tc.value(i) // each batch the same records
				r.Partition, r.Offset = part, first+int64(i)
				msgs[i] = topic.NewMessage(r)
			}
			return msgs
		}
		if err := whole.Handle(ctx, batch(0, 0)); err != nil {
			t.Fatal(err)
		}
		for i, chunk := range []int{1, 7, n} { // bytes of a block: a row each, a few rows each, about all
			size := 0
			for _, m := range batch(1, 0) {
				size += len(m.Value)
			}
			chunked.chunkBytes = max(1, size*chunk/n)
			before, progress := parts(tc.table), parts(TableProgress)
			if err := chunked.Handle(ctx, batch(1, int64(i*n))); err != nil {
				t.Fatal(err)
			}
			if got := parts(tc.table) - before; got != 1 {
				t.Errorf("%s, blocks of %d rows: %d parts, want 1 (the server did not squash the INSERT's blocks)", tc.table, chunk, got)
			}
			if got := parts(TableProgress) - progress; got != 1 {
				t.Errorf("%s, blocks of %d rows: %d store_progress parts, want 1", tc.table, chunk, got)
			}
		}
	}

	// An INSERT that fails after some of its blocks were sent (the
	// connection closed before its end): 18.16 stores the blocks it
	// received, and the retry sends only the rows after them; servers with
	// deduplication tokens get the batch as one block and store nothing of
	// the failed attempt. Either way each row is stored once.
	ab := &abortingConn{Conn: conn}
	ab.abort.Store(1)
	w := newWriter(TableDecisions, db, ab, srv, cfg, func() rows { return newDecisionRows() }, quietLog(), m)
	msgs := make([]*topic.Message, n)
	size := 0
	for i := range msgs {
		msgs[i] = topic.NewMessage(&kgo.Record{Topic: "decisions", Partition: 2, Offset: int64(i), Value: mustJSON(t, fullDecision(i, "acme"))})
		size += len(msgs[i].Value)
	}
	w.chunkBytes = size * 5 / n // blocks of 5 rows: 4 sent before the failure
	before := parts(TableDecisions)
	if err := w.Handle(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if ab.aborted.Load() != 1 {
		t.Fatal("the failed INSERT was not exercised")
	}
	if got := count(t, conn, q("SELECT count() FROM {db}."+TableDecisions+" WHERE kafka_partition = 2")); got != n {
		t.Errorf("a batch whose first INSERT failed after some of its blocks: %d rows stored, want %d", got, n)
	}
	wantParts := uint64(2) // the prefix, then the rest
	if srv.DedupToken() {
		wantParts = 1
	}
	if got := parts(TableDecisions) - before; got != wantParts {
		t.Errorf("a batch whose first INSERT failed after some of its blocks: %d parts, want %d", got, wantParts)
	}

	// Every batch of partition 1 stored what partition 0's one block stored.
	whole := readDecisions(t, conn, q("SELECT * FROM {db}."+TableDecisions+" WHERE kafka_partition = 0"))
	chunked := readDecisions(t, conn, q("SELECT * FROM {db}."+TableDecisions+" WHERE kafka_partition = 1"))
	if len(whole) != n || len(chunked) != n {
		t.Fatalf("%d decisions from the whole block, %d from the chunked ones, want %d each", len(whole), len(chunked), n)
	}
	for k, w := range whole {
		diffDecisions(t, w, chunked[k])
	}
	cols := rawColumnsText()
	rawRows := func(part int) []string {
		rows, err := conn.Query(ctx, q("SELECT "+cols+" FROM {db}."+TableRawEvents+" WHERE partition = ? ORDER BY offset"), part)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	wr, c := rawRows(0), rawRows(1)
	if len(wr) != n || len(c) != 3*n {
		t.Fatalf("raw_events: %d rows from the whole block, %d from the chunked ones, want %d and %d", len(wr), len(c), n, 3*n)
	}
	for i := range c {
		if c[i] != wr[i%n] {
			t.Errorf("raw_events row %d of the chunked batches:\n%s\nwant\n%s", i, c[i], wr[i%n])
		}
	}
}

// rawColumnsText is an expression of every column the store inserts into
// raw_events but the Kafka partition and offset, as one string.
func rawColumnsText() string {
	var parts []string
	for _, c := range rawEventsColumns {
		switch {
		case c.Name == "partition" || c.Name == "offset":
		case strings.HasPrefix(c.Type, "Array("):
			parts = append(parts, "arrayStringConcat(arrayMap(x -> toString(x), "+quote(c.Name)+"), '\\x1f')")
		default:
			parts = append(parts, "toString("+quote(c.Name)+")")
		}
	}
	return "concat(" + strings.Join(parts, ", '\\x1e', ") + ")"
}

// abortingConn's INSERTs, while abort > 0, send their blocks, then close
// the connection instead of ending the INSERT (as a store that lost the
// connection half-way would).
type abortingConn struct {
	driver.Conn
	abort, aborted atomic.Int32
}

func (c *abortingConn) PrepareBatch(ctx context.Context, q string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	b, err := c.Conn.PrepareBatch(ctx, q, opts...)
	if err != nil {
		return nil, err
	}
	return abortingBatch{b, c}, nil
}

type abortingBatch struct {
	driver.Batch
	c *abortingConn
}

func (b abortingBatch) Send() error {
	if b.c.abort.Add(-1) < 0 {
		return b.Batch.Send()
	}
	b.c.aborted.Add(1)
	if err := b.Batch.Abort(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
