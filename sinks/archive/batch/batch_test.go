package batch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed (a schema change: review it, then go test -update):\n%s", name, got)
	}
}

func rows(n int) []Row {
	out := make([]Row, n)
	for i := range out {
		out[i] = NewRow("auditline.decisions", 0, int64(100+i), time.UnixMilli(1763807445118+int64(i)), archivetest.Value(i))
	}
	return out
}

func encode(t testing.TB, rs []Row, opts Options) []byte {
	t.Helper()
	root, err := merkletree.Root(Leaves(rs))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, rs, Meta{Topic: "auditline.decisions", Partition: 2, From: 100, To: 100 + int64(len(rs)), Root: root}, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSchemaGolden pins the Arrow schema and the Parquet schema of a batch
// file. Both are derived from record.Fields(): a field added to
// record.Decision shows up here as a diff.
func TestSchemaGolden(t *testing.T) {
	sc := Schema()
	if compiled.err != nil {
		t.Fatal(compiled.err)
	}
	golden(t, "arrow-schema.golden", []byte(sc.String()+"\n"))
	data := encode(t, rows(3), Options{})
	f, err := Open(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	schema.PrintSchema(f.pf.MetaData().Schema.Root(), &b, 2)
	golden(t, "parquet-schema.golden", []byte(b.String()))
}

func TestEveryFieldHasAColumn(t *testing.T) {
	sc := Schema()
	for _, f := range record.Fields() {
		if len(sc.FieldIndices(f.Name)) != 1 {
			t.Errorf("record column %s (%s) missing from the batch schema", f.Name, f.JSON)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	rs := rows(2500)
	rs = append(rs, NewRow("auditline.decisions", 0, 3000, time.UnixMilli(1763807449999), []byte(`{"record_id": 5}`)), NewRow("auditline.decisions", 0, 3001, time.UnixMilli(1763807449999), []byte("not json\x00")))
	data := encode(t, rs, Options{RowGroupBytes: 256 << 10})
	f, err := Open(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.NumRows() != int64(len(rs)) {
		t.Fatalf("NumRows = %d, want %d", f.NumRows(), len(rs))
	}
	if g := f.pf.NumRowGroups(); g < 2 {
		t.Errorf("row groups = %d, want several for a 256 KiB target", g)
	}
	ctx := context.Background()
	offs, err := f.Int64s(ctx, ColOffset)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := f.Binaries(ctx, ColLeaf)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := f.Binaries(ctx, ColCanonical)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := f.Strings(ctx, ColError)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := f.Strings(ctx, "record_id")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if offs[i] != r.Offset || !bytes.Equal(leaves[i], r.Leaf[:]) || !bytes.Equal(canon[i], r.Canonical) || errs[i] != r.Error {
			t.Fatalf("row %d does not round-trip", i)
		}
		if l := merkletree.LeafV2("auditline.decisions", 0, offs[i], int64(r.Timestamp), canon[i]); !bytes.Equal(l[:], leaves[i]) {
			t.Fatalf("row %d: stored leaf is not the auditline.leaf/v2 leaf of its position and canonical bytes", i)
		}
		if r.Decision != nil && ids[i] != r.Decision.RecordID {
			t.Fatalf("row %d: record_id column %q, want %q", i, ids[i], r.Decision.RecordID)
		}
	}
	if rs[len(rs)-2].Error == "" || rs[len(rs)-1].Error == "" {
		t.Fatal("malformed values were not flagged")
	}
	meta := f.Meta()
	root, _ := merkletree.Root(Leaves(rs))
	if meta[MetaRoot] != fmt.Sprintf("%x", root) || meta[MetaPartition] != "2" || meta[MetaFormat] != Format {
		t.Fatalf("metadata = %v", meta)
	}
}

// TestCanonicalIsRecordCanonical checks that the archived canonical bytes are
// exactly record.Decision.Canonical() for records of the current schema.
func TestCanonicalIsRecordCanonical(t *testing.T) {
	for i := range 50 {
		d := archivetest.Decision(i)
		want, err := d.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		r := NewRow("auditline.decisions", 0, int64(i), time.Now(), archivetest.Value(i))
		if !bytes.Equal(r.Canonical, want) {
			t.Fatalf("record %d: canonical bytes differ from Decision.Canonical()", i)
		}
	}
}

// BenchmarkEncode reports records/s of the batch file (decode, canonicalise,
// hash, Parquet+zstd) beside two baselines measured in the same run: raw
// SHA-256 over the same values, and a plain pqarrow write of the canonical
// bytes as a single binary column. cpu-µs/record is this process's user +
// system CPU time (getrusage) per record, which other load on the machine
// disturbs far less than wall-clock rates.
func BenchmarkEncode(b *testing.B) {
	const n = 5000
	values := make([][]byte, n)
	var total int
	for i := range values {
		values[i] = archivetest.Value(i)
		total += len(values[i])
	}
	var shaRate, plainRate float64
	b.Run("baseline-sha256", func(b *testing.B) {
		for b.Loop() {
			for _, v := range values {
				sha256.Sum256(v)
			}
		}
		shaRate = float64(n*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(shaRate, "records/s")
	})
	b.Run("baseline-parquet-binary", func(b *testing.B) {
		mem := memory.NewGoAllocator()
		cpu0 := processCPU()
		sc := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.BinaryTypes.Binary}}, nil)
		for b.Loop() {
			bb := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
			for _, v := range values {
				bb.Append(v)
			}
			arr := bb.NewArray()
			rec := array.NewRecordBatch(sc, []arrow.Array{arr}, n)
			var buf bytes.Buffer
			fw, err := pqarrow.NewFileWriter(sc, &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd)), pqarrow.DefaultWriterProps())
			if err != nil {
				b.Fatal(err)
			}
			if err := fw.Write(rec); err != nil {
				b.Fatal(err)
			}
			fw.Close()
			rec.Release()
			arr.Release()
			bb.Release()
		}
		plainRate = float64(n*b.N) / b.Elapsed().Seconds()
		reportCPU(b, cpu0, n)
		b.ReportMetric(plainRate, "records/s")
	})
	// rows and encode are the two halves of batch, timed apart: NewRow
	// (decode, the canonical check, the leaf) and Encode (Parquet + zstd).
	b.Run("rows", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := processCPU()
		for b.Loop() {
			for i, v := range values {
				NewRow("auditline.decisions", 0, int64(i), time.UnixMilli(1), v)
			}
		}
		reportCPU(b, cpu0, n)
	})
	b.Run("encode", func(b *testing.B) {
		rs := make([]Row, n)
		for i, v := range values {
			rs[i] = NewRow("auditline.decisions", 0, int64(i), time.UnixMilli(1), v)
		}
		var size int
		b.ReportAllocs()
		cpu0 := processCPU()
		for b.Loop() {
			size = len(encode(b, rs, Options{}))
		}
		reportCPU(b, cpu0, n)
		b.ReportMetric(float64(size)/1024, "file-KiB")
	})
	b.Run("batch", func(b *testing.B) {
		var size int
		b.ReportAllocs()
		cpu0 := processCPU()
		for b.Loop() {
			rs := make([]Row, n)
			for i, v := range values {
				rs[i] = NewRow("auditline.decisions", 0, int64(i), time.UnixMilli(1), v)
			}
			size = len(encode(b, rs, Options{}))
		}
		reportCPU(b, cpu0, n)
		rate := float64(n*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "records/s")
		b.ReportMetric(float64(total)/float64(size), "compression-x")
		if shaRate > 0 && plainRate > 0 {
			b.ReportMetric(rate/shaRate, "ratio-vs-sha256")
			b.ReportMetric(rate/plainRate, "ratio-vs-plain-parquet")
		}
	})
}

func TestMayContain(t *testing.T) {
	rs := rows(2000)
	f, err := Open(bytes.NewReader(encode(t, rs, Options{})))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, r := range rs[:50] {
		ok, err := f.MayContain("record_id", r.Decision.RecordID)
		if err != nil || !ok {
			t.Fatalf("MayContain(%s) = %v, %v: a false negative", r.Decision.RecordID, ok, err)
		}
	}
	fp := 0
	for i := range 1000 {
		ok, err := f.MayContain("record_id", record.ID(fmt.Sprintf("absent-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			fp++
		}
	}
	if fp > 50 {
		t.Fatalf("%d false positives in 1000, want about 10", fp)
	}
}

// TestNewRowCanonicalValue: a value in canonical form (what enrich publishes)
// is kept as it is; the same record published non-canonically (by an enrich
// before issue 17) gets the same canonical bytes, leaf and columns.
func TestNewRowCanonicalValue(t *testing.T) {
	for i := range 20 {
		v, legacy := archivetest.Value(i), archivetest.LegacyValue(i)
		if bytes.Equal(v, legacy) {
			t.Fatal("the legacy form is canonical already: the test proves nothing")
		}
		a := NewRow("auditline.decisions", 0, 1, time.UnixMilli(1), v)
		b := NewRow("auditline.decisions", 0, 1, time.UnixMilli(1), legacy)
		if a.Error != "" || b.Error != "" {
			t.Fatalf("errors: %q, %q", a.Error, b.Error)
		}
		if &a.Canonical[0] != &v[0] {
			t.Error("a canonical value was copied")
		}
		if !bytes.Equal(a.Canonical, v) || !bytes.Equal(b.Canonical, v) || a.Leaf != b.Leaf {
			t.Fatalf("record %d: canonical bytes differ:\n%s\n%s", i, a.Canonical, b.Canonical)
		}
		if !reflect.DeepEqual(a.Decision, b.Decision) {
			t.Fatalf("record %d: decoded records differ", i)
		}
	}
	// A canonical JSON object that is not a decision record is archived with
	// its error, as before.
	r := NewRow("auditline.decisions", 0, 1, time.UnixMilli(1), []byte(`{"record_id":5}`))
	if r.Error == "" || r.Decision != nil || string(r.Canonical) != `{"record_id":5}` {
		t.Fatalf("got %+v", r)
	}
}

// TestStreamBinaries: the column read a chunk at a time gives the values
// VisitBinaries gives, in order, for chunk sizes around the row count; an
// error from fn stops the read and is returned; a missing column is an
// error.
func TestStreamBinaries(t *testing.T) {
	ctx := context.Background()
	const n = 2500
	data := encode(t, rows(n), Options{})
	want := map[string][][]byte{}
	{
		f, err := Open(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, col := range []string{ColCanonical, ColLeaf} {
			if want[col], err = f.Binaries(ctx, col); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	for _, col := range []string{ColCanonical, ColLeaf} {
		for _, chunk := range []int64{1, 999, 1000, n, n + 1} {
			f, err := Open(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			next := 0
			err = f.StreamBinaries(ctx, col, chunk, func(i int, v []byte) error {
				if i != next || !bytes.Equal(v, want[col][i]) {
					return fmt.Errorf("value %d (want index %d) differs", i, next)
				}
				next++
				return nil
			})
			if err != nil || next != n {
				t.Errorf("%s, chunks of %d: %v after %d values", col, chunk, err, next)
			}
			f.Close()
		}
	}
	f, err := Open(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// archive_canonical takes the page path (the loop above checked its
	// values), archive_leaf (fixed-size) the Arrow one.
	if ok, _ := f.visitPages(ColCanonical, func(int, []byte) error { return nil }); !ok {
		t.Error("archive_canonical is not read page by page")
	}
	if ok, _ := f.visitPages(ColLeaf, func(int, []byte) error { return nil }); ok {
		t.Error("archive_leaf read as BYTE_ARRAY pages")
	}
	stop := fmt.Errorf("stop")
	seen := 0
	if err := f.StreamBinaries(ctx, ColCanonical, 100, func(i int, v []byte) error {
		seen++
		if i == 150 {
			return stop
		}
		return nil
	}); err != stop || seen != 151 {
		t.Errorf("fn's error: got %v after %d values, want stop after 151", err, seen)
	}
	if err := f.StreamBinaries(ctx, "no_such_column", 100, func(int, []byte) error { return nil }); err == nil {
		t.Error("missing column: no error")
	}
}

// reportCPU reports the process's CPU time since cpu0 per record, over b.N
// rounds of n records.
func reportCPU(b *testing.B, cpu0 time.Duration, n int) {
	b.ReportMetric((processCPU()-cpu0).Seconds()*1e6/float64(n*b.N), "cpu-µs/record")
}

// processCPU is the CPU time this process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
