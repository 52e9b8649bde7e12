package store

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/backoff"
)

// revokeFlushTimeout bounds the last insert of a partition that is being
// revoked (or of every partition at shutdown). If ClickHouse does not take
// the batch in time, its messages stay uncommitted and the next owner of the
// partition inserts them.
const revokeFlushTimeout = 10 * time.Second

// writer is the topic.Handler of one topic: it cuts each partition's messages
// into batches by offset window, inserts each batch with one INSERT, and
// reports the messages Done only after that INSERT succeeded.
//
// It implements topic.PartitionObserver and topic.Ticker; the Reader calls
// all four methods for one partition on that partition's goroutine, so a
// partition's state needs no lock (only the map of partitions does).
type writer struct {
	table   string // decision_records or raw_events
	db      string
	conn    driver.Conn
	srv     Server
	cfg     Config
	newRows func() rows
	log     *slog.Logger
	m       *metrics
	// sharded: the table is Distributed over shards (sharded.go): offsets
	// that store_progress covers are verified per shard, not skipped.
	sharded bool
	// chunkBytes: a batch is sent as blocks of about this many bytes within
	// its one INSERT (insertColumns); tests make it small.
	chunkBytes int

	mu    sync.Mutex
	parts map[int32]*partition
}

// partition is one assigned partition's batch in the making.
type partition struct {
	id      int32
	loaded  bool  // stored was read from store_progress
	stored  int64 // every offset <= stored is in ClickHouse (or rejected); -1: none
	verify  int64 // sharded: offsets <= verify may be on some shards; check before inserting
	pending []*topic.Message
	bytes   int
	window  int64 // offset / BatchRows of pending
	since   time.Time
	rows    rows
	rejects rejectRows
	// attempt is the query id of the last INSERT of pending that failed (as
	// far as we know): set, the next flush asks whether it landed first.
	attempt string
}

func newWriter(table, db string, conn driver.Conn, srv Server, cfg Config, newRows func() rows, log *slog.Logger, m *metrics) *writer {
	return &writer{
		table: table, db: db, conn: conn, srv: srv, cfg: cfg, newRows: newRows,
		log: log.With("table", table), m: m, parts: map[int32]*partition{},
		chunkBytes: defaultChunkBytes,
	}
}

func (w *writer) part(id int32) *partition {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.parts[id]
	if p == nil {
		p = &partition{id: id, stored: -1, verify: -1, rows: w.newRows()}
		w.parts[id] = p
	}
	return p
}

// Assigned starts a partition afresh: what is stored is read again from
// store_progress before its first batch.
func (w *writer) Assigned(_ context.Context, id int32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.parts[id] = &partition{id: id, stored: -1, verify: -1, rows: w.newRows()}
	return nil
}

// Revoked inserts what the partition still holds (bounded by
// revokeFlushTimeout), so that a graceful shutdown or rebalance commits it,
// then forgets the partition.
func (w *writer) Revoked(id int32) {
	w.mu.Lock()
	p := w.parts[id]
	delete(w.parts, id)
	w.mu.Unlock()
	if p == nil || len(p.pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), revokeFlushTimeout)
	defer cancel()
	if err := w.flush(ctx, p); err != nil {
		w.log.Warn("final batch not inserted; the next owner of the partition will insert it",
			"partition", id, "messages", len(p.pending), "err", err)
		w.m.buffered.WithLabelValues(w.table).Sub(float64(len(p.pending)))
	}
}

// Handle buffers msgs and inserts every batch they complete.
func (w *writer) Handle(ctx context.Context, msgs []*topic.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	p := w.part(msgs[0].Partition)
	if !p.loaded {
		if err := w.load(ctx, p, msgs[0].Topic); err != nil {
			return err
		}
	}
	n := int64(w.cfg.BatchRows)
	for _, m := range msgs {
		if w.table == TableRawEvents && raw.IsWatermark(m.Record) {
			// ingest's watermark (raw.Watermark), not an event: no row.
			m.Done()
			continue
		}
		if m.Offset <= p.stored {
			// Inserted by an earlier run whose offset commit did not happen.
			m.Done()
			w.m.skipped.WithLabelValues(w.table).Inc()
			continue
		}
		win := m.Offset / n
		if len(p.pending) > 0 && (win != p.window || p.bytes+len(m.Value) > w.cfg.BatchBytes) {
			if err := w.flush(ctx, p); err != nil {
				return err
			}
		}
		if len(p.pending) == 0 {
			p.window, p.since = win, time.Now()
		}
		p.pending = append(p.pending, m)
		p.bytes += len(m.Value)
		w.m.buffered.WithLabelValues(w.table).Inc()
		if m.Offset%n == n-1 { // the window is complete
			if err := w.flush(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tick inserts a partial batch that has waited Linger.
func (w *writer) Tick(ctx context.Context, id int32, now time.Time) error {
	w.mu.Lock()
	p := w.parts[id]
	w.mu.Unlock()
	if p == nil || len(p.pending) == 0 || now.Sub(p.since) < w.cfg.Linger {
		return nil
	}
	return w.flush(ctx, p)
}

// load reads the partition's progress from store_progress, retrying while
// ClickHouse is unreachable.
func (w *writer) load(ctx context.Context, p *partition, topicName string) error {
	var stored int64 = -1
	err := w.retry(ctx, nil, false, func(ctx context.Context) error {
		last, ok, err := progress(ctx, w.conn, w.db, topicName, p.id)
		if err == nil && ok {
			stored = last
		}
		return err
	})
	if err != nil {
		return err
	}
	if w.sharded {
		// The maximum over shards: a shard may lack part of the batch that
		// wrote it. Verify up to there instead of skipping (sharded.go).
		p.verify, stored = stored, -1
	}
	p.stored, p.loaded = stored, true
	if stored >= 0 {
		w.log.Debug("partition progress", "topic", topicName, "partition", p.id, "stored_through", stored)
	}
	return nil
}

// flush inserts the pending batch: rejected values first, then the rows
// (store_progress follows the rows, so a crash between the two re-inserts
// the rejects, which rejected_records collapses), then reports every
// message Done.
func (w *writer) flush(ctx context.Context, p *partition) error {
	first, last := p.pending[0], p.pending[len(p.pending)-1]
	p.rows.reset()
	p.rejects.reset()
	lastRow := int64(-1)
	for _, m := range p.pending {
		if err := p.rows.add(m.Record); err != nil {
			p.rejects.addReject(m.Record, err)
			w.m.rejected.WithLabelValues(w.table).Inc()
			continue
		}
		lastRow = m.Offset
	}
	var token, rejToken string
	if w.srv.DedupToken() {
		token = batchToken(w.table, first.Topic, p.id, first.Offset, last.Offset)
		rejToken = batchToken(TableRejected, first.Topic, p.id, first.Offset, last.Offset)
	}
	rowsLeft, rejLeft := p.rows.len() > 0, p.rejects.len() > 0
	start := time.Now()
	// Before a retry, ask store_progress whether the failed attempt was stored
	// after all — only where a repeated INSERT would store the rows twice.
	// With a deduplication token the retry is sent as is: ClickHouse drops
	// what the attempt stored, and stores what it did not. This matters when
	// an INSERT failed half-way through the materialized views (server killed,
	// a view's table refusing the block): store_progress may hold the block
	// while decision_versions does not, and only the retry fills it in.
	//
	// An attempt that timed out on our side may still be running on the
	// server (18.16 under load: the reply came after InsertTimeout), and
	// store_progress gets its row only when it ends; so each attempt has its
	// own query id, and landed first waits until the server no longer runs
	// the last one. (Without that wait, TestReplay on a busy 18.16 stored
	// batches twice.)
	//
	// A batch whose INSERT failed in an earlier flush (the stage stopping
	// while it retried; the partition revoked) is checked before its first
	// attempt too: that earlier attempt may have landed.
	//
	// An attempt sent in blocks (insertColumns' chunks) may have stored a
	// prefix of the batch: 18.16 writes the blocks it received when the
	// connection closes before the INSERT's end (TestChunkedInsert). Its
	// rows are the batch's first rows, and store_progress has their last
	// offset: the retry sends only the rows after it.
	//
	// An INSERT of the rows releases their columns as it copies them
	// (insertColumns), so that the batch is held once; consumed says the
	// rows must be built again from pending before another attempt.
	consumed := false
	storedThrough := int64(-1)
	var landed func(context.Context) bool
	if lastRow >= 0 && token == "" && !w.sharded {
		landed = func(ctx context.Context) bool {
			if err := waitQuery(ctx, w.conn, p.attempt); err != nil {
				return false
			}
			got, ok, err := progress(ctx, w.conn, w.db, first.Topic, p.id)
			if err != nil || !ok {
				return false
			}
			if got >= first.Offset && got < lastRow && got > storedThrough {
				storedThrough, consumed = got, true
				w.log.Info("a prefix of the batch was stored before its INSERT failed; sending the rest", "partition", p.id, "stored_through", got, "last", lastRow)
			}
			return got >= lastRow
		}
	}
	// Sharded: offsets some shard may hold already are checked (per shard)
	// before the rows are sent, and again before every retry.
	check := w.sharded && lastRow >= 0 && (first.Offset <= p.verify || p.attempt != "")
	nrows := p.rows.len()
	err := w.retry(ctx, landed, p.attempt != "", func(ctx context.Context) error {
		if rowsLeft && check {
			n, err := w.unstoredRows(ctx, p)
			if err != nil {
				return err
			}
			check, consumed, nrows = false, false, p.rows.len()
			if n > 0 {
				w.m.skipped.WithLabelValues(w.table).Add(float64(n))
				w.log.Info("rows already stored on their shard are not sent again", "partition", p.id, "rows", n)
			}
			rowsLeft = p.rows.len() > 0
		}
		if rejLeft {
			if err := insert(ctx, w.conn, w.db, TableRejected, p.rejects.columns(), p.rejects.values(), rejToken); err != nil {
				return err
			}
			rejLeft = false
		}
		if rowsLeft {
			if consumed {
				p.rows.reset()
				for _, m := range p.pending {
					if m.Offset > storedThrough {
						_ = p.rows.add(m.Record) // one that fails is in rejected_records already
					}
				}
			}
			p.attempt = newQueryID()
			ctx := clickhouse.Context(ctx, clickhouse.WithQueryID(p.attempt))
			consumed = true
			chunk := chunkRows(p.rows.len(), p.bytes, w.chunkBytes)
			if landed == nil {
				// A Distributed table does not squash; and with a
				// deduplication token a stored prefix would make the
				// retry's block a duplicate (insertColumns).
				chunk = 0
			}
			if err := insertColumns(ctx, w.conn, w.db, w.table, p.rows.columns(), p.rows.values(), token, true, chunk); err != nil {
				check = w.sharded // some shards may have taken their part
				return err
			}
			rowsLeft = false
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.m.insertSeconds.WithLabelValues(w.table).Observe(time.Since(start).Seconds())
	w.m.rows.WithLabelValues(w.table).Add(float64(nrows))
	w.m.batches.WithLabelValues(w.table).Inc()
	for _, m := range p.pending {
		m.Done()
	}
	w.m.buffered.WithLabelValues(w.table).Sub(float64(len(p.pending)))
	p.stored, p.attempt = last.Offset, ""
	clear(p.pending)
	p.pending, p.bytes = p.pending[:0], 0
	p.rows.reset()
	p.rejects.reset()
	return nil
}

// retry runs fn until it succeeds, fails permanently, or ctx ends. Before
// each retry (and before the first attempt when checkFirst) it calls landed
// (when set), which asks store_progress whether the failed attempt was
// stored after all (only its reply was lost): then the
// batch is done and is not inserted twice. (Servers without
// insert_deduplication_token, 18.16: a server that dies between the
// materialized views of one INSERT can leave store_progress ahead of
// decision_versions; see docs/store.md.)
func (w *writer) retry(ctx context.Context, landed func(context.Context) bool, checkFirst bool, fn func(context.Context) error) error {
	attempt := 0
	// Each wait is drawn between half and all of the exponential one, so that
	// partitions (and replicas) that lost ClickHouse together spread out.
	policy := backoff.Policy{Min: w.cfg.RetryMin, Max: w.cfg.RetryMax, Jitter: 0.5}
	return backoff.Retry(ctx, policy, func(ctx context.Context) error {
		if attempt++; (attempt > 1 || checkFirst) && landed != nil {
			lctx, cancel := context.WithTimeout(ctx, w.cfg.InsertTimeout)
			ok := landed(lctx)
			cancel()
			if ok {
				w.m.landed.WithLabelValues(w.table).Inc()
				w.log.Info("insert was stored before its reply was lost; not repeating it")
				w.m.up.Set(1)
				return nil
			}
		}
		actx, cancel := context.WithTimeout(ctx, w.cfg.InsertTimeout)
		err := fn(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				w.log.Info("clickhouse insert succeeded after retries", "attempts", attempt)
			}
			w.m.up.Set(1)
			return nil
		}
		if ctx.Err() != nil {
			return err // shutting down: Retry returns ctx's error
		}
		class, permanent := classify(err)
		w.m.errors.WithLabelValues(w.table, class).Inc()
		if permanent {
			return backoff.Permanent(&PermanentError{Table: w.table, Err: err})
		}
		w.m.up.Set(0)
		if attempt%20 == 1 {
			w.log.Warn("clickhouse unavailable; holding the batch and retrying", "attempt", attempt, "class", class, "err", err)
		}
		w.m.retries.WithLabelValues(w.table).Inc()
		return err
	}, nil)
}
