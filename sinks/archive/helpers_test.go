package archive

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// env is one test's private world on the real servers: topics under a unique
// prefix, a bucket of its own (GOVERNANCE, removed afterwards), a signing key.
type env struct {
	t       *testing.T
	name    string
	kafka   topic.Config
	topics  raw.Topics
	b       *bucket.Bucket
	bcfg    bucket.Config
	keyFile string
	cfg     Config
	w       *topic.Writer
}

func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	brokers := testenv.Kafka(t)
	b, bcfg := archivetest.Bucket(t)
	e := &env{t: t, name: testenv.Name(t), b: b, bcfg: bcfg}
	e.kafka = topic.NewDefaultConfig()
	e.kafka.Brokers = brokers
	e.kafka.Partitions = partitions
	e.kafka.CommitInterval = 100 * time.Millisecond
	e.kafka.SessionTimeout, e.kafka.HeartbeatInterval = 6*time.Second, 500*time.Millisecond
	e.topics = raw.Topics{Prefix: e.name + "."}
	ctx := context.Background()
	if err := topic.EnsureTopics(ctx, e.kafka, e.topics); err != nil {
		t.Fatal(err)
	}
	w, err := topic.NewWriter(e.kafka)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	e.w = w
	e.keyFile = filepath.Join(t.TempDir(), "archive.key")
	priv, err := keys.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.WriteNew(e.keyFile, priv); err != nil {
		t.Fatal(err)
	}
	e.cfg = NewDefaultConfig()
	e.cfg.S3 = S3Config{Endpoint: bcfg.Endpoint, Secure: bcfg.Secure, Region: bcfg.Region, AccessKey: bcfg.AccessKey, SecretKey: bcfg.SecretKey, Bucket: bcfg.Bucket}
	e.cfg.Group = e.name + "-archive"
	e.cfg.SigningKeyFile = e.keyFile
	e.cfg.Retention = RetentionConfig{Mode: string(bucket.Governance), Period: retention.Exactly(time.Minute)}
	e.cfg.Batch.MaxRecords = 500
	e.cfg.Batch.MaxAge = 300 * time.Millisecond
	e.cfg.Checkpoint.Interval = 200 * time.Millisecond
	e.cfg.ShutdownTimeout = 10 * time.Second
	return e
}

func (e *env) layout() layout.Layout { return layout.New(e.cfg.Prefix) }

// produce writes records from..to-1 of archivetest to the decisions topic.
func (e *env) produce(from, to int) {
	e.t.Helper()
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		d := archivetest.Decision(i)
		recs = append(recs, &kgo.Record{Topic: e.topics.Decisions(), Key: []byte(d.Request.RequestKey), Value: archivetest.Value(i)})
	}
	for len(recs) > 0 {
		n := min(len(recs), 5000)
		if err := e.w.Produce(context.Background(), recs[:n]...); err != nil {
			e.t.Fatal(err)
		}
		recs = recs[n:]
	}
}

// shared is the Kafka connection and topic names of this env.
func (e *env) shared() topic.Shared { return topic.Shared{Kafka: e.kafka, Topics: e.topics} }

// running is an Archiver in a goroutine.
type running struct {
	a      *Archiver
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func (e *env) start(cfg Config) *running {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := New(cfg, e.shared(), Settings{Logger: log, Registry: reg})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(60 * time.Second):
			t.Fatal("archiver did not stop within 60s")
		}
	})
	if r.err != nil {
		t.Fatalf("archiver: %v", r.err)
	}
}

func (r *running) sealed() int { return int(testutilValue(r.a.m.records)) }

// waitCheckpointed waits until a checkpoint this process wrote covers n
// records (its global log size), instead of sleeping a few checkpoint
// intervals and hoping one was written meanwhile.
func (r *running) waitCheckpointed(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("a checkpoint covering %d records", n), 60*time.Second, func() bool {
		var m dto.Metric
		return r.a.m.logSize.Write(&m) == nil && int(m.GetGauge().GetValue()) == n
	})
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifyOpts is what an auditor of a test bucket runs.
func (e *env) verifyOpts(pub ...*keys.Ring) verify.Options {
	o := verify.Options{Bucket: e.b, Layout: e.layout(), RetentionMode: bucket.Governance}
	if len(pub) > 0 {
		o.Keys = pub[0]
	} else {
		priv, err := keys.Load(e.keyFile)
		if err != nil {
			e.t.Fatal(err)
		}
		o.Keys = keys.NewRing(priv.Public().(ed25519.PublicKey))
	}
	return o
}

func (e *env) verify(o verify.Options) *verify.Report {
	e.t.Helper()
	rep, err := verify.Run(context.Background(), o)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// archived returns, per partition, the offsets of every record referenced by
// a manifest, in chain order, and the record bytes by offset.
func (e *env) archived() map[int32][]int64 {
	e.t.Helper()
	ctx := context.Background()
	lay := e.layout()
	ring, err := verify.LoadBucketKeys(ctx, e.b, lay)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int32][]int64{}
	err = e.b.List(ctx, lay.ManifestsPrefix(), "", func(in bucket.Info) error {
		data, _, err := e.b.Get(ctx, in.Key)
		if err != nil {
			return err
		}
		m, _, err := manifest.Open(data, ring)
		if err != nil {
			return err
		}
		obj, _, err := e.b.Get(ctx, m.ObjectKey)
		if err != nil {
			return err
		}
		f, err := batch.Open(bytes.NewReader(obj))
		if err != nil {
			return err
		}
		defer f.Close()
		offs, err := f.Int64s(ctx, batch.ColOffset)
		if err != nil {
			return err
		}
		out[m.Partition] = append(out[m.Partition], offs...)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// kafkaOffsets returns every offset of the decisions topic, per partition.
func (e *env) kafkaOffsets() map[int32][]int64 {
	e.t.Helper()
	out := map[int32][]int64{}
	sc := topic.NewScanner(e.kafka)
	defer sc.Close()
	err := sc.ReadToEnd(context.Background(), e.topics.Decisions(), nil, topic.FromStart(), func(r *kgo.Record) error {
		out[r.Partition] = append(out[r.Partition], r.Offset)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// exactlyOnce checks that every Kafka record is in exactly one sealed batch.
func (e *env) exactlyOnce() int {
	e.t.Helper()
	got, want := e.archived(), e.kafkaOffsets()
	total := 0
	for p, offs := range want {
		g := append([]int64(nil), got[p]...)
		sort.Slice(g, func(i, j int) bool { return g[i] < g[j] })
		if len(g) != len(offs) {
			e.t.Fatalf("partition %d: %d records archived, %d in Kafka", p, len(g), len(offs))
		}
		for i := range offs {
			if g[i] != offs[i] {
				e.t.Fatalf("partition %d: archived offset %d where Kafka has %d (duplicate or gap)", p, g[i], offs[i])
			}
		}
		total += len(offs)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			e.t.Fatalf("partition %d archived but not in Kafka", p)
		}
	}
	return total
}

// warnings returns the report's warnings other than the anchor ones (a test
// archive without a witness or TSA is, rightly, warned about).
func warnings(r *verify.Report) []verify.Failure {
	var out []verify.Failure
	for _, w := range r.Warnings {
		if w.Check != verify.CheckAnchor {
			out = append(out, w)
		}
	}
	return out
}

func reportString(r *verify.Report) string {
	var b bytes.Buffer
	r.WriteText(&b)
	return b.String()
}

// testutilValue reads a counter.
func testutilValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

func newTSA(t *testing.T) *archivetest.TSA { return archivetest.NewTSA(t) }

type recordField = record.Field

func fields() []record.Field { return record.Fields() }
