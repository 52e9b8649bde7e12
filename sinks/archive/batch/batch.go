// Package batch is the archive's batch file: one Parquet object per batch of a
// partition's decision records, in offset order.
//
// Each row holds the record's columns and, beside them, what a verifier needs
// to recompute the batch's Merkle root with no code of ours:
//
//	archive_offset     int64            Kafka offset of the record
//	archive_timestamp  timestamp[ms]    Kafka timestamp (when enrich published it)
//	archive_leaf       fixed[32]        the RFC 6962 leaf hash, by the batch's leaf rule (merkletree):
//	                                    v2 binds topic, partition, offset and timestamp to archive_canonical
//	archive_canonical  binary           the record's RFC 8785 (JCS) canonical JSON
//	archive_error      string           why the value did not decode as a Decision ("" when it did)
//	<record columns>                     derived from record.Fields(), never listed by hand
//
// The canonical bytes are the evidence; the columns are a projection of them
// for analytics. They are the JCS transform of the JSON exactly as enrich
// published it, so a field added by a newer writer is kept in the evidence even
// by an older archiver (and equal record.Decision.Canonical() otherwise). A
// value that is not JSON at all is archived as its raw bytes with
// archive_error set: the archive never drops a record, even a malformed one.
//
// Parquet: written with arrow-go's pqarrow, zstd, plain encoding (no
// dictionaries: see Encode), statistics on every column but
// archive_canonical and archive_leaf, row groups cut by bytes (WriteBuffered
// + NewBufferedRowGroup), a split-block bloom filter on record_id (so
// `auditline prove` reads a footer and a filter instead of a column), and
// key-value metadata naming the batch (auditline.* keys). The Arrow schema
// is stored too.
package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/merkletree"
)

// Format names this file layout (metadata key auditline.format). v2 differs
// from v1 only in the leaf rule of archive_leaf (auditline.leaf/v2, named in
// the footer as auditline.leaf_rule); the columns are the same.
const Format = "auditline.archive.batch/v2"

// Archive column names.
const (
	ColOffset    = "archive_offset"
	ColTimestamp = "archive_timestamp"
	ColLeaf      = "archive_leaf"
	ColCanonical = "archive_canonical"
	ColError     = "archive_error"
)

// Metadata keys stored in the Parquet footer.
const (
	MetaFormat        = "auditline.format"
	MetaTopic         = "auditline.topic"
	MetaPartition     = "auditline.partition"
	MetaFrom          = "auditline.from"
	MetaTo            = "auditline.to"
	MetaCount         = "auditline.count"
	MetaRoot          = "auditline.merkle_root"
	MetaSchemaVersion = "auditline.record_schema_version"
	MetaLeafRule      = "auditline.leaf_rule"
)

// Row is one archived record.
type Row struct {
	Offset    int64
	Timestamp record.Time
	Leaf      [merkletree.Size]byte
	Canonical []byte
	Error     string           // "" when Decision decoded
	Decision  *record.Decision // nil when Error is set
}

// NewRow decodes the Kafka value at (topic, partition, offset) of
// auditline.decisions and computes its auditline.leaf/v2 leaf. It never
// fails: a value that does not decode is kept with Error set.
func NewRow(topic string, partition int32, offset int64, ts time.Time, value []byte) Row {
	r := Row{Offset: offset, Timestamp: record.TimeOf(ts)}
	r.Canonical, r.Decision, r.Error = canonical(value)
	r.Leaf = merkletree.LeafV2(topic, partition, offset, int64(r.Timestamp), r.Canonical)
	return r
}

// RawRowError is archive_error of every row of a raw log (docs/archive.md
// "Raw evidence"): the row is a sealed raw source event, not a decision record.
const RawRowError = "raw source event (sealed, auditline.raw-event/v1)"

// NewRawRow is the row of a raw log: sealed is the canonical JSON of the
// sealed event (privacy/envelope), leaf rule v2 over it.
func NewRawRow(topic string, partition int32, offset int64, ts time.Time, sealed []byte) Row {
	r := Row{Offset: offset, Timestamp: record.TimeOf(ts), Canonical: sealed, Error: RawRowError}
	r.Leaf = merkletree.LeafV2(topic, partition, offset, int64(r.Timestamp), r.Canonical)
	return r
}

// canonical returns the record's canonical bytes (archive_canonical), its
// decoded Decision (nil when it does not decode) and why not.
//
// enrich publishes the RFC 8785 bytes of the Decision
// (record.Decision.AppendCanonical), so the value is normally canonical
// already and is kept as it is (not copied: the Kafka record holding it
// lives until the batch is sealed anyway). That is checked, not trusted: the
// decoded Decision is encoded canonically again and must give the value
// byte for byte — JCS is idempotent on canonical text, so the value then is
// its own JCS transform. Anything else (a value from an older enrich, a field
// this build does not know, not a record at all) is canonicalised in full,
// as before: the evidence is always the JCS transform of the value.
//
// The value is decoded by record.DecodeCompact, compiled from the type for
// the form enrich publishes (the general decoder was a third of the seal's
// CPU); a value outside its subset, or one whose record does not encode back
// to it, is decoded again by encoding/json/v2, which alone decides, as
// before, what is not a record. Within its subset DecodeCompact decodes as
// encoding/json/v2 does (record's TestDecodeCompactMatchesV2 and
// FuzzDecodeCompact), and a record kept from it is still checked against
// the value byte for byte: by record.DecodeCanonical, which proves while
// decoding that the value is the record's canonical encoding (never for a
// value that is not: record's TestDecodeCanonical), and by encoding the
// record and comparing when it did not prove it (the encode and compare
// were a tenth of the seal's CPU). Its strings share value's bytes, which
// do not change while the row lives (the Kafka record is held until the
// batch is sealed, as archive_canonical is).
func canonical(value []byte) ([]byte, *record.Decision, string) {
	d := new(record.Decision)
	if ok, proven := record.DecodeCanonical(unsafe.String(unsafe.SliceData(value), len(value)), d); ok && (proven || isCanonical(d, value)) {
		return value, d, ""
	}
	*d = record.Decision{}
	derr := jsonv2.Unmarshal(value, d)
	if derr == nil && isCanonical(d, value) {
		return value, d, ""
	}
	c := jsontext.Value(bytes.Clone(value))
	if err := c.Canonicalize(); err != nil {
		return bytes.Clone(value), nil, "not JSON (archive_canonical holds the raw value): " + err.Error()
	}
	if derr != nil {
		return c, nil, "not a decision record: " + derr.Error()
	}
	return c, d, ""
}

// checkBufs holds the buffers isCanonical encodes into: the encoding is only
// compared, never kept, and a buffer per record was a value's size of garbage.
var checkBufs = sync.Pool{New: func() any { return new([]byte) }}

// isCanonical reports whether d's canonical encoding is value, byte for byte.
func isCanonical(d *record.Decision, value []byte) bool {
	bp := checkBufs.Get().(*[]byte)
	c, err := d.AppendCanonical((*bp)[:0])
	ok := err == nil && bytes.Equal(c, value)
	if cap(c) <= 1<<20 { // an outsized record's buffer is not kept
		*bp = c
		checkBufs.Put(bp)
	}
	return ok
}

// Leaves returns the leaf hashes of rows, in order.
func Leaves(rows []Row) [][]byte {
	out := make([][]byte, len(rows))
	for i := range rows {
		out[i] = rows[i].Leaf[:]
	}
	return out
}

// Schema returns the Arrow schema of a batch file: the archive columns, then
// one column per record.Fields() entry. The result is shared: do not modify.
func Schema() *arrow.Schema {
	compiledOnce.Do(compileSchema)
	return compiled.schema
}

// appender appends one column's value of the struct at p (a record.Decision,
// or an element of a struct list) to its builder. Appenders read the field
// at its offset, computed once from the type: reading it through reflect on
// every value was a tenth of Encode's CPU.
type appender func(b array.Builder, p unsafe.Pointer)

type compiledSchema struct {
	schema    *arrow.Schema
	appenders []appender // for the record columns, after the archive columns
	err       error
}

var (
	compiledOnce sync.Once
	compiled     compiledSchema
)

var archiveFields = []arrow.Field{
	{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColTimestamp, Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	{Name: ColLeaf, Type: &arrow.FixedSizeBinaryType{ByteWidth: merkletree.Size}},
	{Name: ColCanonical, Type: arrow.BinaryTypes.Binary},
	{Name: ColError, Type: arrow.BinaryTypes.String},
}

func compileSchema() {
	fields := append([]arrow.Field(nil), archiveFields...)
	seen := map[string]bool{}
	for _, f := range archiveFields {
		seen[f.Name] = true
	}
	for _, f := range record.Fields() {
		if seen[f.Name] {
			compiled.err = fmt.Errorf("record column %q collides with an archive column", f.Name)
			return
		}
		seen[f.Name] = true
		af, app, err := compileField(f, reflect.TypeFor[record.Decision]())
		if err != nil {
			compiled.err = err
			return
		}
		fields = append(fields, af)
		compiled.appenders = append(compiled.appenders, app)
	}
	compiled.schema = arrow.NewSchema(fields, nil)
}

var tsType = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// fieldAt resolves a reflect field index path in t to the field's type and
// its offset from the start of t. Every step but the last must be a struct
// held by value (record.Fields walks only those), so the offsets add up.
func fieldAt(t reflect.Type, index []int) (reflect.Type, uintptr, error) {
	var off uintptr
	for i, x := range index {
		if t.Kind() != reflect.Struct {
			return nil, 0, fmt.Errorf("field path %v: step %d is a %s, not a struct", index, i, t.Kind())
		}
		sf := t.Field(x)
		off += sf.Offset
		t = sf.Type
	}
	return t, off, nil
}

// compileField maps one record.Field of the struct type parent to an Arrow
// field and an appender that reads the field from a *parent.
func compileField(f record.Field, parent reflect.Type) (arrow.Field, appender, error) {
	md := arrow.NewMetadata([]string{"json"}, []string{f.JSON})
	ft, off, err := fieldAt(parent, f.Index)
	if err != nil {
		return arrow.Field{}, nil, fmt.Errorf("record column %q: %w", f.Name, err)
	}
	// want checks that the field's Go type is what the appender reads.
	want := func(k reflect.Kind) error {
		if ft.Kind() != k {
			return fmt.Errorf("record column %q: Go type %s, want kind %s", f.Name, ft, k)
		}
		return nil
	}
	switch f.Kind {
	case record.KindString:
		return arrow.Field{Name: f.Name, Type: arrow.BinaryTypes.String, Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			b.(*array.StringBuilder).Append(*(*string)(unsafe.Add(p, off)))
		}, want(reflect.String)
	case record.KindBool:
		return arrow.Field{Name: f.Name, Type: arrow.FixedWidthTypes.Boolean, Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			b.(*array.BooleanBuilder).Append(*(*bool)(unsafe.Add(p, off)))
		}, want(reflect.Bool)
	case record.KindInt32:
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Int32, Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			b.(*array.Int32Builder).Append(*(*int32)(unsafe.Add(p, off)))
		}, want(reflect.Int32)
	case record.KindInt64:
		af := arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Int64, Metadata: md}
		if ft.Kind() == reflect.Int {
			return af, func(b array.Builder, p unsafe.Pointer) {
				b.(*array.Int64Builder).Append(int64(*(*int)(unsafe.Add(p, off))))
			}, nil
		}
		return af, func(b array.Builder, p unsafe.Pointer) {
			b.(*array.Int64Builder).Append(*(*int64)(unsafe.Add(p, off)))
		}, want(reflect.Int64)
	case record.KindUint32:
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Uint32, Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			b.(*array.Uint32Builder).Append(*(*uint32)(unsafe.Add(p, off)))
		}, want(reflect.Uint32)
	case record.KindFloat64:
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Float64, Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			b.(*array.Float64Builder).Append(*(*float64)(unsafe.Add(p, off)))
		}, want(reflect.Float64)
	case record.KindNullFloat:
		if ft != reflect.TypeFor[*float64]() {
			return arrow.Field{}, nil, fmt.Errorf("record column %q: Go type %s, want *float64", f.Name, ft)
		}
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			fp := *(**float64)(unsafe.Add(p, off))
			if fp == nil {
				b.AppendNull()
				return
			}
			b.(*array.Float64Builder).Append(*fp)
		}, nil
	case record.KindTime:
		return arrow.Field{Name: f.Name, Type: tsType, Nullable: true, Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			ms := *(*int64)(unsafe.Add(p, off))
			if ms == 0 {
				b.AppendNull()
				return
			}
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(ms))
		}, want(reflect.Int64)
	case record.KindStrings:
		if ft.Kind() != reflect.Slice || ft.Elem().Kind() != reflect.String {
			return arrow.Field{}, nil, fmt.Errorf("record column %q: Go type %s, want a slice of strings", f.Name, ft)
		}
		return arrow.Field{Name: f.Name, Type: arrow.ListOfNonNullable(arrow.BinaryTypes.String), Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			vb := lb.ValueBuilder().(*array.StringBuilder)
			for _, s := range *(*[]string)(unsafe.Add(p, off)) {
				vb.Append(s)
			}
		}, nil
	case record.KindStructList:
		if ft.Kind() != reflect.Slice || ft.Elem().Kind() != reflect.Struct {
			return arrow.Field{}, nil, fmt.Errorf("record column %q: Go type %s, want a slice of structs", f.Name, ft)
		}
		et := ft.Elem()
		elemFields := make([]arrow.Field, len(f.Elem))
		elemApps := make([]appender, len(f.Elem))
		for i, ef := range f.Elem {
			af, app, err := compileField(ef, et)
			if err != nil {
				return arrow.Field{}, nil, err
			}
			elemFields[i], elemApps[i] = af, app
		}
		size := et.Size()
		return arrow.Field{Name: f.Name, Type: arrow.ListOfNonNullable(arrow.StructOf(elemFields...)), Metadata: md}, func(b array.Builder, p unsafe.Pointer) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			sb := lb.ValueBuilder().(*array.StructBuilder)
			s := reflect.NewAt(ft, unsafe.Add(p, off)).Elem() // the slice, read once per row
			n, base := s.Len(), s.UnsafePointer()
			for i := range n {
				elem := unsafe.Add(base, uintptr(i)*size)
				sb.Append(true)
				for j, app := range elemApps {
					app(sb.FieldBuilder(j), elem)
				}
			}
		}, nil
	}
	return arrow.Field{}, nil, fmt.Errorf("record column %q: kind %v has no Parquet mapping", f.Name, f.Kind)
}

// Options tune the file.
type Options struct {
	// RowGroupBytes cuts a row group once its buffered data reaches this size
	// (compressed pages plus an estimate of what is still in builders). 0 means
	// DefaultRowGroupBytes.
	RowGroupBytes int64
	// CompressionLevel for zstd; 0 means the library default (3).
	CompressionLevel int
}

// DefaultRowGroupBytes keeps a row group well below typical reader memory
// budgets while amortising per-group overhead.
const DefaultRowGroupBytes = 32 << 20

// chunkRows is how many rows are built into one Arrow record before it is
// handed to the Parquet writer.
const chunkRows = 1024

// Meta names a batch in the file footer.
type Meta struct {
	Topic     string
	Partition int32
	From, To  int64
	Root      []byte
	// LeafRule of the rows' leaves; "" means merkletree.LeafRuleV2 (what
	// NewRow computes). An evidence pack re-encodes v1 rows under v1.
	LeafRule string
}

// Encode writes rows as one Parquet file to w.
func Encode(w io.Writer, rows []Row, meta Meta, opts Options) error {
	sc := Schema()
	if compiled.err != nil {
		return fmt.Errorf("batch schema: %w", compiled.err)
	}
	if opts.RowGroupBytes <= 0 {
		opts.RowGroupBytes = DefaultRowGroupBytes
	}
	wprops := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		// No dictionaries: most columns of a batch are ids, hashes, times
		// and free text that barely repeat, and zstd squeezes the few that
		// do as well. Measured on the archive's test records (5,000, CPU
		// time, busy box): 52–58 against 64–82 µs per record to encode, and
		// a 14 % smaller file (942 against 1,098 KB) — bench/PROFILE.md.
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(true),
		// Except where min and max say nothing: the canonical JSON (two
		// values of ~4 KB in the header of every page and in the footer, 5 %
		// of the file) and the leaf hashes.
		parquet.WithStatsFor(ColCanonical, false),
		parquet.WithStatsFor(ColLeaf, false),
		parquet.WithMaxRowGroupLength(1 << 40), // cut by bytes below, not rows
		parquet.WithCreatedBy("auditline archive"),
		parquet.WithBloomFilterEnabledFor("record_id", true),
		parquet.WithBloomFilterFPPFor("record_id", 0.01),
		// Sized for the batch (the default expects a million values: 1 MiB per row group).
		parquet.WithBloomFilterNDVFor("record_id", int64(max(len(rows), 64))),
	}
	if opts.CompressionLevel != 0 {
		wprops = append(wprops, parquet.WithCompressionLevel(opts.CompressionLevel))
	}
	mem := memory.NewGoAllocator()
	fw, err := pqarrow.NewFileWriter(sc, w, parquet.NewWriterProperties(wprops...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
	if err != nil {
		return fmt.Errorf("parquet writer: %w", err)
	}
	rb := array.NewRecordBuilder(mem, sc)
	defer rb.Release()
	var zero record.Decision
	var groupBytes int64
	var sized builderSizes
	for start := 0; start < len(rows); start += chunkRows {
		end := min(start+chunkRows, len(rows))
		// Every record column's builder, nested ones included, reserves
		// what it held for the previous chunk, scaled to this one's rows:
		// grown by doubling from empty in every chunk, the builders
		// allocated and copied about twice the columns' size.
		sized.reserve(rb, end-start)
		// Size the archive columns' buffers once per chunk: grown by
		// doubling, the canonical bytes (most of a batch) were copied
		// about twice more (memmove was a sixth of Encode's CPU).
		var canonBytes int
		for i := start; i < end; i++ {
			canonBytes += len(rows[i].Canonical)
		}
		rb.Reserve(end - start)
		rb.Field(3).(*array.BinaryBuilder).ReserveData(canonBytes)
		var chunkBytes int64
		for i := start; i < end; i++ {
			r := &rows[i]
			rb.Field(0).(*array.Int64Builder).Append(r.Offset)
			rb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Timestamp))
			rb.Field(2).(*array.FixedSizeBinaryBuilder).Append(r.Leaf[:])
			rb.Field(3).(*array.BinaryBuilder).Append(r.Canonical)
			rb.Field(4).(*array.StringBuilder).Append(r.Error)
			d := &zero
			if r.Decision != nil {
				d = r.Decision
			}
			for j, app := range compiled.appenders {
				app(rb.Field(len(archiveFields)+j), unsafe.Pointer(d))
			}
			// The columns repeat the record's content: about twice its canonical size.
			chunkBytes += 2*int64(len(r.Canonical)) + 64
		}
		sized.measure(rb, end-start)
		rec := rb.NewRecordBatch()
		err := fw.WriteBuffered(rec)
		rec.Release()
		if err != nil {
			return fmt.Errorf("parquet write: %w", err)
		}
		groupBytes += chunkBytes
		if groupBytes >= opts.RowGroupBytes && end < len(rows) {
			if err := fw.NewBufferedRowGroupChecked(); err != nil {
				return fmt.Errorf("parquet row group: %w", err)
			}
			groupBytes = 0
		}
	}
	leafRule, format := meta.LeafRule, Format
	switch leafRule {
	case "":
		leafRule = merkletree.LeafRuleV2
	case merkletree.LeafRuleV1:
		format = "auditline.archive.batch/v1"
	}
	kv := [][2]string{
		{MetaFormat, format},
		{MetaTopic, meta.Topic},
		{MetaPartition, strconv.Itoa(int(meta.Partition))},
		{MetaFrom, strconv.FormatInt(meta.From, 10)},
		{MetaTo, strconv.FormatInt(meta.To, 10)},
		{MetaCount, strconv.Itoa(len(rows))},
		{MetaRoot, fmt.Sprintf("%x", meta.Root)},
		{MetaSchemaVersion, strconv.Itoa(record.SchemaVersion)},
		{MetaLeafRule, leafRule},
	}
	for _, p := range kv {
		if err := fw.AppendKeyValueMetadata(p[0], p[1]); err != nil {
			return fmt.Errorf("parquet metadata: %w", err)
		}
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("parquet close: %w", err)
	}
	return nil
}

// builderSizes is what each builder of the record columns (after the
// archive columns, which Encode sizes itself) held for its last chunk of
// rows, in walkBuilders order.
type builderSizes struct {
	rows  int
	sizes []builderSize
}

type builderSize struct{ len, data int }

// dataBuilder is a builder of variable-size values (binary, string).
type dataBuilder interface {
	DataLen() int
	ReserveData(int)
}

// walkBuilders calls fn with b and every builder nested in it.
func walkBuilders(b array.Builder, fn func(array.Builder)) {
	fn(b)
	switch b := b.(type) {
	case *array.ListBuilder:
		walkBuilders(b.ValueBuilder(), fn)
	case *array.StructBuilder:
		for i := range b.NumField() {
			walkBuilders(b.FieldBuilder(i), fn)
		}
	}
}

// measure records what rb's builders hold for rows rows.
func (s *builderSizes) measure(rb *array.RecordBuilder, rows int) {
	s.rows, s.sizes = rows, s.sizes[:0]
	for _, fb := range rb.Fields()[len(archiveFields):] {
		walkBuilders(fb, func(b array.Builder) {
			bs := builderSize{len: b.Len()}
			if db, ok := b.(dataBuilder); ok {
				bs.data = db.DataLen()
			}
			s.sizes = append(s.sizes, bs)
		})
	}
}

// reserve reserves in rb's builders, for rows rows, what they held for the
// rows measured last, plus an eighth. It does nothing before a measure.
func (s *builderSizes) reserve(rb *array.RecordBuilder, rows int) {
	if s.rows == 0 {
		return
	}
	scale := func(n int) int { return n*rows/s.rows + n/8 }
	i := 0
	for _, fb := range rb.Fields()[len(archiveFields):] {
		walkBuilders(fb, func(b array.Builder) {
			bs := s.sizes[i]
			i++
			b.Reserve(scale(bs.len))
			if db, ok := b.(dataBuilder); ok {
				db.ReserveData(scale(bs.data))
			}
		})
	}
}

// File is an opened batch file. Each column is decoded once: a column read
// again (verify's record checks and its per-row checks both read
// archive_canonical) comes from memory until Close.
type File struct {
	pf *file.Reader
	fr *pqarrow.FileReader
	sc *arrow.Schema

	mu   sync.Mutex
	cols map[string]*arrow.Chunked
}

// Open reads a batch file's footer from r (an *os.File, a bytes.Reader, or a
// ranged S3 reader: only the footer and the columns asked for are read).
func Open(r parquet.ReaderAtSeeker) (*File, error) {
	pf, err := file.NewParquetReader(r)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{Parallel: false, BatchSize: 64 << 10}, memory.NewGoAllocator())
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("parquet: %w", err)
	}
	sc, err := fr.Schema()
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("parquet schema: %w", err)
	}
	return &File{pf: pf, fr: fr, sc: sc, cols: map[string]*arrow.Chunked{}}, nil
}

// Close releases the file and the columns read.
func (f *File) Close() error {
	f.mu.Lock()
	for _, ch := range f.cols {
		ch.Release()
	}
	clear(f.cols)
	f.mu.Unlock()
	return f.pf.Close()
}

// NumRows returns the number of rows.
func (f *File) NumRows() int64 { return f.pf.NumRows() }

// Meta returns the footer's key-value metadata.
func (f *File) Meta() map[string]string {
	out := map[string]string{}
	kv := f.pf.MetaData().KeyValueMetadata()
	for i, k := range kv.Keys() {
		out[k] = kv.Values()[i]
	}
	return out
}

// ErrNoColumn is returned when a file lacks a requested column.
var ErrNoColumn = errors.New("no such column")

// column returns the named column (the caller releases it).
func (f *File) column(ctx context.Context, name string) (*arrow.Chunked, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.cols[name]; ok {
		ch.Retain()
		return ch, nil
	}
	ch, err := f.readColumn(ctx, name)
	if err != nil {
		return nil, err
	}
	ch.Retain()
	f.cols[name] = ch
	return ch, nil
}

func (f *File) readColumn(ctx context.Context, name string) (*arrow.Chunked, error) {
	idx := f.sc.FieldIndices(name)
	if len(idx) != 1 {
		return nil, fmt.Errorf("column %s: %w", name, ErrNoColumn)
	}
	cr, err := f.fr.GetColumn(ctx, idx[0])
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", name, err)
	}
	ch, err := cr.NextBatch(f.pf.NumRows())
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", name, err)
	}
	if int64(ch.Len()) != f.pf.NumRows() {
		ch.Release()
		return nil, fmt.Errorf("column %s: %d values for %d rows", name, ch.Len(), f.pf.NumRows())
	}
	return ch, nil
}

// Int64s reads an int64 column.
func (f *File) Int64s(ctx context.Context, name string) ([]int64, error) {
	ch, err := f.column(ctx, name)
	if err != nil {
		return nil, err
	}
	defer ch.Release()
	out := make([]int64, 0, ch.Len())
	for _, c := range ch.Chunks() {
		a, ok := c.(*array.Int64)
		if !ok {
			return nil, fmt.Errorf("column %s: %s, want int64", name, c.DataType())
		}
		out = append(out, a.Int64Values()...)
	}
	return out, nil
}

// Uint32s reads a uint32 column.
func (f *File) Uint32s(ctx context.Context, name string) ([]uint32, error) {
	ch, err := f.column(ctx, name)
	if err != nil {
		return nil, err
	}
	defer ch.Release()
	out := make([]uint32, 0, ch.Len())
	for _, c := range ch.Chunks() {
		a, ok := c.(*array.Uint32)
		if !ok {
			return nil, fmt.Errorf("column %s: %s, want uint32", name, c.DataType())
		}
		out = append(out, a.Uint32Values()...)
	}
	return out, nil
}

// Times reads a timestamp[ms] column (null as 0).
func (f *File) Times(ctx context.Context, name string) ([]record.Time, error) {
	ch, err := f.column(ctx, name)
	if err != nil {
		return nil, err
	}
	defer ch.Release()
	out := make([]record.Time, 0, ch.Len())
	for _, c := range ch.Chunks() {
		a, ok := c.(*array.Timestamp)
		if !ok {
			return nil, fmt.Errorf("column %s: %s, want timestamp", name, c.DataType())
		}
		for i := range a.Len() {
			if a.IsNull(i) {
				out = append(out, 0)
			} else {
				out = append(out, record.Time(a.Value(i)))
			}
		}
	}
	return out, nil
}

// Strings reads a string column.
func (f *File) Strings(ctx context.Context, name string) ([]string, error) {
	ch, err := f.column(ctx, name)
	if err != nil {
		return nil, err
	}
	defer ch.Release()
	out := make([]string, 0, ch.Len())
	for _, c := range ch.Chunks() {
		a, ok := c.(*array.String)
		if !ok {
			return nil, fmt.Errorf("column %s: %s, want string", name, c.DataType())
		}
		for i := range a.Len() {
			out = append(out, a.Value(i))
		}
	}
	return out, nil
}

// Binaries reads a binary or fixed-size binary column. The slices are copies.
func (f *File) Binaries(ctx context.Context, name string) ([][]byte, error) {
	ch, err := f.column(ctx, name)
	if err != nil {
		return nil, err
	}
	defer ch.Release()
	out := make([][]byte, 0, ch.Len())
	for _, c := range ch.Chunks() {
		switch a := c.(type) {
		case *array.Binary:
			for i := range a.Len() {
				out = append(out, bytes.Clone(a.Value(i)))
			}
		case *array.FixedSizeBinary:
			for i := range a.Len() {
				out = append(out, bytes.Clone(a.Value(i)))
			}
		default:
			return nil, fmt.Errorf("column %s: %s, want binary", name, c.DataType())
		}
	}
	return out, nil
}

// VisitBinaries calls fn with each value of a binary or fixed-size binary
// column, in row order, without copying: v is valid only during the call.
func (f *File) VisitBinaries(ctx context.Context, name string, fn func(i int, v []byte) error) error {
	ch, err := f.column(ctx, name)
	if err != nil {
		return err
	}
	defer ch.Release()
	return visitChunked(ch, name, 0, fn)
}

// StreamBinaries calls fn with each value of a binary column, in row order,
// like VisitBinaries, but does not read the column whole nor keep it
// (archive_canonical is ~64 MB for a 20,000-record batch). A required
// BYTE_ARRAY column (archive_canonical) is read page by page, fn seeing the
// values in the decompressed page itself; another binary column is read
// rows values at a time through Arrow, the next chunk decompressed on
// another goroutine while fn works on the current one. v is valid only
// during the call. A column already kept by an earlier read is visited from
// memory.
func (f *File) StreamBinaries(ctx context.Context, name string, rows int64, fn func(i int, v []byte) error) error {
	f.mu.Lock()
	_, kept := f.cols[name]
	f.mu.Unlock()
	if kept {
		return f.VisitBinaries(ctx, name, fn)
	}
	if ok, err := f.visitPages(name, fn); ok {
		return err
	}
	idx := f.sc.FieldIndices(name)
	if len(idx) != 1 {
		return fmt.Errorf("column %s: %w", name, ErrNoColumn)
	}
	cr, err := f.fr.GetColumn(ctx, idx[0])
	if err != nil {
		return fmt.Errorf("column %s: %w", name, err)
	}
	type chunk struct {
		ch  *arrow.Chunked
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, 1)
	total := f.pf.NumRows()
	go func() {
		defer close(chunks)
		for read := int64(0); read < total; {
			ch, err := cr.NextBatch(min(rows, total-read))
			if err == nil && ch.Len() == 0 {
				ch.Release()
				err = fmt.Errorf("%d values for %d rows", read, total)
			}
			if err != nil {
				chunks <- chunk{err: err} // buffered, and read before the consumer returns
				return
			}
			read += int64(ch.Len())
			select {
			case chunks <- chunk{ch: ch}:
			case <-ctx.Done():
				ch.Release()
				return
			}
		}
	}()
	// The consumer returns early only after cancel (deferred) ends the
	// producer's wait; drain releases what was decoded meanwhile.
	defer func() {
		cancel()
		for c := range chunks {
			if c.ch != nil {
				c.ch.Release()
			}
		}
	}()
	i := 0
	for c := range chunks {
		if c.err != nil {
			return fmt.Errorf("column %s: %w", name, c.err)
		}
		err := visitChunked(c.ch, name, i, fn)
		i += c.ch.Len()
		c.ch.Release()
		if err != nil {
			return err
		}
	}
	if int64(i) != total {
		return fmt.Errorf("column %s: %d values for %d rows", name, i, total)
	}
	return nil
}

// visitPages is StreamBinaries without Arrow for a required BYTE_ARRAY
// column: the values are read page by page straight from the decompressed
// page (no copy into an Arrow buffer that grows by doubling). ok is false
// when the column is not of that kind; the caller then reads it with Arrow.
func (f *File) visitPages(name string, fn func(i int, v []byte) error) (ok bool, err error) {
	col := f.pf.MetaData().Schema.ColumnIndexByName(name)
	if col < 0 {
		return false, nil
	}
	d := f.pf.MetaData().Schema.Column(col)
	if d.PhysicalType() != parquet.Types.ByteArray || d.MaxDefinitionLevel() != 0 || d.MaxRepetitionLevel() != 0 {
		return false, nil
	}
	values := make([]parquet.ByteArray, 256)
	i := 0
	for rg := range f.pf.NumRowGroups() {
		cc, err := f.pf.RowGroup(rg).Column(col)
		if err != nil {
			return true, fmt.Errorf("column %s: %w", name, err)
		}
		br, isBA := cc.(*file.ByteArrayColumnChunkReader)
		if !isBA {
			return true, fmt.Errorf("column %s: %T, want byte array", name, cc)
		}
		for br.HasNext() {
			// Values alias the current page: valid until the next read.
			_, n, err := br.ReadBatchInPage(int64(len(values)), values, nil, nil)
			if err != nil {
				return true, fmt.Errorf("column %s: %w", name, err)
			}
			for _, v := range values[:n] {
				if err := fn(i, v); err != nil {
					return true, err
				}
				i++
			}
		}
		if err := br.Err(); err != nil {
			return true, fmt.Errorf("column %s: %w", name, err)
		}
	}
	if int64(i) != f.pf.NumRows() {
		return true, fmt.Errorf("column %s: %d values for %d rows", name, i, f.pf.NumRows())
	}
	return true, nil
}

func visitChunked(ch *arrow.Chunked, name string, i int, fn func(i int, v []byte) error) error {
	for _, c := range ch.Chunks() {
		switch a := c.(type) {
		case *array.Binary:
			for j := range a.Len() {
				if err := fn(i, a.Value(j)); err != nil {
					return err
				}
				i++
			}
		case *array.FixedSizeBinary:
			for j := range a.Len() {
				if err := fn(i, a.Value(j)); err != nil {
					return err
				}
				i++
			}
		default:
			return fmt.Errorf("column %s: %s, want binary", name, c.DataType())
		}
	}
	return nil
}

// MayContain reports whether a string column may hold value, from the
// column's bloom filters (false positives at about 1 %, no false negatives).
// A file without a filter for the column may contain anything.
func (f *File) MayContain(column, value string) (bool, error) {
	idx := f.pf.MetaData().Schema.ColumnIndexByName(column)
	if idx < 0 {
		return false, fmt.Errorf("column %s: %w", column, ErrNoColumn)
	}
	bfr := f.pf.GetBloomFilterReader()
	for rg := range f.pf.NumRowGroups() {
		rgr, err := bfr.RowGroup(rg)
		if err != nil {
			return false, fmt.Errorf("bloom filter: %w", err)
		}
		bf, err := rgr.GetColumnBloomFilter(idx)
		if err != nil {
			return false, fmt.Errorf("bloom filter: %w", err)
		}
		if bf == nil {
			return true, nil
		}
		tbf := metadata.TypedBloomFilter[parquet.ByteArray]{BloomFilter: bf}
		if tbf.Check(parquet.ByteArray(value)) {
			return true, nil
		}
	}
	return false, nil
}
