package topic

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReleaseDetaches: a released message keeps its record's key, headers
// and every other field but the value, shares no byte with the fetched
// record, and costs three allocations whatever its header count up to eight.
func TestReleaseDetaches(t *testing.T) {
	for _, nh := range []int{0, 1, 5, 8, 9, 20} {
		for _, key := range [][]byte{nil, {}, []byte("request-key")} {
			r := &kgo.Record{
				Key: key, Value: []byte(`{"a":1}`), Topic: "auditline.raw.litellm", Partition: 3, Offset: 77,
				Timestamp: time.UnixMilli(1763805600020), LeaderEpoch: 2, ProducerID: 9,
			}
			for i := range nh {
				var v []byte
				switch i % 3 {
				case 0:
					v = fmt.Appendf(nil, "value-%d", i)
				case 1:
					v = []byte{}
				}
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: fmt.Sprintf("header-%d", i), Value: v})
			}
			want := *r
			want.Value = nil
			want.Key = bytes.Clone(r.Key)
			want.Headers = nil
			for _, h := range r.Headers {
				want.Headers = append(want.Headers, kgo.RecordHeader{Key: h.Key, Value: bytes.Clone(h.Value)})
			}
			m := NewMessage(r)
			m.Release(10)
			if !reflect.DeepEqual(*m.Record, want) {
				t.Fatalf("%d headers, key %q: released\n%+v\nwant\n%+v", nh, key, *m.Record, want)
			}
			// Nothing shared: overwrite the fetched bytes, append to the copies.
			for i := range r.Key {
				r.Key[i] = 'X'
			}
			for _, h := range r.Headers {
				for i := range h.Value {
					h.Value[i] = 'X'
				}
			}
			got := m.Record
			_ = append(got.Key, "!!!!"...)
			for _, h := range got.Headers {
				_ = append(h.Value, "!!!!"...)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("%d headers, key %q: the released record changed with the fetched one or its neighbours:\n%+v\nwant\n%+v", nh, key, *got, want)
			}
			if nh <= 8 {
				r.Value = []byte("x")
				if n := testing.AllocsPerRun(20, func() { _ = detach(r) }); n > 3 {
					t.Fatalf("%d headers: %v allocations, want at most 3", nh, n)
				}
			}
		}
	}
}
