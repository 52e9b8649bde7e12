package query

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/auditline/auditline/enrich/record"
)

// Candidate names of the columns holding a row's position in the decisions
// topic, first match wins.
var (
	partitionCols = []string{"kafka_partition", "decision_partition", "decisions_partition", "partition", "_partition"}
	offsetCols    = []string{"kafka_offset", "decision_offset", "decisions_offset", "offset", "_offset"}
)

func pick(cols map[string]string, names []string) string {
	for _, n := range names {
		if _, ok := cols[n]; ok {
			return n
		}
	}
	return ""
}

// Record returns one version of a record (the latest when version is 0) with
// its version history. A record is visible when its latest version belongs
// to one of f's tenants (only f's tenant scoping applies): a record of
// another tenant — including one a later version moved away — is
// ErrNotFound, exactly like a record that does not exist.
//
// The lookup goes through decision_versions (sorted by record_id) to the
// sort keys of the record's rows, so it reads a granule per version instead
// of the record_id column of the whole table; without that table it falls
// back to PREWHERE record_id.
func (c *ClickHouse) Record(ctx context.Context, f Filter, id string, version uint32) (Detail, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if _, err := f.scope(); err != nil { // refuses a filter without tenants
		return Detail{}, err
	}
	cols, err := c.columns(ctx)
	if err != nil {
		return Detail{}, err
	}
	hasVersions, err := c.hasTable(ctx, versionsTable)
	if err != nil {
		return Detail{}, err
	}
	locate := "PREWHERE record_id = ?"
	args := []any{id}
	if hasVersions {
		locate = "WHERE (tenant, start_time, record_id) IN (SELECT tenant, start_time, record_id FROM `" + c.db + "`.`" + versionsTable + "` WHERE record_id = ?) AND record_id = ?"
		args = []any{id, id}
	}
	pcol, ocol := pick(cols, partitionCols), pick(cols, offsetCols)
	pos := "toInt32(-1), toInt64(-1)"
	if pcol != "" && ocol != "" {
		pos = "toInt32(`" + pcol + "`), toInt64(`" + ocol + "`)"
	}
	ovs := "toUInt64(0)"
	if _, ok := cols["oversight.event_id"]; ok {
		ovs = "toUInt64(length(`oversight.event_id`))"
	}
	// No FINAL and no tenant filter: the history wants every version, and
	// visibility is decided on the latest one below. Duplicates of one
	// version (before a merge) are dropped.
	q := "SELECT version, tenant, completeness, review_status, " + ovs + ", " + pos + " FROM " + c.table + " " + locate + " ORDER BY version DESC LIMIT 1000"
	rows, err := c.conn.Query(ctx, q, args...)
	if err != nil {
		return Detail{}, fmt.Errorf("record versions: %w", err)
	}
	var d Detail
	var tenants []string
	for rows.Next() {
		var v Version
		var tenant string
		var n uint64
		if err := rows.Scan(&v.Version, &tenant, &v.Completeness, &v.ReviewStatus, &n, &v.Partition, &v.Offset); err != nil {
			rows.Close()
			return Detail{}, fmt.Errorf("record versions: %w", err)
		}
		v.Oversight = int(n)
		if len(d.Versions) > 0 && d.Versions[len(d.Versions)-1].Version == v.Version {
			continue
		}
		d.Versions = append(d.Versions, v)
		tenants = append(tenants, tenant)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Detail{}, fmt.Errorf("record versions: %w", err)
	}
	if len(d.Versions) == 0 || !f.sees(tenants[0]) {
		return Detail{}, ErrNotFound
	}
	if version == 0 {
		version = d.Versions[0].Version
	}
	found := false
	for _, v := range d.Versions {
		if v.Version == version {
			d.Partition, d.Offset, found = v.Partition, v.Offset, true
		}
	}
	if !found {
		return Detail{}, ErrNotFound
	}
	rows, err = c.conn.Query(ctx, "SELECT * FROM "+c.table+" "+locate+" AND version = ? LIMIT 1", append(args, version)...)
	if err != nil {
		return Detail{}, fmt.Errorf("record: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Detail{}, fmt.Errorf("record: %w", err)
		}
		return Detail{}, ErrNotFound
	}
	types := rows.ColumnTypes()
	ptrs := make([]any, len(types))
	for i, t := range types {
		ptrs[i] = reflect.New(t.ScanType()).Interface()
	}
	if err := rows.Scan(ptrs...); err != nil {
		return Detail{}, fmt.Errorf("record: %w", err)
	}
	values := make(map[string]any, len(types))
	for i, t := range types {
		values[t.Name()] = reflect.ValueOf(ptrs[i]).Elem().Interface()
	}
	d.Missing = Decode(values, &d.Decision)
	return d, nil
}

// Decode fills dec from one table row given as column name → scanned value,
// walking record.Fields (the same walk that named the columns). It accepts the
// types a schema may reasonably choose for each field kind — a Time as
// DateTime (plus an optional "<name>_ms" column of milliseconds) or as Unix
// milliseconds, a bool as UInt8 — and returns the JSON paths of fields it
// found no column for.
func Decode(values map[string]any, dec *record.Decision) (missing []string) {
	root := reflect.ValueOf(dec).Elem()
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
		set(root.FieldByIndex(f.Index), f.Kind, v, values[f.Name+"_ms"])
	}
	return missing
}

// decodeList rebuilds a list of structs from Nested columns "<name>.<field>"
// (parallel arrays).
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
			set(list.Index(i).FieldByIndex(e.Index), e.Kind, av.Index(i).Interface(), extra)
		}
	}
	dst.Set(list)
	return true
}

// set converts v (a scanned ClickHouse value) into dst of kind k. ms is the
// optional companion millisecond column of a Time.
func set(dst reflect.Value, k record.Kind, v any, ms any) {
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
	case rv.CanFloat():
		return rv.Float(), true
	case rv.CanInt():
		return float64(rv.Int()), true
	case rv.CanUint():
		return float64(rv.Uint()), true
	}
	return 0, false
}

// toTime reads a Time stored as DateTime (+ optional ms column 0–999) or as a
// number of Unix milliseconds.
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
