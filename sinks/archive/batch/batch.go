// Package batch is the archive's batch file: one Parquet object per batch of a
// partition's decision records, in offset order.
//
// Each row holds the record's columns and, beside them, what a verifier needs
// to recompute the batch's Merkle root with no code of ours:
//
//	archive_offset     int64            Kafka offset of the record
//	archive_timestamp  timestamp[ms]    Kafka timestamp (when enrich published it)
//	archive_leaf       fixed[32]        SHA-256(0x00 ‖ archive_canonical), RFC 6962 leaf hash
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
// Parquet: written with arrow-go's pqarrow, zstd, dictionary encoding and
// statistics, row groups cut by bytes (WriteBuffered + NewBufferedRowGroup),
// a split-block bloom filter on record_id (so `auditline prove` reads a
// footer and a filter instead of a column), and key-value metadata naming the
// batch (auditline.* keys). The Arrow schema is stored too.
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

// Format names this file layout (metadata key auditline.format).
const Format = "auditline.archive.batch/v1"

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

// NewRow decodes a Kafka value of auditline.decisions. It never fails: a value
// that does not decode is kept with Error set.
func NewRow(offset int64, ts time.Time, value []byte) Row {
	r := Row{Offset: offset, Timestamp: record.TimeOf(ts)}
	c := jsontext.Value(bytes.Clone(value))
	if err := c.Canonicalize(); err != nil {
		r.Canonical = bytes.Clone(value)
		r.Error = "not JSON (archive_canonical holds the raw value): " + err.Error()
	} else {
		r.Canonical = c
		var d record.Decision
		if err := jsonv2.Unmarshal(value, &d); err != nil {
			r.Error = "not a decision record: " + err.Error()
		} else {
			r.Decision = &d
		}
	}
	r.Leaf = merkletree.LeafHash(r.Canonical)
	return r
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

type appender func(b array.Builder, v reflect.Value)

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
		af, app, err := compileField(f)
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

// compileField maps one record.Field to an Arrow field and an appender that
// reads the field from its enclosing struct value.
func compileField(f record.Field) (arrow.Field, appender, error) {
	md := arrow.NewMetadata([]string{"json"}, []string{f.JSON})
	idx := f.Index
	switch f.Kind {
	case record.KindString:
		return arrow.Field{Name: f.Name, Type: arrow.BinaryTypes.String, Metadata: md}, func(b array.Builder, v reflect.Value) {
			b.(*array.StringBuilder).Append(v.FieldByIndex(idx).String())
		}, nil
	case record.KindBool:
		return arrow.Field{Name: f.Name, Type: arrow.FixedWidthTypes.Boolean, Metadata: md}, func(b array.Builder, v reflect.Value) {
			b.(*array.BooleanBuilder).Append(v.FieldByIndex(idx).Bool())
		}, nil
	case record.KindInt32:
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Int32, Metadata: md}, func(b array.Builder, v reflect.Value) {
			b.(*array.Int32Builder).Append(int32(v.FieldByIndex(idx).Int()))
		}, nil
	case record.KindInt64:
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Int64, Metadata: md}, func(b array.Builder, v reflect.Value) {
			b.(*array.Int64Builder).Append(v.FieldByIndex(idx).Int())
		}, nil
	case record.KindUint32:
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Uint32, Metadata: md}, func(b array.Builder, v reflect.Value) {
			b.(*array.Uint32Builder).Append(uint32(v.FieldByIndex(idx).Uint()))
		}, nil
	case record.KindFloat64:
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Float64, Metadata: md}, func(b array.Builder, v reflect.Value) {
			b.(*array.Float64Builder).Append(v.FieldByIndex(idx).Float())
		}, nil
	case record.KindNullFloat:
		return arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: md}, func(b array.Builder, v reflect.Value) {
			fv := v.FieldByIndex(idx)
			if fv.IsNil() {
				b.AppendNull()
				return
			}
			b.(*array.Float64Builder).Append(fv.Elem().Float())
		}, nil
	case record.KindTime:
		return arrow.Field{Name: f.Name, Type: tsType, Nullable: true, Metadata: md}, func(b array.Builder, v reflect.Value) {
			ms := v.FieldByIndex(idx).Int()
			if ms == 0 {
				b.AppendNull()
				return
			}
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(ms))
		}, nil
	case record.KindStrings:
		return arrow.Field{Name: f.Name, Type: arrow.ListOfNonNullable(arrow.BinaryTypes.String), Metadata: md}, func(b array.Builder, v reflect.Value) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			vb := lb.ValueBuilder().(*array.StringBuilder)
			fv := v.FieldByIndex(idx)
			for i := range fv.Len() {
				vb.Append(fv.Index(i).String())
			}
		}, nil
	case record.KindStructList:
		elemFields := make([]arrow.Field, len(f.Elem))
		elemApps := make([]appender, len(f.Elem))
		for i, ef := range f.Elem {
			af, app, err := compileField(ef)
			if err != nil {
				return arrow.Field{}, nil, err
			}
			elemFields[i], elemApps[i] = af, app
		}
		return arrow.Field{Name: f.Name, Type: arrow.ListOfNonNullable(arrow.StructOf(elemFields...)), Metadata: md}, func(b array.Builder, v reflect.Value) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			sb := lb.ValueBuilder().(*array.StructBuilder)
			fv := v.FieldByIndex(idx)
			for i := range fv.Len() {
				elem := fv.Index(i)
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
		parquet.WithDictionaryDefault(true),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(1 << 40), // cut by bytes below, not rows
		parquet.WithCreatedBy("auditline archive"),
		parquet.WithBloomFilterEnabledFor("record_id", true),
		parquet.WithBloomFilterFPPFor("record_id", 0.01),
		// Sized for the batch (the default expects a million values: 1 MiB per row group).
		parquet.WithBloomFilterNDVFor("record_id", int64(max(len(rows), 64))),
		// The canonical JSON and the leaf hashes do not repeat: dictionaries
		// would only cost memory.
		parquet.WithDictionaryFor(ColCanonical, false),
		parquet.WithDictionaryFor(ColLeaf, false),
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
	zeroV := reflect.ValueOf(&zero).Elem()
	var groupBytes int64
	for start := 0; start < len(rows); start += chunkRows {
		end := min(start+chunkRows, len(rows))
		var chunkBytes int64
		for i := start; i < end; i++ {
			r := &rows[i]
			rb.Field(0).(*array.Int64Builder).Append(r.Offset)
			rb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Timestamp))
			rb.Field(2).(*array.FixedSizeBinaryBuilder).Append(r.Leaf[:])
			rb.Field(3).(*array.BinaryBuilder).Append(r.Canonical)
			rb.Field(4).(*array.StringBuilder).Append(r.Error)
			v := zeroV
			if r.Decision != nil {
				v = reflect.ValueOf(r.Decision).Elem()
			}
			for j, app := range compiled.appenders {
				app(rb.Field(len(archiveFields)+j), v)
			}
			// The columns repeat the record's content: about twice its canonical size.
			chunkBytes += 2*int64(len(r.Canonical)) + 64
		}
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
	kv := [][2]string{
		{MetaFormat, Format},
		{MetaTopic, meta.Topic},
		{MetaPartition, strconv.Itoa(int(meta.Partition))},
		{MetaFrom, strconv.FormatInt(meta.From, 10)},
		{MetaTo, strconv.FormatInt(meta.To, 10)},
		{MetaCount, strconv.Itoa(len(rows))},
		{MetaRoot, fmt.Sprintf("%x", meta.Root)},
		{MetaSchemaVersion, strconv.Itoa(record.SchemaVersion)},
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

// File is an opened batch file.
type File struct {
	pf *file.Reader
	fr *pqarrow.FileReader
	sc *arrow.Schema
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
	return &File{pf: pf, fr: fr, sc: sc}, nil
}

// Close releases the file.
func (f *File) Close() error { return f.pf.Close() }

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

func (f *File) column(ctx context.Context, name string) (*arrow.Chunked, error) {
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
