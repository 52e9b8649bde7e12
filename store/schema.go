package store

import (
	"fmt"
	"reflect"
	"strings"
	"time"
	"unsafe"

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
//
// The version is part of the sorting key, so ReplacingMergeTree collapses
// only copies of one version (a replay), never two versions of a record:
// every version stays readable (the dashboards' ?v=N, docs/sql.md's record
// history), and the latest one is chosen by the latest-version guard
// (decision_superseded) or the dashboards' join, not by merges. Before
// that, the first merge dropped a record's older versions (decision_records
// layout 2 rebuilds tables of layout 1; see rebuild.go).
const (
	decisionVersionCol = "version"
	decisionPartition  = "toYYYYMM(start_time)"
	decisionOrderBy    = "tenant, start_time, record_id, version"
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
	add(d unsafe.Pointer) // d points to the Decision
	values() any          // the slice clickhouse-go appends
	reset()
}

// decisionColumns derives the physical columns from record.Fields, in
// declaration order, followed by the Kafka position columns.
func decisionColumns() []column {
	dt := reflect.TypeFor[record.Decision]()
	var cols []column
	for _, f := range record.Fields() {
		if f.Kind == record.KindStructList {
			lt := fieldType(dt, f.Index)
			for _, e := range f.Elem {
				cols = append(cols, nestedColumns(f, e, offsetOf(dt, f.Index), lt, fieldType(lt.Elem(), e.Index), offsetOf(lt.Elem(), e.Index))...)
			}
			continue
		}
		cols = append(cols, plainColumns(f, fieldType(dt, f.Index), offsetOf(dt, f.Index))...)
	}
	return cols
}

// Columns are filled through field offsets computed once from the reflect
// type (unsafe.Add), not reflect.Value.FieldByIndex per row, so appending a
// Decision to its ~170 column buffers costs less than decoding its JSON
// (BenchmarkColumns reports decode + columns as a multiple of the decode
// alone: 1.4× on the 2-core development box). The offsets come from reflect,
// so they always match the type; TestRoundTrip reads every field back.

// fieldType is the type of the field at index path idx of struct t.
func fieldType(t reflect.Type, idx []int) reflect.Type { return t.FieldByIndex(idx).Type }

// offsetOf is the byte offset of the field at index path idx of struct t.
func offsetOf(t reflect.Type, idx []int) uintptr {
	var off uintptr
	for _, i := range idx {
		f := t.Field(i)
		off += f.Offset
		t = f.Type
	}
	return off
}

// accessor reads a field of kind k and Go type t at offset off of a struct
// as the column's Go value (see plainColumns for the mapping).
func accessor[T any](off uintptr) func(unsafe.Pointer) T {
	return func(p unsafe.Pointer) T { return *(*T)(unsafe.Add(p, off)) }
}

func plainColumns(f record.Field, t reflect.Type, off uintptr) []column {
	c := Column{Name: f.Name, Comment: f.JSON}
	one := func(typ string, fill func() colBuf) []column {
		c.Type = typ
		return []column{{Column: c, new: fill}}
	}
	switch f.Kind {
	case record.KindString:
		return one("String", func() colBuf { return &buf[string]{get: accessor[string](off)} })
	case record.KindBool:
		get := accessor[bool](off)
		return one("UInt8", func() colBuf { return &buf[uint8]{get: func(p unsafe.Pointer) uint8 { return b2u(get(p)) }} })
	case record.KindInt32:
		return one("Int32", func() colBuf { return &buf[int32]{get: accessor[int32](off)} })
	case record.KindInt64:
		if t.Kind() == reflect.Int {
			get := accessor[int](off)
			return one("Int64", func() colBuf { return &buf[int64]{get: func(p unsafe.Pointer) int64 { return int64(get(p)) }} })
		}
		return one("Int64", func() colBuf { return &buf[int64]{get: accessor[int64](off)} })
	case record.KindUint32:
		return one("UInt32", func() colBuf { return &buf[uint32]{get: accessor[uint32](off)} })
	case record.KindFloat64:
		return one("Float64", func() colBuf { return &buf[float64]{get: accessor[float64](off)} })
	case record.KindNullFloat:
		return one("Nullable(Float64)", func() colBuf { return &buf[*float64]{get: accessor[*float64](off)} })
	case record.KindTime:
		get := accessor[record.Time](off)
		c.Type = dateTimeUTC
		ms := Column{Name: f.Name + "_ms", Type: "Int64", Comment: f.JSON + " (Unix ms)"}
		return []column{
			{Column: c, new: func() colBuf {
				return &buf[time.Time]{get: func(p unsafe.Pointer) time.Time { return dateTime(int64(get(p))) }}
			}},
			{Column: ms, new: func() colBuf {
				return &buf[int64]{get: func(p unsafe.Pointer) int64 { return int64(get(p)) }}
			}},
		}
	case record.KindStrings:
		return one("Array(String)", func() colBuf { return &buf[[]string]{get: accessor[[]string](off)} })
	}
	panic(fmt.Sprintf("store: field %s has kind %s with no column type", f.JSON, f.Kind))
}

// nestedColumns are the Array columns of element field e of list: the list
// is at listOff in the Decision and has type listT; e has type t at offset
// off in an element.
func nestedColumns(list, e record.Field, listOff uintptr, listT, t reflect.Type, off uintptr) []column {
	c := Column{Name: list.Name + "." + e.Name, Comment: list.JSON + "[]." + e.JSON}
	if listT.Kind() != reflect.Slice {
		panic(fmt.Sprintf("store: field %s is a %s, not a slice", list.JSON, listT))
	}
	// The list's slice header read in place: reflect.NewAt per row and
	// column was a tenth of the store's per-decision CPU (bench/PROFILE.md,
	// issue 17 fifth pass).
	elems := func(d unsafe.Pointer) (unsafe.Pointer, int) {
		h := (*sliceHeader)(unsafe.Add(d, listOff))
		if h.len == 0 {
			return nil, 0
		}
		return h.data, h.len
	}
	size := listT.Elem().Size()
	mk := func(c Column, typ string, fill func() colBuf) column {
		c.Type = "Array(" + typ + ")"
		return column{Column: c, nested: list.Name, new: fill}
	}
	one := func(typ string, fill func() colBuf) []column { return []column{mk(c, typ, fill)} }
	switch e.Kind {
	case record.KindString:
		return one("String", func() colBuf { return &listBuf[string]{elems: elems, size: size, get: accessor[string](off)} })
	case record.KindBool:
		get := accessor[bool](off)
		return one("UInt8", func() colBuf {
			return &listBuf[uint8]{elems: elems, size: size, get: func(p unsafe.Pointer) uint8 { return b2u(get(p)) }}
		})
	case record.KindInt32:
		return one("Int32", func() colBuf { return &listBuf[int32]{elems: elems, size: size, get: accessor[int32](off)} })
	case record.KindInt64:
		if t.Kind() == reflect.Int {
			get := accessor[int](off)
			return one("Int64", func() colBuf {
				return &listBuf[int64]{elems: elems, size: size, get: func(p unsafe.Pointer) int64 { return int64(get(p)) }}
			})
		}
		return one("Int64", func() colBuf { return &listBuf[int64]{elems: elems, size: size, get: accessor[int64](off)} })
	case record.KindUint32:
		return one("UInt32", func() colBuf { return &listBuf[uint32]{elems: elems, size: size, get: accessor[uint32](off)} })
	case record.KindFloat64:
		return one("Float64", func() colBuf { return &listBuf[float64]{elems: elems, size: size, get: accessor[float64](off)} })
	case record.KindNullFloat:
		return one("Nullable(Float64)", func() colBuf {
			return &listBuf[*float64]{elems: elems, size: size, get: accessor[*float64](off)}
		})
	case record.KindTime:
		get := accessor[record.Time](off)
		ms := Column{Name: c.Name + "_ms", Comment: c.Comment + " (Unix ms)"}
		return []column{
			mk(c, dateTimeUTC, func() colBuf {
				return &listBuf[time.Time]{elems: elems, size: size, get: func(p unsafe.Pointer) time.Time { return dateTime(int64(get(p))) }}
			}),
			mk(ms, "Int64", func() colBuf {
				return &listBuf[int64]{elems: elems, size: size, get: func(p unsafe.Pointer) int64 { return int64(get(p)) }}
			}),
		}
	case record.KindStrings:
		return one("Array(String)", func() colBuf {
			return &listBuf[[]string]{elems: elems, size: size, get: accessor[[]string](off)}
		})
	}
	panic(fmt.Sprintf("store: field %s[].%s has kind %s with no column type", list.JSON, e.JSON, e.Kind))
}

// sliceHeader is the layout of a Go slice (the runtime's, as in
// unsafe.Slice): what a list field of the Decision holds at its offset.
type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

// buf is a plain column.
type buf[T any] struct {
	get func(d unsafe.Pointer) T
	v   []T
}

func (b *buf[T]) add(d unsafe.Pointer) { b.v = append(b.v, b.get(d)) }
func (b *buf[T]) values() any          { return b.v }
func (b *buf[T]) reset()               { clear(b.v); b.v = b.v[:0] }

// listBuf is one field of a list of structs: one array per row. The rows'
// arrays are cut from a shared slab instead of one allocation each (they
// were most of the store's allocations per decision: bench/PROFILE.md,
// issue 17 fifth pass); reset clears the slab in use, so that it holds no
// string of a batch already inserted.
type listBuf[T any] struct {
	elems func(d unsafe.Pointer) (first unsafe.Pointer, n int)
	size  uintptr // element size
	get   func(elem unsafe.Pointer) T
	v     [][]T
	slab  []T // free capacity after len is where the next rows' arrays go
}

// listSlab is the number of elements a slab is allocated for.
const listSlab = 1024

func (b *listBuf[T]) add(d unsafe.Pointer) {
	p, n := b.elems(d)
	if n == 0 {
		b.v = append(b.v, []T{}) // not nil, as before (no allocation)
		return
	}
	if cap(b.slab)-len(b.slab) < n {
		b.slab = make([]T, 0, max(listSlab, n))
	}
	at := len(b.slab)
	b.slab = b.slab[:at+n]
	out := b.slab[at : at+n : at+n]
	for i := range out {
		out[i] = b.get(unsafe.Add(p, uintptr(i)*b.size))
	}
	b.v = append(b.v, out)
}
func (b *listBuf[T]) values() any { return b.v }
func (b *listBuf[T]) reset() {
	clear(b.v)
	b.v = b.v[:0]
	clear(b.slab)
	b.slab = b.slab[:0]
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
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
