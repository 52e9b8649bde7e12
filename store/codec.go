package store

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/enrich/record"
)

// The decision codec: the one mapping between record.Decision and the
// columns of decision_records, both ways. Everything that writes the table
// (the store stage, dashboards/seed) appends through DecisionBatch, and
// everything that reads a whole row back (dashboards/query's record page)
// decodes with DecodeDecisionRow; the columns themselves come from
// record.Fields (schema.go), so a field added to Decision reaches the table,
// the writers and the readers with no mapping written by hand.

// DecisionColumns returns the physical columns of decision_records, in
// insert order: those derived from record.Fields, then the Kafka position
// columns (ColTopic, ColPartition, ColOffset).
func DecisionColumns() []Column {
	var out []Column
	for _, c := range decisionColumns() {
		out = append(out, c.Column)
	}
	return append(out, kafkaColumns()...)
}

// DecisionBatch accumulates decision_records rows column by column, ready
// for one columnar INSERT (clickhouse-go's columnar append is several times
// faster than row-wise Append). A Decision's fields are read through field
// offsets computed once from its type (schema.go), not by reflection per
// row. The zero value is not usable: call NewDecisionBatch.
type DecisionBatch struct {
	bufs  []colBuf
	names []string
	topic buf[string]
	part  buf[int32]
	off   buf[int64]
	n     int
}

// NewDecisionBatch returns an empty batch.
func NewDecisionBatch() *DecisionBatch {
	b := &DecisionBatch{}
	for _, c := range decisionColumns() {
		b.names = append(b.names, c.Name)
		b.bufs = append(b.bufs, c.new())
	}
	b.names = append(b.names, ColTopic, ColPartition, ColOffset)
	return b
}

// Append adds the row of d, read from topic/partition/offset of the
// decisions topic. d is not retained (its strings and lists are).
func (b *DecisionBatch) Append(d *record.Decision, topic string, partition int32, offset int64) {
	p := unsafe.Pointer(d)
	for _, c := range b.bufs {
		c.add(p)
	}
	b.topic.v = append(b.topic.v, topic)
	b.part.v = append(b.part.v, partition)
	b.off.v = append(b.off.v, offset)
	b.n++
}

// Len is the number of rows.
func (b *DecisionBatch) Len() int { return b.n }

// Columns is the explicit insert column list (18.16 needs one), in the order
// of Values.
func (b *DecisionBatch) Columns() []string { return b.names }

// Values holds one slice per column, in Columns order: what a columnar
// clickhouse-go batch appends.
func (b *DecisionBatch) Values() []any {
	out := make([]any, 0, len(b.bufs)+3)
	for _, c := range b.bufs {
		out = append(out, c.values())
	}
	return append(out, b.topic.v, b.part.v, b.off.v)
}

// Reset empties the batch, keeping its buffers.
func (b *DecisionBatch) Reset() {
	for _, c := range b.bufs {
		c.reset()
	}
	b.topic.reset()
	b.part.reset()
	b.off.reset()
	b.n = 0
}

// Insert sends the batch as one INSERT into db.table. token, when not empty,
// is sent as insert_deduplication_token (servers that support it).
func (b *DecisionBatch) Insert(ctx context.Context, conn driver.Conn, db, table, token string) error {
	return insert(ctx, conn, db, table, b.Columns(), b.Values(), token)
}

// DecodeDecisionRow fills d from one decision_records row given as column
// name → scanned value (as clickhouse-go scans it into the column's
// ScanType), walking record.Fields — the walk that named the columns. It
// accepts the types a schema may reasonably give each field kind (a Time as
// DateTime plus its "<name>_ms" column, or as Unix milliseconds; a bool as
// UInt8; NULL as the zero value) and returns the JSON paths of the fields
// it found no column for (a table migrated before they existed).
func DecodeDecisionRow(values map[string]any, d *record.Decision) (missing []string) {
	root := reflect.ValueOf(d).Elem()
	for _, f := range record.Fields() {
		if f.Kind == record.KindStructList {
			if !decodeList(values, f, root.FieldByIndex(f.Index)) {
				missing = append(missing, f.JSON)
			}
			continue
		}
		v, ok := values[f.Name]
		if !ok {
			missing = append(missing, f.JSON)
			continue
		}
		setRowField(root.FieldByIndex(f.Index), f.Kind, v, values[f.Name+"_ms"])
	}
	return missing
}

// decodeList rebuilds a list of structs from its Nested columns
// "<name>.<field>" (parallel arrays).
func decodeList(values map[string]any, f record.Field, dst reflect.Value) bool {
	n := -1
	for _, e := range f.Elem {
		if v, ok := values[f.Name+"."+e.Name]; ok {
			n = reflect.ValueOf(v).Len()
			break
		}
	}
	if n < 0 {
		return false
	}
	if n == 0 {
		return true // an empty list reads back as nil, as encoding/json would leave it
	}
	list := reflect.MakeSlice(dst.Type(), n, n)
	for _, e := range f.Elem {
		arr, ok := values[f.Name+"."+e.Name]
		if !ok {
			continue
		}
		av := reflect.ValueOf(arr)
		ms := reflect.ValueOf(values[f.Name+"."+e.Name+"_ms"])
		for i := 0; i < n && i < av.Len(); i++ {
			var extra any
			if ms.IsValid() && ms.Kind() == reflect.Slice && i < ms.Len() {
				extra = ms.Index(i).Interface()
			}
			setRowField(list.Index(i).FieldByIndex(e.Index), e.Kind, av.Index(i).Interface(), extra)
		}
	}
	dst.Set(list)
	return true
}

// setField converts v (a scanned value) into dst of kind k. ms is the
// optional companion millisecond column of a Time.
func setRowField(dst reflect.Value, k record.Kind, v any, ms any) {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return // NULL: leave the zero value (nil for *float64)
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return
	}
	switch k {
	case record.KindString:
		if rv.Kind() == reflect.String {
			dst.SetString(rv.String())
		} else {
			dst.SetString(fmt.Sprint(rv.Interface()))
		}
	case record.KindBool:
		switch {
		case rv.Kind() == reflect.Bool:
			dst.SetBool(rv.Bool())
		case rv.CanUint():
			dst.SetBool(rv.Uint() != 0)
		case rv.CanInt():
			dst.SetBool(rv.Int() != 0)
		}
	case record.KindInt32, record.KindInt64:
		switch {
		case rv.CanInt():
			dst.SetInt(rv.Int())
		case rv.CanUint():
			dst.SetInt(int64(rv.Uint()))
		case rv.CanFloat():
			dst.SetInt(int64(rv.Float()))
		}
	case record.KindUint32:
		switch {
		case rv.CanUint():
			dst.SetUint(rv.Uint())
		case rv.CanInt():
			dst.SetUint(uint64(max(rv.Int(), 0)))
		}
	case record.KindFloat64:
		if f, ok := toFloat(rv); ok {
			dst.SetFloat(f)
		}
	case record.KindNullFloat:
		if f, ok := toFloat(rv); ok && !math.IsNaN(f) {
			dst.Set(reflect.ValueOf(&f))
		}
	case record.KindTime:
		dst.SetInt(int64(toTime(rv, ms)))
	case record.KindStrings:
		if s, ok := rv.Interface().([]string); ok {
			dst.Set(reflect.ValueOf(append([]string(nil), s...)))
		}
	}
}

func toFloat(rv reflect.Value) (float64, bool) {
	switch {
	case !rv.IsValid():
		return 0, false
	case rv.CanFloat():
		return rv.Float(), true
	case rv.CanInt():
		return float64(rv.Int()), true
	case rv.CanUint():
		return float64(rv.Uint()), true
	}
	return 0, false
}

// toTime reads a Time stored as DateTime (+ an optional ms column: 0–999, or
// the full instant in Unix milliseconds) or as a number of Unix
// milliseconds.
func toTime(rv reflect.Value, ms any) record.Time {
	switch t := rv.Interface().(type) {
	case time.Time:
		if t.Unix() <= 0 {
			return 0
		}
		out := t.Unix() * 1000
		if m, ok := toFloat(reflect.ValueOf(ms)); ok && m >= 0 && m < 1000 {
			out += int64(m)
		} else if ok && m > 1e11 {
			return record.Time(int64(m)) // the ms column holds the full instant
		} else if t.Nanosecond() != 0 {
			out += int64(t.Nanosecond() / int(time.Millisecond))
		}
		return record.Time(out)
	case string:
		if p, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(t)); err == nil {
			return record.TimeOf(p)
		}
		return 0
	}
	if f, ok := toFloat(rv); ok && f > 0 {
		return record.Time(int64(f))
	}
	return 0
}
