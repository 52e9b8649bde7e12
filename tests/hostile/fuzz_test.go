package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// decisionSeeds are real decision records as enrich publishes them.
func decisionSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, p := range seed.Generate(3, seed.Options{End: time.Unix(1_800_000_000, 0), Span: time.Hour, Seed: 5, Amended: 0.5}) {
		b, err := json.Marshal(&p.D)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func encode(t testing.TB, rows []batch.Row) []byte {
	t.Helper()
	root, err := merkletree.Root(batch.Leaves(rows))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := batch.Encode(&buf, rows, batch.Meta{Topic: "decisions", Partition: 0, From: rows[0].Offset, To: rows[len(rows)-1].Offset + 1, Root: root}, batch.Options{}); err != nil {
		t.Fatalf("encode: %v", err)
	}
	return buf.Bytes()
}

// FuzzArchiveRow: any value on the decisions topic (a hostile or broken
// producer) becomes a row the archive can seal — never a panic, never a
// batch that cannot be written (which would stall the partition's chain).
func FuzzArchiveRow(f *testing.F) {
	for _, s := range decisionSeeds(f) {
		f.Add(s)
	}
	for _, s := range []string{"", "null", "{}", "[", `{"record_id": 5}`, `{"version": -1}`, "\xff\xfe", `{"a":NaN}`, `{"record_id":"x","record_id":"y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		r := batch.NewRow("auditline.decisions", 0, 7, time.Unix(1_800_000_000, 0), value)
		if (r.Decision == nil) == (r.Error == "") {
			t.Fatalf("row has decision %v and error %q", r.Decision != nil, r.Error)
		}
		data := encode(t, []batch.Row{r})
		leaves, n, err := verify.CheckBatch(context.Background(), data, &manifest.Manifest{Count: 1, From: 7, To: 8, Topic: "auditline.decisions", LeafRule: merkletree.LeafRuleV2,
			MerkleRoot: hexRoot(t, batch.Leaves([]batch.Row{r})), MinTime: r.Timestamp, MaxTime: r.Timestamp})
		if err != nil || n != 1 || !bytes.Equal(leaves[0], r.Leaf[:]) {
			t.Fatalf("a sealed row does not verify: %v", err)
		}
	})
}

// There is deliberately no fuzz target for verify.CheckBatch on arbitrary
// bytes: arrow-go's Arrow schema decoding, which every Parquet open runs,
// tries to allocate hundreds of GB on some altered footers (a fatal
// out-of-memory, e.g. sinks/archive/testdata/arrow-schema-oom.parquet, found
// here by mutating a real batch). verify, prove and export therefore parse
// only bytes whose SHA-256 a signed manifest names (TestProveRefusesAlteredBatch).

func hexRoot(t *testing.T, leaves [][]byte) string {
	t.Helper()
	root, err := merkletree.Root(leaves)
	if err != nil {
		t.Fatal(err)
	}
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(root))
	for _, b := range root {
		out = append(out, hexdigits[b>>4], hexdigits[b&15])
	}
	return string(out)
}
