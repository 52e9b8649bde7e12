package store

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/auditline/auditline/enrich/record"
)

// Column is one physical column of decision_records as ClickHouse lists it in
// system.columns: a field of a list of structs appears as "list.field" of an
// Array type (ClickHouse's Nested), and a time appears twice, as "name"
// (DateTime, whole seconds, for partitioning, ordering and date functions) and
// "name_ms" (Int64 Unix milliseconds, the exact value).
type Column struct {
	Name    string // e.g. "start_time", "start_time_ms", "attempts.event_id"
	Type    string // e.g. "DateTime('UTC')", "Array(Nullable(Float64))"
	Comment string // the JSON path of the field in the record
}

// Kafka position columns: where each decision row came from. The review loop
// and the dashboards read a record back from Kafka by them, and the store's
// replay protection (store_progress) is computed from them.
const (
	ColTopic     = "kafka_topic"
	ColPartition = "kafka_partition"
	ColOffset    = "kafka_offset"
)

// Sorting and partitioning of decision_records. The columns must exist in
// record.Fields; TestSchemaKeys checks that they do.
const (
	decisionVersionCol = "version"
	decisionPartition  = "toYYYYMM(start_time)"
	decisionOrderBy    = "tenant, start_time, record_id"
)

const dateTimeUTC = "DateTime('UTC')"

// column is a Column plus how to fill it from a Decision.
type column struct {
	Column
	nested string // the Nested group ("attempts") or "" for a plain column
	new    func() colBuf
}

// colBuf accumulates one column's values for a batch.
type colBuf interface {
	add(d reflect.Value) // d is the Decision (not a pointer)
	values() any         // the slice clickhouse-go appends
	reset()
}

// decisionColumns derives the physical columns from record.Fields, in
// declaration order, followed by the Kafka position columns.
func decisionColumns() []column {
	var cols []column
	for _, f := range record.Fields() {
		if f.Kind == record.KindStructList {
			for _, e := range f.Elem {
				cols = append(cols, nestedColumns(f, e)...)
			}
			continue
		}
		cols = append(cols, plainColumns(f)...)
	}
	return cols
}

func plainColumns(f record.Field) []column {
	idx := f.Index
	c := Column{Name: f.Name, Comment: f.JSON}
	switch f.Kind {
	case record.KindString:
		c.Type = "String"
		return []column{{Column: c, new: func() colBuf {
			return &buf[string]{get: func(d reflect.Value) string { return d.FieldByIndex(idx).String() }}
		}}}
	case record.KindBool:
		c.Type = "UInt8"
		return []column{{Column: c, new: func() colBuf {
			return &buf[uint8]{get: func(d reflect.Value) uint8 { return b2u(d.FieldByIndex(idx).Bool()) }}
		}}}
	case record.KindInt32:
		c.Type = "Int32"
		return []column{{Column: c, new: func() colBuf {
			return &buf[int32]{get: func(d reflect.Value) int32 { return int32(d.FieldByIndex(idx).Int()) }}
		}}}
	case record.KindInt64:
		c.Type = "Int64"
		return []column{{Column: c, new: func() colBuf {
			return &buf[int64]{get: func(d reflect.Value) int64 { return d.FieldByIndex(idx).Int() }}
		}}}
	case record.KindUint32:
		c.Type = "UInt32"
		return []column{{Column: c, new: func() colBuf {
			return &buf[uint32]{get: func(d reflect.Value) uint32 { return uint32(d.FieldByIndex(idx).Uint()) }}
		}}}
	case record.KindFloat64:
		c.Type = "Float64"
		return []column{{Column: c, new: func() colBuf {
			return &buf[float64]{get: func(d reflect.Value) float64 { return d.FieldByIndex(idx).Float() }}
		}}}
	case record.KindNullFloat:
		c.Type = "Nullable(Float64)"
		return []column{{Column: c, new: func() colBuf {
			return &buf[*float64]{get: func(d reflect.Value) *float64 { return nullFloat(d.FieldByIndex(idx)) }}
		}}}
	case record.KindTime:
		c.Type = dateTimeUTC
		ms := Column{Name: f.Name + "_ms", Type: "Int64", Comment: f.JSON + " (Unix ms)"}
		return []column{
			{Column: c, new: func() colBuf {
				return &buf[time.Time]{get: func(d reflect.Value) time.Time { return dateTime(d.FieldByIndex(idx).Int()) }}
			}},
			{Column: ms, new: func() colBuf {
				return &buf[int64]{get: func(d reflect.Value) int64 { return d.FieldByIndex(idx).Int() }}
			}},
		}
	case record.KindStrings:
		c.Type = "Array(String)"
		return []column{{Column: c, new: func() colBuf {
			return &buf[[]string]{get: func(d reflect.Value) []string { return strs(d.FieldByIndex(idx)) }}
		}}}
	}
	panic(fmt.Sprintf("store: field %s has kind %s with no column type", f.JSON, f.Kind))
}

// nestedColumns are the Array columns of one element field of a list.
func nestedColumns(list, e record.Field) []column {
	lidx, eidx := list.Index, e.Index
	c := Column{Name: list.Name + "." + e.Name, Comment: list.JSON + "[]." + e.JSON}
	mk := func(c Column, typ string, fill func() colBuf) column {
		c.Type = "Array(" + typ + ")"
		return column{Column: c, nested: list.Name, new: fill}
	}
	switch e.Kind {
	case record.KindString:
		return []column{mk(c, "String", func() colBuf {
			return &listBuf[string]{list: lidx, get: func(v reflect.Value) string { return v.FieldByIndex(eidx).String() }}
		})}
	case record.KindBool:
		return []column{mk(c, "UInt8", func() colBuf {
			return &listBuf[uint8]{list: lidx, get: func(v reflect.Value) uint8 { return b2u(v.FieldByIndex(eidx).Bool()) }}
		})}
	case record.KindInt32:
		return []column{mk(c, "Int32", func() colBuf {
			return &listBuf[int32]{list: lidx, get: func(v reflect.Value) int32 { return int32(v.FieldByIndex(eidx).Int()) }}
		})}
	case record.KindInt64:
		return []column{mk(c, "Int64", func() colBuf {
			return &listBuf[int64]{list: lidx, get: func(v reflect.Value) int64 { return v.FieldByIndex(eidx).Int() }}
		})}
	case record.KindUint32:
		return []column{mk(c, "UInt32", func() colBuf {
			return &listBuf[uint32]{list: lidx, get: func(v reflect.Value) uint32 { return uint32(v.FieldByIndex(eidx).Uint()) }}
		})}
	case record.KindFloat64:
		return []column{mk(c, "Float64", func() colBuf {
			return &listBuf[float64]{list: lidx, get: func(v reflect.Value) float64 { return v.FieldByIndex(eidx).Float() }}
		})}
	case record.KindNullFloat:
		return []column{mk(c, "Nullable(Float64)", func() colBuf {
			return &listBuf[*float64]{list: lidx, get: func(v reflect.Value) *float64 { return nullFloat(v.FieldByIndex(eidx)) }}
		})}
	case record.KindTime:
		ms := Column{Name: c.Name + "_ms", Comment: c.Comment + " (Unix ms)"}
		return []column{
			mk(c, dateTimeUTC, func() colBuf {
				return &listBuf[time.Time]{list: lidx, get: func(v reflect.Value) time.Time { return dateTime(v.FieldByIndex(eidx).Int()) }}
			}),
			mk(ms, "Int64", func() colBuf {
				return &listBuf[int64]{list: lidx, get: func(v reflect.Value) int64 { return v.FieldByIndex(eidx).Int() }}
			}),
		}
	case record.KindStrings:
		return []column{mk(c, "Array(String)", func() colBuf {
			return &listBuf[[]string]{list: lidx, get: func(v reflect.Value) []string { return strs(v.FieldByIndex(eidx)) }}
		})}
	}
	panic(fmt.Sprintf("store: field %s[].%s has kind %s with no column type", list.JSON, e.JSON, e.Kind))
}

// buf is a plain column.
type buf[T any] struct {
	get func(d reflect.Value) T
	v   []T
}

func (b *buf[T]) add(d reflect.Value) { b.v = append(b.v, b.get(d)) }
func (b *buf[T]) values() any         { return b.v }
func (b *buf[T]) reset()              { clear(b.v); b.v = b.v[:0] }

// listBuf is one field of a list of structs: one array per row.
type listBuf[T any] struct {
	list []int
	get  func(elem reflect.Value) T
	v    [][]T
}

func (b *listBuf[T]) add(d reflect.Value) {
	l := d.FieldByIndex(b.list)
	out := make([]T, l.Len())
	for i := range out {
		out[i] = b.get(l.Index(i))
	}
	b.v = append(b.v, out)
}
func (b *listBuf[T]) values() any { return b.v }
func (b *listBuf[T]) reset()      { clear(b.v); b.v = b.v[:0] }

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func nullFloat(v reflect.Value) *float64 {
	if v.IsNil() {
		return nil
	}
	f := v.Elem().Float()
	return &f
}

func strs(v reflect.Value) []string {
	s, _ := v.Interface().([]string)
	return s
}

// maxDateTime is the last second a ClickHouse DateTime (UInt32) can hold.
const maxDateTime = 1<<32 - 1

// dateTime converts Unix milliseconds to the DateTime column's value, clamped
// to what DateTime can hold (1970 to 2106); the _ms column keeps the exact
// value, so nothing is lost.
func dateTime(ms int64) time.Time {
	s := ms / 1000
	if ms < 0 {
		s = 0
	}
	if s > maxDateTime {
		s = maxDateTime
	}
	return time.Unix(s, 0).UTC()
}

// quote quotes an identifier with backticks.
func quote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "\\`") + "`"
}

// sqlString quotes a string literal.
func sqlString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}
