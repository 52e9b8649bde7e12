package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// BenchmarkArchive measures, in one run and on the same 20,000 realistic
// records (3.2 KB of JSON each):
//
//   - baseline-sha256: raw SHA-256 of each value;
//   - baseline-parquet: a plain pqarrow+zstd write of the values as one
//     binary column;
//   - baseline-read: verify's ceiling — read that one-column Parquet file
//     back (pqarrow, from memory) and SHA-256 its bytes and every value;
//   - seal: the archive's whole path per record — decode, RFC 8785
//     canonicalisation, leaf hash, Merkle root, Parquet with every column,
//     upload to real MinIO under Object Lock, signed manifest upload;
//   - verify: `auditline verify` over what seal wrote and a checkpoint over
//     it — download, SHA-256, Parquet read, every leaf recomputed, roots,
//     chains, the global log recomputed, duplicate record versions, retention.
//     Its ratio-vs-read is the figure BENCHMARKS.md reports.
//
// Run: go test -run '^$' -bench Archive -benchtime 3x ./sinks/archive/
func BenchmarkArchive(b *testing.B) {
	const n = 20_000
	values := make([][]byte, n)
	for i := range values {
		values[i] = archivetest.Value(i)
	}
	var shaRate, pqRate, readRate float64
	var pqFile []byte // the last file baseline-parquet wrote
	b.Run("baseline-sha256", func(b *testing.B) {
		for b.Loop() {
			for _, v := range values {
				sha256.Sum256(v)
			}
		}
		shaRate = float64(n*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(shaRate, "records/s")
	})
	b.Run("baseline-parquet", func(b *testing.B) {
		mem := memory.NewGoAllocator()
		sc := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.BinaryTypes.Binary}}, nil)
		cpu0 := processCPU()
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
			pqFile = buf.Bytes()
		}
		pqRate = float64(n*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(pqRate, "records/s")
		b.ReportMetric((processCPU()-cpu0).Seconds()*1e6/float64(n*b.N), "cpu-µs/record")
	})
	var readCPU float64 // CPU seconds per record of baseline-read
	b.Run("baseline-read", func(b *testing.B) {
		ctx := context.Background()
		cpu0 := processCPU()
		for b.Loop() {
			sha256.Sum256(pqFile)
			pf, err := file.NewParquetReader(bytes.NewReader(pqFile))
			if err != nil {
				b.Fatal(err)
			}
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.NewGoAllocator())
			if err != nil {
				b.Fatal(err)
			}
			tbl, err := fr.ReadTable(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			for _, c := range tbl.Column(0).Data().Chunks() {
				col := c.(*array.Binary)
				for i := range col.Len() {
					sha256.Sum256(col.Value(i))
					got++
				}
			}
			tbl.Release()
			pf.Close()
			if got != n {
				b.Fatalf("read %d values, want %d", got, n)
			}
		}
		readRate = float64(n*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(readRate, "records/s")
		readCPU = (processCPU() - cpu0).Seconds() / float64(n*b.N)
		b.ReportMetric(readCPU*1e6, "cpu-µs/record")
	})

	bk, bcfg := archivetest.Bucket(b)
	keyFile := filepath.Join(b.TempDir(), "k")
	priv, _ := keys.Generate(nil)
	if err := keys.WriteNew(keyFile, priv); err != nil {
		b.Fatal(err)
	}
	cfg := NewDefaultConfig()
	cfg.S3 = S3Config{Endpoint: bcfg.Endpoint, Region: bcfg.Region, AccessKey: bcfg.AccessKey, SecretKey: bcfg.SecretKey, Bucket: bcfg.Bucket}
	cfg.SigningKeyFile = keyFile
	cfg.Retention = RetentionConfig{Mode: string(bucket.Governance), Period: retention.Exactly(time.Minute)}
	cfg.Batch.MaxRecords = n
	kc := topic.NewDefaultConfig()
	kc.Brokers = []string{"127.0.0.1:1"} // never dialled: seal is called directly
	a, err := New(cfg, topic.Shared{Kafka: kc, Topics: raw.Topics{Prefix: "bench."}}, Settings{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := a.start(ctx); err != nil {
		b.Fatal(err)
	}
	st := &partition{id: 0}
	var next int64
	var sealRate float64
	b.Run("seal", func(b *testing.B) {
		round := 0
		b.ReportAllocs()
		var cpu time.Duration // this process's CPU time in the timed part
		for b.Loop() {
			// Each round seals other record versions: verify rightly fails a
			// record version sealed twice. (Not a byte replace of
			// `"version":` in the value: its first match is policy.version, a
			// string, and the value was no longer JSON.)
			b.StopTimer()
			vals := values
			if round > 0 {
				vals = make([][]byte, n)
				for i := range values {
					d := archivetest.Decision(i)
					d.Version += uint32(10 * round)
					v, err := d.Canonical()
					if err != nil {
						b.Fatal(err)
					}
					vals[i] = v
				}
			}
			round++
			b.StartTimer()
			cpu0 := processCPU()
			msgs := make([]*topic.Message, n)
			for i, v := range vals {
				off := next + int64(i)
				msgs[i] = topic.NewMessage(&kgo.Record{Offset: off, Value: v, Timestamp: time.UnixMilli(1763807445118 + off)})
			}
			st.rows, st.msgs = newRows(a.topic, msgs, -1), msgs
			for i := range st.rows {
				if st.rows[i].Error != "" {
					b.Fatalf("record %d did not decode: %s", i, st.rows[i].Error)
				}
			}
			if err := a.seal(ctx, st); err != nil {
				b.Fatal(err)
			}
			cpu += processCPU() - cpu0
			next += n
		}
		sealRate = float64(n*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(sealRate, "records/s")
		// MinIO's work is another process's: this is the archive's own.
		b.ReportMetric(cpu.Seconds()*1e6/float64(n*b.N), "cpu-µs/record")
		if shaRate > 0 && pqRate > 0 {
			b.ReportMetric(sealRate/shaRate, "ratio-vs-sha256")
			b.ReportMetric(sealRate/pqRate, "ratio-vs-parquet")
		}
	})
	// A checkpoint over what seal wrote, so that verify recomputes the global
	// log as well.
	if err := newCheckpointer(a, nil).checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("verify", func(b *testing.B) {
		var rep *verify.Report
		cpu0 := processCPU()
		for b.Loop() {
			var err error
			rep, err = verify.Run(ctx, verify.Options{Bucket: bk, Layout: a.lay, Keys: keys.NewRing(a.signer.Public()), RetentionMode: bucket.Governance})
			if err != nil {
				b.Fatal(err)
			}
			if !rep.OK() {
				var s bytes.Buffer
				rep.WriteText(&s)
				b.Fatal(s.String())
			}
		}
		rate := float64(rep.Records) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "leaves/s")
		if shaRate > 0 && pqRate > 0 {
			b.ReportMetric(rate/shaRate, "ratio-vs-sha256")
			b.ReportMetric(rate/pqRate, "ratio-vs-parquet")
		}
		if readRate > 0 {
			b.ReportMetric(rate/readRate, "ratio-vs-read")
		}
		// The same ratio in CPU time (this process's, user + system): far
		// less sensitive to other load on the machine than rates are, but
		// blind to what verify gains from running on several cores.
		cpu := (processCPU() - cpu0).Seconds() / (float64(rep.Records) * float64(b.N))
		b.ReportMetric(cpu*1e6, "cpu-µs/leaf")
		if readCPU > 0 {
			b.ReportMetric(readCPU/cpu, "cpu-ratio-vs-read")
		}
	})
}

// processCPU is the CPU time this process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
