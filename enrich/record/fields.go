package record

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Kind is the storage kind of a field, independent of any database.
type Kind int

const (
	KindString     Kind = iota + 1
	KindBool            // ClickHouse UInt8, Parquet boolean
	KindInt32           //
	KindInt64           //
	KindUint32          //
	KindFloat64         //
	KindNullFloat       // *float64: nil is unknown
	KindTime            // Time: Unix milliseconds, 0 is unset
	KindStrings         // []string
	KindStructList      // []struct: Elem describes the element's fields
)

func (k Kind) String() string {
	return [...]string{"?", "string", "bool", "int32", "int64", "uint32", "float64", "nullable float64", "time", "[]string", "[]struct"}[k]
}

// Field is one column of the flattened Decision.
type Field struct {
	Name  string  // column name, unique among its siblings
	JSON  string  // dotted JSON path from the enclosing struct, e.g. "budget.key.spend"
	Kind  Kind    //
	Index []int   // reflect field index path from the enclosing struct
	Elem  []Field // for KindStructList: the element's fields (Index relative to the element)
}

var (
	fieldsOnce sync.Once
	fields     []Field
)

// Fields returns the flattened columns of Decision in declaration order. The
// result is shared: do not modify it.
func Fields() []Field {
	fieldsOnce.Do(func() { fields = walk(reflect.TypeFor[Decision](), nil, "", "") })
	return fields
}

var (
	timeType    = reflect.TypeFor[Time]()
	nullFloat   = reflect.TypeFor[*float64]()
	stringSlice = reflect.TypeFor[[]string]()
)

func walk(t reflect.Type, index []int, prefix, jsonPrefix string) []Field {
	var out []Field
	for i := range t.NumField() {
		sf := t.Field(i)
		jsonName, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if jsonName == "" || jsonName == "-" {
			continue
		}
		col := sf.Tag.Get("col")
		idx := append(append([]int(nil), index...), i)
		jpath := jsonPrefix + jsonName
		ft := sf.Type
		switch {
		case ft == timeType:
			out = append(out, Field{Name: name(prefix, jsonName, col), JSON: jpath, Kind: KindTime, Index: idx})
		case ft == nullFloat:
			out = append(out, Field{Name: name(prefix, jsonName, col), JSON: jpath, Kind: KindNullFloat, Index: idx})
		case ft == stringSlice:
			out = append(out, Field{Name: name(prefix, jsonName, col), JSON: jpath, Kind: KindStrings, Index: idx})
		case ft.Kind() == reflect.Struct:
			p := prefix + jsonName + "_"
			if col == "inline" {
				p = prefix
			}
			out = append(out, walk(ft, idx, p, jpath+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, Field{Name: name(prefix, jsonName, col), JSON: jpath, Kind: KindStructList, Index: idx,
				Elem: walk(ft.Elem(), nil, "", "")})
		default:
			k, ok := map[reflect.Kind]Kind{
				reflect.String: KindString, reflect.Bool: KindBool, reflect.Int32: KindInt32,
				reflect.Int64: KindInt64, reflect.Int: KindInt64, reflect.Uint32: KindUint32, reflect.Float64: KindFloat64,
			}[ft.Kind()]
			if !ok {
				panic(fmt.Sprintf("record: field %s has unsupported type %s", jpath, ft))
			}
			out = append(out, Field{Name: name(prefix, jsonName, col), JSON: jpath, Kind: k, Index: idx})
		}
	}
	return out
}

func name(prefix, jsonName, col string) string {
	if col != "" && col != "inline" {
		return col
	}
	return prefix + jsonName
}
