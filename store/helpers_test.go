package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// baseTime is 2025-11-22T10:30:45.118Z.
const baseTime = record.Time(1763807445118)

// fullDecision returns a Decision with every field set to a non-zero value
// derived from i (found by reflection, so that fields added to Decision are
// covered without touching this test), for request key "req-<i>".
func fullDecision(i int, tenant string) record.Decision {
	var d record.Decision
	seed := i * 1000
	fill(reflect.ValueOf(&d).Elem(), "", &seed)
	key := fmt.Sprintf("req-%d", i)
	d.SchemaVersion = record.SchemaVersion
	d.Request.RequestKey = key
	d.RecordID = record.ID(key)
	d.Version = 1
	d.Identity.Tenant = tenant
	d.Request.StartTime = baseTime + record.Time(i)*1000
	return d
}

var (
	timeType   = reflect.TypeFor[record.Time]()
	nullFloatT = reflect.TypeFor[*float64]()
)

func fill(v reflect.Value, path string, seed *int) {
	*seed++
	n := *seed
	switch {
	case v.Type() == timeType:
		v.SetInt(int64(baseTime) + int64(n)*1001)
	case v.Type() == nullFloatT:
		f := float64(n) + 0.25
		v.Set(reflect.ValueOf(&f))
	case v.Kind() == reflect.String:
		v.SetString(fmt.Sprintf("%s-%d-ü'\"\\", path, n)) // quotes, backslash and non-ASCII survive
	case v.Kind() == reflect.Bool:
		v.SetBool(true)
	case v.CanInt():
		v.SetInt(int64(n))
	case v.CanUint():
		v.SetUint(uint64(n))
	case v.CanFloat():
		v.SetFloat(float64(n) + 0.5)
	case v.Kind() == reflect.Struct:
		for j := range v.NumField() {
			fill(v.Field(j), path+"."+v.Type().Field(j).Name, seed)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.ValueOf([]string{fmt.Sprintf("%s-a%d", path, n), fmt.Sprintf("%s-b%d", path, n)}))
	case v.Kind() == reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for j := range 2 {
			fill(s.Index(j), path, seed)
		}
		v.Set(s)
	default:
		panic("fill: unhandled " + v.Type().String())
	}
}

// readDecisions reads rows of query (which must select every decision
// column, e.g. "SELECT * FROM …") back into Decisions, keyed by
// "<record_id>/<version>", by walking decisionColumns: the inverse of
// decisionRows.
func readDecisions(t testing.TB, conn driver.Conn, query string, args ...any) map[string]record.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names := rows.Columns()
	types := rows.ColumnTypes()
	out := map[string]record.Decision{}
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		vals := map[string]reflect.Value{}
		for i, n := range names {
			vals[n] = reflect.ValueOf(ptrs[i]).Elem()
		}
		var d record.Decision
		dv := reflect.ValueOf(&d).Elem()
		for _, f := range record.Fields() {
			if f.Kind != record.KindStructList {
				setField(t, dv.FieldByIndex(f.Index), f.Kind, vals[f.Name], vals[f.Name+"_ms"])
				continue
			}
			n := vals[f.Name+"."+f.Elem[0].Name].Len()
			list := reflect.MakeSlice(dv.FieldByIndex(f.Index).Type(), n, n)
			for _, e := range f.Elem {
				arr, ms := vals[f.Name+"."+e.Name], vals[f.Name+"."+e.Name+"_ms"]
				for j := range n {
					var msj reflect.Value
					if ms.IsValid() {
						msj = ms.Index(j)
					}
					setField(t, list.Index(j).FieldByIndex(e.Index), e.Kind, arr.Index(j), msj)
				}
			}
			dv.FieldByIndex(f.Index).Set(list)
		}
		out[fmt.Sprintf("%s/%d", d.RecordID, d.Version)] = d
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func setField(t testing.TB, dst reflect.Value, k record.Kind, v, ms reflect.Value) {
	t.Helper()
	if !v.IsValid() {
		t.Fatalf("no column for a field of kind %s", k)
	}
	switch k {
	case record.KindString:
		dst.SetString(v.String())
	case record.KindBool:
		dst.SetBool(v.Uint() == 1)
	case record.KindInt32, record.KindInt64:
		dst.SetInt(v.Int())
	case record.KindUint32:
		dst.SetUint(v.Uint())
	case record.KindFloat64:
		dst.SetFloat(v.Float())
	case record.KindNullFloat:
		if !v.IsNil() {
			f := v.Elem().Float()
			dst.Set(reflect.ValueOf(&f))
		}
	case record.KindTime:
		secs := v.Interface().(time.Time).Unix()
		if ms.Int()/1000 != secs && secs != 0 && secs != maxDateTime {
			t.Errorf("DateTime column %d s disagrees with its _ms column %d", secs, ms.Int())
		}
		dst.SetInt(ms.Int())
	case record.KindStrings:
		dst.Set(reflect.ValueOf(append([]string{}, v.Interface().([]string)...)))
	}
}

// diffDecisions reports every JSON path where got differs from want.
func diffDecisions(t testing.TB, want, got record.Decision) {
	t.Helper()
	var w, g map[string]any
	for _, x := range []struct {
		d   record.Decision
		out *map[string]any
	}{{want, &w}, {got, &g}} {
		b, err := json.Marshal(x.d)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, x.out); err != nil {
			t.Fatal(err)
		}
	}
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		am, aok := a.(map[string]any)
		bm, bok := b.(map[string]any)
		if aok && bok {
			for k := range am {
				walk(path+"."+k, am[k], bm[k])
			}
			for k := range bm {
				if _, ok := am[k]; !ok {
					t.Errorf("%s.%s: unexpected %v", path, k, bm[k])
				}
			}
			return
		}
		al, aok := a.([]any)
		bl, bok := b.([]any)
		if aok && bok && len(al) == len(bl) {
			for i := range al {
				walk(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i])
			}
			return
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: stored %#v, want %#v", path, b, a)
		}
	}
	walk(want.RecordID, w, g)
}

// kafkaConfig is the shared broker with short intervals.
func kafkaConfig(t testing.TB) topic.Config {
	c := topic.NewDefaultConfig()
	c.Brokers = testenv.Kafka(t)
	c.Partitions = 2
	c.CommitInterval = 100 * time.Millisecond
	return c
}

// produce writes recs and fails the test unless all are acknowledged.
func produce(t testing.TB, kc topic.Config, recs []*kgo.Record) {
	t.Helper()
	w, err := topic.NewWriter(kc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for len(recs) > 0 {
		n := min(len(recs), 5000)
		if err := w.Produce(ctx, recs[:n]...); err != nil {
			t.Fatal(err)
		}
		recs = recs[n:]
	}
}

// decisionRecord is the Kafka record enrich would produce for d.
func decisionRecord(t testing.TB, topics raw.Topics, d record.Decision) *kgo.Record {
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topics.Decisions(), Key: []byte(d.Request.RequestKey), Value: b}
}

// testStoreConfig is a store config for db on addr with short timings.
func testStoreConfig(addr, db, group string) Config {
	c := NewDefaultConfig()
	c.ClickHouse.Addr = []string{addr}
	c.ClickHouse.Database = db
	c.Group = group
	c.BatchRows = 1000
	c.Linger = 100 * time.Millisecond
	c.RetryMin = 100 * time.Millisecond
	c.RetryMax = time.Second
	c.InsertTimeout = 10 * time.Second
	return c
}

// running is a Store running in the background.
type running struct {
	reg  *prometheus.Registry
	stop func() error
}

func startStore(t testing.TB, cfg Config, kc topic.Config, topics raw.Topics) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := New(cfg, topic.Shared{Kafka: kc, Topics: topics}, Settings{Logger: log, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	var runErr error
	done := make(chan struct{})
	go func() { defer close(done); runErr = s.Run(ctx) }()
	r := &running{reg: reg, stop: func() error {
		once.Do(func() { cancel(); <-done })
		return runErr
	}}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// counter sums a counter family's samples whose table label is table.
func (r *running) counter(name, table string) float64 {
	mfs, _ := r.reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == table {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// count runs a count query.
func count(t testing.TB, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitCount polls q until it returns want.
func waitCount(t testing.TB, conn driver.Conn, within time.Duration, want uint64, q string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := conn.QueryRow(ctx, q, args...).Scan(&got)
		cancel()
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d (err %v) after %s, want %d", q, got, err, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func itoa(i int) string { return fmt.Sprint(i) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
