package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/privacy/capture"
)

// rows accumulates one batch of one table, column by column (clickhouse-go's
// columnar append is several times faster than row-wise Append).
type rows interface {
	// add appends the row of r. An error means r can never become a row (it
	// is permanent: the value is undecodable or invalid) and nothing was
	// appended; the caller stores r in rejected_records instead.
	add(r *kgo.Record) error
	len() int
	// columns is the explicit insert column list (18.16 needs one).
	columns() []string
	// values holds one slice per column, in columns order.
	values() []any
	reset()
}

// decisionRows builds decision_records rows from the JSON of record.Decision,
// through the decision codec (DecisionBatch).
type decisionRows struct {
	b *DecisionBatch
	d record.Decision // decode target, reused
}

func newDecisionRows() *decisionRows { return &decisionRows{b: NewDecisionBatch()} }

// ErrInvalid marks a value that decodes but cannot be stored.
var ErrInvalid = errors.New("invalid decision")

// DecodeDecision decodes and checks one decisions-topic value. It is the
// decoder the store trusts with arbitrary bytes (see FuzzDecodeDecision).
// d's strings share one copy of value.
func DecodeDecision(value []byte, d *record.Decision) error {
	return decodeDecision(value, string(value), d)
}

// decodeDecision is DecodeDecision with the value also given as a string
// that d's strings may share (unsafe.String of value in the writer, whose
// records do not change until their batch is inserted).
//
// The values enrich publishes (record.Decision.AppendCanonical) are read by
// record.DecodeCompact, at less than half the general decoder's CPU; any
// value it leaves (one not written that way, or malformed) is decoded by
// encoding/json/v2 as before, which alone decides what is rejected and with
// which error. record's TestDecodeCompactMatchesV2 and FuzzDecodeCompact
// check that the two decode alike wherever DecodeCompact reads a value.
func decodeDecision(value []byte, shared string, d *record.Decision) error {
	*d = record.Decision{}
	if !record.DecodeCompact(shared, d) {
		*d = record.Decision{}
		if err := jsonv2.Unmarshal(value, d); err != nil {
			return fmt.Errorf("decode decision: %w", err)
		}
	}
	switch {
	case d.RecordID == "":
		return fmt.Errorf("%w: empty record_id", ErrInvalid)
	case d.Version < 1:
		return fmt.Errorf("%w: record %s has version 0", ErrInvalid, d.RecordID)
	case d.SchemaVersion < 1 || d.SchemaVersion > record.SchemaVersion:
		return fmt.Errorf("%w: record %s has schema_version %d, this store writes 1 to %d",
			ErrInvalid, d.RecordID, d.SchemaVersion, record.SchemaVersion)
	}
	return nil
}

func (r *decisionRows) add(rec *kgo.Record) error {
	// Not copied: rec.Value does not change until the batch is inserted,
	// and clickhouse-go copies every string into its block (the columns
	// are released as it does: insertColumns).
	if err := decodeDecision(rec.Value, unsafe.String(unsafe.SliceData(rec.Value), len(rec.Value)), &r.d); err != nil {
		return err
	}
	r.b.Append(&r.d, rec.Topic, rec.Partition, rec.Offset)
	return nil
}

func (r *decisionRows) len() int          { return r.b.Len() }
func (r *decisionRows) columns() []string { return r.b.Columns() }
func (r *decisionRows) values() []any     { return r.b.Values() }
func (r *decisionRows) reset()            { r.b.Reset() }

// rawRows builds raw_events rows: every Kafka record of a raw topic becomes
// a row; nothing is ever rejected.
type rawRows struct {
	bodyMax int
	capt    *capture.Capturer // the capture policy bodies and header values follow
	names   []string

	topic, key, source, format, eventID, batch, reason, sum, body []string
	partition                                                     []int32
	offset, receivedMS, tsMS                                      []int64
	received                                                      []time.Time
	size                                                          []uint32
	stored                                                        []uint8
	hkeys, hvals                                                  [][]string
	hslab                                                         []string // the rows' hkeys and hvals arrays are cut from it
}

func newRawRows(bodyMax int, capt *capture.Capturer) *rawRows {
	if capt == nil {
		capt = capture.New(capture.Full)
	}
	r := &rawRows{bodyMax: bodyMax, capt: capt}
	for _, c := range rawEventsColumns {
		r.names = append(r.names, c.Name)
	}
	return r
}

func (r *rawRows) add(rec *kgo.Record) error {
	sum := sha256.Sum256(rec.Value)
	recv := raw.ReceivedAt(rec).UnixMilli()
	r.topic = append(r.topic, rec.Topic)
	r.partition = append(r.partition, rec.Partition)
	r.offset = append(r.offset, rec.Offset)
	// The key and header values are not copied either: like the body, they
	// are the record's bytes, which do not change until the batch is
	// inserted (clickhouse-go copies them into its block).
	r.key = append(r.key, alias(rec.Key))
	r.source = append(r.source, header(rec, raw.HeaderSource))
	r.format = append(r.format, header(rec, raw.HeaderFormat))
	r.eventID = append(r.eventID, header(rec, raw.HeaderEventID))
	r.batch = append(r.batch, header(rec, raw.HeaderBatch))
	r.reason = append(r.reason, r.capt.Text(header(rec, raw.HeaderReason)))
	r.received = append(r.received, dateTime(recv))
	r.receivedMS = append(r.receivedMS, recv)
	r.tsMS = append(r.tsMS, rec.Timestamp.UnixMilli())
	r.sum = append(r.sum, hex.EncodeToString(sum[:]))
	r.size = append(r.size, uint32(min(len(rec.Value), 1<<32-1)))
	// sha256 and size are those of the original bytes (the evidence); the
	// body is what the capture policy keeps of them (body_stored 2 when that
	// differs from the original bytes, 1 when it is them).
	if body := r.capt.Body(rec.Value); r.bodyMax == 0 || len(body) <= r.bodyMax {
		// Not copied: body is the record's own bytes or a fresh rewrite, and
		// neither changes until the batch is inserted (clickhouse-go copies
		// it into its block), so a copy here would hold the batch twice.
		r.body = append(r.body, unsafe.String(unsafe.SliceData(body), len(body)))
		r.stored = append(r.stored, storedFlag(body, rec.Value))
	} else {
		r.body = append(r.body, "")
		r.stored = append(r.stored, 0)
	}
	n := len(rec.Headers)
	if n == 0 {
		r.hkeys = append(r.hkeys, []string{}) // not nil, as before (no allocation)
		r.hvals = append(r.hvals, []string{})
		return nil
	}
	if cap(r.hslab)-len(r.hslab) < 2*n {
		r.hslab = make([]string, 0, max(listSlab, 2*n))
	}
	at := len(r.hslab)
	r.hslab = r.hslab[:at+2*n]
	ks, vs := r.hslab[at:at+n:at+n], r.hslab[at+n:at+2*n:at+2*n]
	for i, h := range rec.Headers {
		ks[i], vs[i] = h.Key, r.capt.Text(alias(h.Value))
	}
	r.hkeys = append(r.hkeys, ks)
	r.hvals = append(r.hvals, vs)
	return nil
}

// alias is b as a string, not copied: b must not change while the string
// is in use.
func alias(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// header is raw.Header without the copy: the value of the record's first
// header named key (aliased), or "".
func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return alias(h.Value)
		}
	}
	return ""
}

func (r *rawRows) len() int          { return len(r.topic) }
func (r *rawRows) columns() []string { return r.names }

// values follows rawEventsColumns.
func (r *rawRows) values() []any {
	return []any{r.topic, r.partition, r.offset, r.key, r.source, r.format, r.eventID, r.batch, r.reason,
		r.received, r.receivedMS, r.tsMS, r.sum, r.size, r.body, r.stored, r.hkeys, r.hvals}
}

// reset empties the rows, keeping the column buffers for the next batch
// (as DecisionBatch does) instead of growing them again from nothing.
func (r *rawRows) reset() {
	truncate(&r.topic, &r.key, &r.source, &r.format, &r.eventID, &r.batch, &r.reason, &r.sum, &r.body, &r.hslab)
	truncate(&r.partition)
	truncate(&r.offset, &r.receivedMS, &r.tsMS)
	truncate(&r.received)
	truncate(&r.size)
	truncate(&r.stored)
	truncate(&r.hkeys, &r.hvals)
}

// truncate empties each slice, keeping its capacity; its old elements are
// cleared so that they hold nothing of an inserted batch.
func truncate[T any](ss ...*[]T) {
	for _, s := range ss {
		clear(*s)
		*s = (*s)[:0]
	}
}

// storedFlag is body_stored for a body kept: 1 when it is the original bytes,
// 2 when the capture policy replaced part of them.
func storedFlag(body, orig []byte) uint8 {
	if len(body) == len(orig) && (len(body) == 0 || &body[0] == &orig[0] || string(body) == string(orig)) {
		return 1
	}
	return 2
}

// rejectRows builds rejected_records rows.
type rejectRows struct {
	topic, key, reason, value []string
	partition                 []int32
	offset, tsMS              []int64
}

func (r *rejectRows) addReject(rec *kgo.Record, reason error) {
	r.topic = append(r.topic, rec.Topic)
	r.partition = append(r.partition, rec.Partition)
	r.offset = append(r.offset, rec.Offset)
	r.key = append(r.key, string(rec.Key))
	r.tsMS = append(r.tsMS, rec.Timestamp.UnixMilli())
	r.reason = append(r.reason, reason.Error())
	r.value = append(r.value, string(rec.Value))
}

func (r *rejectRows) add(*kgo.Record) error { return errors.New("rejectRows: use addReject") }
func (r *rejectRows) len() int              { return len(r.topic) }
func (r *rejectRows) columns() []string {
	out := make([]string, len(rejectedColumns))
	for i, c := range rejectedColumns {
		out[i] = c.Name
	}
	return out
}

// values follows rejectedColumns.
func (r *rejectRows) values() []any {
	return []any{r.topic, r.partition, r.offset, r.key, r.tsMS, r.reason, r.value}
}
func (r *rejectRows) reset() { *r = rejectRows{} }

// batchToken is the insert_deduplication_token of a batch: the design of
// ClickHouse Kafka Connect (topic-partition-minOffset-maxOffset), plus the
// table, since one batch may write two tables.
func batchToken(table, topic string, partition int32, first, last int64) string {
	return table + ":" + topic + "-" + strconv.Itoa(int(partition)) + "-" +
		strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10)
}
