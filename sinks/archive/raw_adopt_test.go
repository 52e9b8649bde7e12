package archive

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/privacy/envelope"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/merkletree"
)

// TestRawAdoption: a raw batch object uploaded before a crash holds other
// ciphertexts of the same events than the batch rebuilt after it (sealing is
// randomised). It is adopted — the rebuilt sealing takes the stored rows,
// leaves and root — when it seals the same bytes at the same offsets, and
// refused otherwise.
func TestRawAdoption(t *testing.T) {
	ctx := context.Background()
	ks, err := envelope.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const topicName, part = "x.raw.litellm", int32(3)
	ts := time.UnixMilli(1763807445118)
	values := make([][]byte, 5)
	for i := range values {
		values[i] = fmt.Appendf(nil, `{"id":%d,"metadata":{"user_api_key_team_id":"t%d"}}`, i, i%2)
	}
	rows := func(vals [][]byte) []batch.Row {
		s := envelope.NewSealer(ks) // a new process: new data keys
		out := make([]batch.Row, len(vals))
		for i, v := range vals {
			sealed, err := s.Seal(ctx, envelope.Subject(envelope.ByTeam, v), v, map[string]string{"auditline-source": "litellm"})
			if err != nil {
				t.Fatal(err)
			}
			out[i] = batch.NewRawRow(topicName, part, int64(10+i), ts, sealed)
		}
		return out
	}
	stored := rows(values)
	root, err := merkletree.Root(batch.Leaves(stored))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := batch.Encode(&buf, stored, batch.Meta{Topic: topicName, Partition: part, From: 10, To: 15, Root: root}, batch.Options{}); err != nil {
		t.Fatal(err)
	}

	rebuilt := rows(values)
	if bytes.Equal(rebuilt[0].Canonical, stored[0].Canonical) {
		t.Fatal("sealing is not randomised: this test proves nothing")
	}
	s := &sealing{topic: topicName, partition: part, from: 10, to: 15, rows: rebuilt}
	if err := sameRawRecords(ctx, buf.Bytes(), s); err != nil {
		t.Fatalf("same events, other ciphertexts: %v", err)
	}
	if !bytes.Equal(s.root, root) || !bytes.Equal(s.rows[2].Canonical, stored[2].Canonical) || s.rows[2].Leaf != stored[2].Leaf || s.objSize != int64(buf.Len()) {
		t.Fatal("the adopted sealing does not carry the stored object's rows and root")
	}

	other := append([][]byte(nil), values...)
	other[4] = []byte(`{"id":"something else"}`)
	s = &sealing{topic: topicName, partition: part, from: 10, to: 15, rows: rows(other)}
	if err := sameRawRecords(ctx, buf.Bytes(), s); err == nil || !strings.Contains(err.Error(), "offset 14") {
		t.Fatalf("other bytes at offset 14 adopted: %v", err)
	}
	s = &sealing{topic: topicName, partition: part, from: 10, to: 14, rows: rows(values[:4])}
	if err := sameRawRecords(ctx, buf.Bytes(), s); err == nil {
		t.Fatal("a batch with other offsets adopted")
	}
}
