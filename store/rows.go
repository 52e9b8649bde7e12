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

// decisionRows builds decision_records rows from the JSON of record.Decision.
type decisionRows struct {
	cols  []column
	names []string
	bufs  []colBuf
	topic buf[string]
	part  buf[int32]
	off   buf[int64]
	n     int
	d     record.Decision // decode target, reused
}

func newDecisionRows() *decisionRows {
	r := &decisionRows{cols: decisionColumns()}
	for _, c := range r.cols {
		r.names = append(r.names, c.Name)
		r.bufs = append(r.bufs, c.new())
	}
	r.names = append(r.names, ColTopic, ColPartition, ColOffset)
	return r
}

// ErrInvalid marks a value that decodes but cannot be stored.
var ErrInvalid = errors.New("invalid decision")

// DecodeDecision decodes and checks one decisions-topic value. It is the
// decoder the store trusts with arbitrary bytes (see FuzzDecodeDecision).
func DecodeDecision(value []byte, d *record.Decision) error {
	*d = record.Decision{}
	if err := jsonv2.Unmarshal(value, d); err != nil {
		return fmt.Errorf("decode decision: %w", err)
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
	if err := DecodeDecision(rec.Value, &r.d); err != nil {
		return err
	}
	p := unsafe.Pointer(&r.d)
	for _, b := range r.bufs {
		b.add(p)
	}
	r.topic.v = append(r.topic.v, rec.Topic)
	r.part.v = append(r.part.v, rec.Partition)
	r.off.v = append(r.off.v, rec.Offset)
	r.n++
	return nil
}

func (r *decisionRows) len() int          { return r.n }
func (r *decisionRows) columns() []string { return r.names }

func (r *decisionRows) values() []any {
	out := make([]any, 0, len(r.bufs)+3)
	for _, b := range r.bufs {
		out = append(out, b.values())
	}
	return append(out, r.topic.v, r.part.v, r.off.v)
}

func (r *decisionRows) reset() {
	for _, b := range r.bufs {
		b.reset()
	}
	r.topic.reset()
	r.part.reset()
	r.off.reset()
	r.n = 0
}

// rawRows builds raw_events rows: every Kafka record of a raw topic becomes
// a row; nothing is ever rejected.
type rawRows struct {
	bodyMax int
	names   []string

	topic, key, source, format, eventID, batch, reason, sum, body []string
	partition                                                     []int32
	offset, receivedMS, tsMS                                      []int64
	received                                                      []time.Time
	size                                                          []uint32
	stored                                                        []uint8
	hkeys, hvals                                                  [][]string
}

func newRawRows(bodyMax int) *rawRows {
	r := &rawRows{bodyMax: bodyMax}
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
	r.key = append(r.key, string(rec.Key))
	r.source = append(r.source, raw.Header(rec, raw.HeaderSource))
	r.format = append(r.format, raw.Header(rec, raw.HeaderFormat))
	r.eventID = append(r.eventID, raw.Header(rec, raw.HeaderEventID))
	r.batch = append(r.batch, raw.Header(rec, raw.HeaderBatch))
	r.reason = append(r.reason, raw.Header(rec, raw.HeaderReason))
	r.received = append(r.received, dateTime(recv))
	r.receivedMS = append(r.receivedMS, recv)
	r.tsMS = append(r.tsMS, rec.Timestamp.UnixMilli())
	r.sum = append(r.sum, hex.EncodeToString(sum[:]))
	r.size = append(r.size, uint32(min(len(rec.Value), 1<<32-1)))
	if r.bodyMax == 0 || len(rec.Value) <= r.bodyMax {
		r.body = append(r.body, string(rec.Value))
		r.stored = append(r.stored, 1)
	} else {
		r.body = append(r.body, "")
		r.stored = append(r.stored, 0)
	}
	ks, vs := make([]string, len(rec.Headers)), make([]string, len(rec.Headers))
	for i, h := range rec.Headers {
		ks[i], vs[i] = h.Key, string(h.Value)
	}
	r.hkeys = append(r.hkeys, ks)
	r.hvals = append(r.hvals, vs)
	return nil
}

func (r *rawRows) len() int          { return len(r.topic) }
func (r *rawRows) columns() []string { return r.names }

// values follows rawEventsColumns.
func (r *rawRows) values() []any {
	return []any{r.topic, r.partition, r.offset, r.key, r.source, r.format, r.eventID, r.batch, r.reason,
		r.received, r.receivedMS, r.tsMS, r.sum, r.size, r.body, r.stored, r.hkeys, r.hvals}
}

func (r *rawRows) reset() {
	*r = rawRows{bodyMax: r.bodyMax, names: r.names}
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
