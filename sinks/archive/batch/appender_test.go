package batch

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/archivetest"
)

// refAppend is the reference for the compiled appenders: the field read
// through reflect, as Encode did before the appenders read it at its offset.
func refAppend(f record.Field, b array.Builder, v reflect.Value) {
	fv := v.FieldByIndex(f.Index)
	switch f.Kind {
	case record.KindString:
		b.(*array.StringBuilder).Append(fv.String())
	case record.KindBool:
		b.(*array.BooleanBuilder).Append(fv.Bool())
	case record.KindInt32:
		b.(*array.Int32Builder).Append(int32(fv.Int()))
	case record.KindInt64:
		b.(*array.Int64Builder).Append(fv.Int())
	case record.KindUint32:
		b.(*array.Uint32Builder).Append(uint32(fv.Uint()))
	case record.KindFloat64:
		b.(*array.Float64Builder).Append(fv.Float())
	case record.KindNullFloat:
		if fv.IsNil() {
			b.AppendNull()
			return
		}
		b.(*array.Float64Builder).Append(fv.Elem().Float())
	case record.KindTime:
		if fv.Int() == 0 {
			b.AppendNull()
			return
		}
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(fv.Int()))
	case record.KindStrings:
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		vb := lb.ValueBuilder().(*array.StringBuilder)
		for i := range fv.Len() {
			vb.Append(fv.Index(i).String())
		}
	case record.KindStructList:
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		sb := lb.ValueBuilder().(*array.StructBuilder)
		for i := range fv.Len() {
			sb.Append(true)
			for j, ef := range f.Elem {
				refAppend(ef, sb.FieldBuilder(j), fv.Index(i))
			}
		}
	default:
		panic(fmt.Sprintf("kind %v", f.Kind))
	}
}

// fill sets every field of v, recursively, to a pseudo-random value: empty
// and non-empty strings and lists, nil and non-nil pointers, zero and
// non-zero numbers and times.
func fill(r *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i))
			}
		}
	case reflect.String:
		if r.IntN(4) > 0 {
			v.SetString(fmt.Sprintf("s%d-é-%x", r.IntN(1000), r.Uint64()))
		}
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int32, reflect.Int64:
		if r.IntN(4) > 0 {
			v.SetInt(r.Int64N(1<<31) - 1<<30)
		}
	case reflect.Uint32:
		v.SetUint(uint64(r.Uint32()))
	case reflect.Float64:
		v.SetFloat(r.NormFloat64() * 1e3)
	case reflect.Pointer:
		if r.IntN(3) > 0 {
			p := reflect.New(v.Type().Elem())
			fill(r, p.Elem())
			v.Set(p)
		}
	case reflect.Slice:
		n := r.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i))
		}
		v.Set(s)
	default:
		panic(fmt.Sprintf("fill: kind %s", v.Kind()))
	}
}

// TestAppendersMatchReflection builds every record column with the compiled
// appenders and with the reflect reference, for the archive's test records,
// the zero record (what a row that did not decode gets) and 500 records with
// every field set at random, and requires equal Arrow arrays.
func TestAppendersMatchReflection(t *testing.T) {
	Schema()
	if compiled.err != nil {
		t.Fatal(compiled.err)
	}
	var ds []*record.Decision
	for i := range 50 {
		d := archivetest.Decision(i)
		ds = append(ds, &d)
	}
	ds = append(ds, new(record.Decision))
	r := rand.New(rand.NewPCG(17, 39))
	for range 500 {
		d := new(record.Decision)
		fill(r, reflect.ValueOf(d).Elem())
		ds = append(ds, d)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fields := record.Fields()
	for j, f := range fields {
		typ := compiled.schema.Field(len(archiveFields) + j).Type
		got, want := array.NewBuilder(mem, typ), array.NewBuilder(mem, typ)
		for _, d := range ds {
			compiled.appenders[j](got, unsafe.Pointer(d))
			refAppend(f, want, reflect.ValueOf(d).Elem())
		}
		ga, wa := got.NewArray(), want.NewArray()
		if !array.Equal(ga, wa) {
			t.Errorf("column %s: compiled appender and reflection differ:\n got %v\nwant %v", f.Name, ga, wa)
		}
		ga.Release()
		wa.Release()
		got.Release()
		want.Release()
	}
}

// TestNewRowDecodesLikeV2: for records with every field set at random, in
// the canonical form enrich publishes, NewRow keeps the value and its
// Decision (read by record.DecodeCompact) equals what encoding/json/v2
// decodes from the same value.
func TestNewRowDecodesLikeV2(t *testing.T) {
	r := rand.New(rand.NewPCG(39, 17))
	n := 0
	for range 500 {
		var d record.Decision
		fill(r, reflect.ValueOf(&d).Elem())
		v, err := d.Canonical()
		if err != nil {
			continue
		}
		n++
		row := NewRow("auditline.decisions", 0, 1, time.UnixMilli(1), v)
		if row.Error != "" || &row.Canonical[0] != &v[0] {
			t.Fatalf("a canonical value was not kept as it is: %q", row.Error)
		}
		var want record.Decision
		if err := jsonv2.Unmarshal(v, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(row.Decision, &want) {
			t.Fatalf("NewRow's record differs from encoding/json/v2's for\n%s", v)
		}
	}
	if n < 400 {
		t.Fatalf("only %d of 500 random records encoded", n)
	}
}
