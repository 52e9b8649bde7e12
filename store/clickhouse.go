package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Open returns a connection pool to ClickHouse over the native protocol. It
// dials lazily: an unreachable server is reported by the first query.
func Open(cfg ClickHouseConfig) (driver.Conn, error) {
	dial := cfg.DialTimeout
	if dial == 0 {
		dial = 5 * time.Second
	}
	tc, err := cfg.TLS.Load()
	if err != nil {
		return nil, fmt.Errorf("store.clickhouse.tls: %w", err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		TLS:             tc,
		Protocol:        clickhouse.Native,
		Addr:            cfg.Addr,
		Auth:            clickhouse.Auth{Database: "default", Username: cfg.Username, Password: cfg.Password},
		DialTimeout:     dial,
		MaxOpenConns:    16,
		MaxIdleConns:    8,
		ConnMaxLifetime: time.Hour,
		Compression:     &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		ReadTimeout:     5 * time.Minute,
		// A connection keeps the buffer of its largest block (an INSERT of
		// up to store.batch_bytes, plus its LZ4 copy) for its next query
		// unless this is set; with several idle connections in the pool that
		// was the batch held again per connection. Allocating it per INSERT
		// costs far less than holding it.
		FreeBufOnConnRelease: true,
		// On a cluster (deploy/clickhouse/cluster.sql) decision_records is a
		// Distributed table: an INSERT must return only once the shards
		// hold the block, as on one server. No effect on local tables.
		Settings: clickhouse.Settings{"insert_distributed_sync": 1},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return conn, nil
}

// Detect returns the server's version.
func Detect(ctx context.Context, conn driver.Conn) (Server, error) {
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return Server{}, fmt.Errorf("clickhouse version: %w", err)
	}
	return ParseServer(v)
}

// permanentCodes are ClickHouse error codes that no retry can fix: the schema
// or the credentials are wrong, or we sent something the table cannot take.
// Every other server error, and every network error, is retried.
var permanentCodes = map[int32]string{
	8:   "THERE_IS_NO_COLUMN",
	10:  "NOT_FOUND_COLUMN_IN_BLOCK",
	16:  "NO_SUCH_COLUMN_IN_TABLE",
	20:  "NUMBER_OF_COLUMNS_DOESNT_MATCH",
	44:  "ILLEGAL_COLUMN",
	47:  "UNKNOWN_IDENTIFIER",
	53:  "TYPE_MISMATCH",
	60:  "UNKNOWN_TABLE",
	62:  "SYNTAX_ERROR",
	70:  "CANNOT_CONVERT_TYPE",
	81:  "UNKNOWN_DATABASE",
	115: "UNKNOWN_SETTING",
	164: "READONLY",
	192: "UNKNOWN_USER",
	193: "WRONG_PASSWORD",
	497: "ACCESS_DENIED",
	516: "AUTHENTICATION_FAILED",
}

// PermanentError is an insert failure that retrying cannot fix. It stops the
// store stage (an operator must run `auditline migrate` or fix credentials);
// nothing at or after the batch is committed, so nothing is lost.
type PermanentError struct {
	Table string
	Err   error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("insert into %s: %v (permanent: fix the schema or credentials, e.g. run 'auditline migrate')", e.Table, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// classify names an insert error for metrics, and says whether it is
// permanent.
func classify(err error) (class string, permanent bool) {
	var ea errAppend
	if errors.As(err, &ea) {
		return "append", true
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		if name, ok := permanentCodes[ex.Code]; ok {
			return strings.ToLower(name), true
		}
		return fmt.Sprintf("code_%d", ex.Code), false
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", false
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout", false
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection_lost", false
	}
	return "other", false
}

// errAppend marks a failure to append our own columns to a batch: a bug
// between the derived schema and the server's table, never transient.
type errAppend struct{ err error }

func (e errAppend) Error() string { return e.err.Error() }
func (e errAppend) Unwrap() error { return e.err }

// insert sends one INSERT with the given columns. token, when non-empty, is
// sent as insert_deduplication_token, with
// deduplicate_blocks_in_dependent_materialized_views = 1 (the default on
// current servers, but a profile may turn it off): the materialized views'
// tables then drop a repeated block too (see viewTargetsDedupDDL).
func insert(ctx context.Context, conn driver.Conn, db, table string, cols []string, values []any, token string) error {
	return insertColumns(ctx, conn, db, table, cols, values, token, false, 0)
}

// insertColumns is insert, with two ways to hold the batch less.
//
// release clears each of values' slices (zeroes its elements, keeping its
// length and capacity) as soon as clickhouse-go has copied it into its own
// column block, so that the caller's strings and lists are garbage before
// the next column is copied: a batch is then held about once, not twice
// (our buffers, then clickhouse-go's). The caller must rebuild the values
// before it inserts them again.
//
// chunkRows > 0 sends the rows as blocks of at most that many rows within
// the one INSERT (clickhouse-go's Flush), so that clickhouse-go's column
// block, its encode buffer and its LZ4 output are the size of a chunk and
// are reused from chunk to chunk, instead of growing by doubling to the
// whole batch in fresh memory each INSERT (their copies and page faults
// were about a third of the store's CPU; bench/PROFILE.md, seventh pass). The
// server squashes the blocks of one INSERT into one block before it writes
// (min_insert_block_size_rows/bytes, sent with the query so that a profile
// cannot lower them): one part per INSERT, as before. But not all or
// nothing: when the connection closes before the INSERT's end, 18.16 writes
// the blocks it received (TestChunkedInsert), a prefix of the batch, which
// the writer's retry skips (store_progress has its last offset). The writer
// sends chunks only there: not to a Distributed table (insert_distributed_
// sync does not squash), and not with a deduplication token, where a stored
// prefix would make the retry's whole block a duplicate (26.9 stores nothing
// of an aborted INSERT, but 24.x cannot be tested here).
func insertColumns(ctx context.Context, conn driver.Conn, db, table string, cols []string, values []any, token string, release bool, chunkRows int) error {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quote(c)
	}
	rows := 0
	if len(values) > 0 {
		rows = reflect.ValueOf(values[0]).Len()
	}
	if chunkRows <= 0 || chunkRows >= rows {
		chunkRows = rows
	}
	settings := clickhouse.Settings{}
	if token != "" {
		settings["insert_deduplication_token"] = token
		settings["deduplicate_blocks_in_dependent_materialized_views"] = 1
	}
	if chunkRows < rows {
		settings["min_insert_block_size_rows"] = max(rows, squashRows)
		settings["min_insert_block_size_bytes"] = squashBytes
	}
	if len(settings) > 0 {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(settings))
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+quote(db)+"."+quote(table)+" ("+strings.Join(q, ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	defer b.Abort() //nolint:errcheck // a no-op once sent
	for lo := 0; ; lo += chunkRows {
		hi := min(lo+chunkRows, rows)
		for i, v := range values {
			if hi-lo < rows {
				v = reflect.ValueOf(v).Slice(lo, hi).Interface()
			}
			if err := appendColumn(b.Column(i), v); err != nil {
				return errAppend{fmt.Errorf("append column %s of %s: %w", cols[i], table, err)}
			}
			if release {
				reflect.ValueOf(v).Clear()
			}
		}
		if hi >= rows {
			break
		}
		if err := b.Flush(); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

// squashRows and squashBytes are the least min_insert_block_size_rows and
// min_insert_block_size_bytes a chunked INSERT sends: the server's defaults
// (1,048,576 rows, 256 MiB), far above a batch (store.batch_rows,
// store.batch_bytes), so its chunks always become one block.
const (
	squashRows  = 1 << 20
	squashBytes = 1 << 30
)

// defaultChunkBytes is the size of the blocks a batch is sent as
// (insertColumns; writer.chunkBytes).
const defaultChunkBytes = 2 << 20

// chunkRows is how many rows of a batch of n rows and size bytes (its
// messages' bytes, about its columns' bytes) make a block of chunk bytes.
func chunkRows(n, size, chunk int) int {
	if size <= chunk || n <= 1 {
		return n
	}
	return max(1, int(int64(n)*int64(chunk)/int64(size)))
}

// appendColumn appends a whole column to a batch. For an Array column given
// as [][]T, clickhouse-go's Append walks every row and every element by
// reflection, boxing each element into an interface (it was about a third of
// the store's CPU in the profile of issue 9); handing it one typed row at a
// time takes its reflection-free path instead. Other values, and arrays of
// arrays, go to Append as before.
func appendColumn(c driver.BatchColumn, v any) error {
	switch rows := v.(type) {
	case [][]string:
		return appendRows(c, rows)
	case [][]int32:
		return appendRows(c, rows)
	case [][]int64:
		return appendRows(c, rows)
	case [][]uint32:
		return appendRows(c, rows)
	case [][]float64:
		return appendRows(c, rows)
	case [][]*float64:
		return appendRows(c, rows)
	case [][]time.Time:
		return appendRows(c, rows)
	}
	return c.Append(v)
}

func appendRows[T any](c driver.BatchColumn, rows [][]T) error {
	for _, r := range rows {
		if err := c.AppendRow(r); err != nil {
			return err
		}
	}
	return nil
}

// newQueryID returns a fresh query id for one INSERT attempt.
func newQueryID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "auditline-store-" + hex.EncodeToString(b[:])
}

// waitQuery waits until the server runs no query with id (polling
// system.processes), or ctx ends.
func waitQuery(ctx context.Context, conn driver.Conn, id string) error {
	if id == "" {
		return nil
	}
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.processes WHERE query_id = ?", id).Scan(&n); err != nil {
			return fmt.Errorf("read system.processes: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// progress returns the highest Kafka offset of topic/partition that
// store_progress records as inserted, and false when it records none.
func progress(ctx context.Context, conn driver.Conn, db, topic string, partition int32) (int64, bool, error) {
	var n uint64
	var last int64
	err := conn.QueryRow(ctx, "SELECT count(), max(max_offset) FROM "+quote(db)+"."+quote(TableProgress)+
		" WHERE topic = ? AND partition = ?", topic, partition).Scan(&n, &last)
	if err != nil {
		return 0, false, fmt.Errorf("read store_progress: %w", err)
	}
	return last, n > 0, nil
}
