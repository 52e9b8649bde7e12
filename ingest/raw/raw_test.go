package raw

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReceivedAt: the header's epoch milliseconds when the first
// received-at header parses, the record timestamp otherwise, as
// strconv.ParseInt(Header(…)) decided before ReceivedAt stopped copying the
// value; and no allocation for a header that parses.
func TestReceivedAt(t *testing.T) {
	ts := time.Date(2025, 11, 22, 10, 0, 0, 0, time.FixedZone("x", 3600))
	h := func(v string) kgo.RecordHeader { return kgo.RecordHeader{Key: HeaderReceivedAt, Value: []byte(v)} }
	other := kgo.RecordHeader{Key: HeaderSource, Value: []byte("litellm")}
	for _, hs := range [][]kgo.RecordHeader{
		nil, {other}, {h("1763805600020")}, {other, h("1763805600020")}, {h("")}, {h("x")}, {h("-5")},
		{h("1763805600020"), h("5")}, {h("bad"), h("5")}, {h("99999999999999999999")}, {h(" 1")}, {h("+7")},
	} {
		r := &kgo.Record{Headers: hs, Timestamp: ts}
		want, parses := r.Timestamp.UTC(), false
		if ms, err := strconv.ParseInt(Header(r, HeaderReceivedAt), 10, 64); err == nil {
			want, parses = time.UnixMilli(ms).UTC(), true
		}
		if got := ReceivedAt(r); !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("headers %v: %v, want %v", hs, got, want)
		}
		if n := testing.AllocsPerRun(10, func() { ReceivedAt(r) }); parses && n != 0 {
			t.Fatalf("headers %v: %v allocations", hs, n)
		}
	}
}
