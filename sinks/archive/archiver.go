package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/backoff"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/chain"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
	"github.com/auditline/auditline/sinks/archive/tsa"
	"github.com/auditline/auditline/sinks/archive/witness"
)

// Settings is what the caller hands the stage besides its configuration.
type Settings struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Archiver is the archive stage: a topic.Handler that seals each partition's
// records into batches. See the package doc for the guarantees.
type Archiver struct {
	cfg    Config
	topic  string
	lay    layout.Layout
	b      *bucket.Bucket
	signer *keys.Signer
	ring   *keys.Ring // our key and every key published in the bucket
	tsa    *tsa.Client
	reader *topic.Reader
	ws     []witness.Witness
	log    *slog.Logger
	m      *metrics
	now    func() time.Time

	mu    sync.Mutex
	parts map[int32]*partition

	// raw, when set, makes this the raw log of a raw topic (raw.go): each
	// event is sealed (encrypted) before it becomes a row.
	raw *rawSealer
}

// partition is the state of one assigned partition. It is touched only by the
// partition's own goroutine (Assigned, Handle, Tick, Revoked).
type partition struct {
	id   int32
	head head
	// expect is the offset after the last record seen (-1: none yet).
	expect int64
	// The open batch.
	rows     []batch.Row
	msgs     []*topic.Message
	bytes    int64
	openedAt time.Time
}

// head is where the partition's chain ends.
type head struct {
	known bool   // a manifest exists
	next  int64  // the To of the last manifest: the From of the next batch
	seq   uint64 // the Seq of the next manifest
	prev  string // hex SHA-256 of the last manifest object
	key   string // the last manifest's key
}

// New builds the stage. It loads the signing key (a local file, so that a bad
// key fails before anything starts) and connects nothing: Run joins the
// consumer group and reaches the bucket.
func New(cfg Config, shared topic.Shared, set Settings) (*Archiver, error) {
	return newArchiver(cfg, shared, shared.Topics.Decisions(), set)
}

// newArchiver builds the stage that seals decisionsTopic (the decisions, or a
// raw topic for NewRaw).
func newArchiver(cfg Config, shared topic.Shared, decisionsTopic string, set Settings) (*Archiver, error) {
	kafka := shared.Kafka
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if set.Logger == nil {
		set.Logger = slog.Default()
	}
	if set.Registry == nil {
		set.Registry = prometheus.NewRegistry()
	}
	priv, err := keys.Load(cfg.SigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("archive.signing_key_file: %w", err)
	}
	signer, err := keys.NewSigner(cfg.OriginName(), priv)
	if err != nil {
		return nil, fmt.Errorf("archive.origin: %w", err)
	}
	b, err := bucket.New(cfg.S3.BucketConfig())
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(set.Registry)
	if err != nil {
		return nil, fmt.Errorf("archive metrics: %w", err)
	}
	a := &Archiver{
		cfg: cfg, topic: decisionsTopic, lay: layout.New(cfg.Prefix), b: b, signer: signer,
		ring: keys.NewRing(signer.Public()), log: set.Logger, m: m, now: time.Now,
		parts: map[int32]*partition{},
	}
	if cfg.Checkpoint.TSAURL != "" {
		a.tsa = &tsa.Client{URL: cfg.Checkpoint.TSAURL}
	}
	if a.ws, err = cfg.Witness.Parsed(); err != nil {
		return nil, err
	}
	if cfg.Batch.MaxRecords > kafka.MaxOutstanding && kafka.MaxOutstanding > 0 {
		a.log.Warn("archive.batch.max_records exceeds kafka.max_outstanding: batches will be cut by age only",
			"max_records", cfg.Batch.MaxRecords, "max_outstanding", kafka.MaxOutstanding)
	}
	// An open batch's messages are outstanding until it is sealed: if a
	// batch could need more bytes than the Reader hands out before pausing
	// the partition, it would only ever be cut by age (one batch per
	// max_age). Cap it at half the bound (values plus the Reader's
	// per-message overhead then fit).
	if half := int64(kafka.MaxOutstandingBytes) / 2; half > 0 && cfg.Batch.MaxBytes > half {
		a.log.Warn("archive.batch.max_bytes exceeds half of kafka.max_outstanding_bytes: batches are cut at that half",
			"max_bytes", cfg.Batch.MaxBytes, "max_outstanding_bytes", kafka.MaxOutstandingBytes)
		a.cfg.Batch.MaxBytes = half
	}
	// Nor does it fetch further ahead than the open batch and the next one
	// (the store's rule too): more buys a sink that seals one batch at a
	// time per partition nothing, and costs memory.
	if kafka.MaxOutstandingBytes > 0 {
		kafka.MaxOutstandingBytes = int(min(int64(kafka.MaxOutstandingBytes), 2*a.cfg.Batch.MaxBytes))
	}
	tick := min(cfg.Batch.MaxAge/4, time.Second)
	a.reader, err = topic.NewReader(kafka, cfg.Group, []string{decisionsTopic}, a,
		topic.ReaderOptions{TickInterval: max(tick, 10*time.Millisecond), Logger: set.Logger})
	if err != nil {
		return nil, err
	}
	if err := set.Registry.Register(newLagCollector(a.reader.Stats)); err != nil {
		return nil, fmt.Errorf("archive metrics: %w", err)
	}
	return a, nil
}

// chainReader reads the archive with the archiver's keys.
func (a *Archiver) chainReader() chain.Reader {
	return chain.Reader{Bucket: a.b, Layout: a.lay, Keys: a.ring}
}

// KeyID returns the id of the signing key.
func (a *Archiver) KeyID() string { return a.signer.KeyID() }

// Ready reports whether the bucket answers and has Object Lock.
func (a *Archiver) Ready(ctx context.Context) error { return a.b.CheckObjectLock(ctx) }

// Run consumes the decisions topic until ctx ends, then seals what it can
// within archive.shutdown_timeout, writes a last checkpoint and returns nil.
// It returns an error when the bucket is unusable (no Object Lock, access
// denied) or a batch conflicts with what the archive already holds.
func (a *Archiver) Run(ctx context.Context) error {
	if err := a.retry(ctx, "start", a.start); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.log.Info("archive started", "bucket", a.b.Name(), "prefix", a.lay.Prefix, "origin", a.cfg.OriginName(),
		"key_id", a.signer.KeyID(), "retention", a.cfg.Retention.Mode+" "+a.cfg.Retention.Period.String())
	ckCtx, ckCancel := context.WithCancel(ctx)
	var cs *cosigner
	var written func(uint64)
	if len(a.ws) > 0 {
		cs = newCosigner(a, a.ws)
		written = cs.notify
	} else {
		a.log.Warn("no witness configured (archive.witness.witnesses): the global log is not anchored outside the bucket, so the newest batches could be removed without detection")
	}
	ck := newCheckpointer(a, written)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ck.loop(ckCtx) }()
	if cs != nil {
		wg.Add(1)
		go func() { defer wg.Done(); cs.loop(ckCtx) }()
	}

	err := a.reader.Run(ctx)
	ckCancel()
	wg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if cerr := ck.checkpoint(fctx); cerr != nil {
		a.log.Warn("final checkpoint", "err", cerr)
	}
	if cs != nil {
		// One last round, bounded: a witness that is down now is caught up
		// by the next run.
		for _, w := range cs.ws {
			if cerr := cs.catchUp(fctx, w); cerr != nil {
				a.log.Warn("final cosignature", "witness", w.Name, "err", cerr)
			}
		}
	}
	return err
}

// witnessHTTP is the HTTP client for witnesses.
func (a *Archiver) witnessHTTP() *http.Client {
	return &http.Client{Timeout: a.cfg.Witness.Timeout}
}

// start checks the bucket, publishes our public key and loads every
// published key (so that manifests signed before a rotation still open).
func (a *Archiver) start(ctx context.Context) error {
	if err := a.b.CheckObjectLock(ctx); err != nil {
		return err
	}
	pub := a.signer.Public()
	pemBytes, err := keys.MarshalPublic(pub)
	if err != nil {
		return err
	}
	vkey, err := keys.VerifierKey(a.cfg.OriginName(), pub)
	if err != nil {
		return err
	}
	for _, obj := range []struct {
		key  string
		data []byte
	}{
		{a.lay.PublicKey(a.signer.KeyID()), pemBytes},
		{a.lay.VerifierKey(a.signer.KeyID()), []byte(vkey + "\n")},
	} {
		if err := a.putOnce(ctx, "key", obj.key, obj.data, "text/plain; charset=utf-8"); err != nil {
			return err
		}
	}
	return a.loadKeys(ctx)
}

// loadKeys adds every public key published under keys/ to the ring.
func (a *Archiver) loadKeys(ctx context.Context) error {
	return a.b.List(ctx, a.lay.KeysPrefix(), "", func(in bucket.Info) error {
		if len(in.Key) < 4 || in.Key[len(in.Key)-4:] != ".pem" {
			return nil
		}
		data, _, err := a.b.Get(ctx, in.Key)
		if err != nil {
			return err
		}
		pub, err := keys.ParsePublic(data)
		if err != nil {
			a.log.Warn("ignoring unreadable published key", "key", in.Key, "err", err)
			return nil
		}
		a.ring.Add(pub)
		return nil
	})
}

// putOnce writes data at key unless the key already holds exactly data.
func (a *Archiver) putOnce(ctx context.Context, kind, key string, data []byte, contentType string) error {
	t0 := time.Now()
	err := a.b.Put(ctx, key, data, contentType, a.lock())
	if err == nil {
		a.m.upload.WithLabelValues(kind).Observe(time.Since(t0).Seconds())
		return nil
	}
	if !errors.Is(err, bucket.ErrExists) {
		return err
	}
	got, _, gerr := a.b.Get(ctx, key)
	if gerr != nil {
		return gerr
	}
	if !bytes.Equal(got, data) {
		return &ConflictError{Key: key, Reason: "the object exists with other content"}
	}
	return nil
}

func (a *Archiver) lock() bucket.Lock {
	return bucket.Lock{Mode: bucket.Mode(a.cfg.Retention.Mode), Until: a.cfg.Retention.Period.Until(a.now())}
}

// ConflictError means the archive already holds something that contradicts
// what this archiver would write: a batch object with other records, or a
// published key with other bytes. It is permanent; an operator must look.
type ConflictError struct {
	Key       string
	Partition int32
	From, To  int64
	Reason    string
}

func (e *ConflictError) Error() string {
	if e.To > 0 {
		return fmt.Sprintf("archive conflict at %s (partition %d, offsets [%d, %d)): %s", e.Key, e.Partition, e.From, e.To, e.Reason)
	}
	return fmt.Sprintf("archive conflict at %s: %s", e.Key, e.Reason)
}

// s3Backoff spaces the retries of an S3 operation.
var s3Backoff = backoff.Policy{Min: 100 * time.Millisecond, Max: 10 * time.Second}

// retry runs fn until it succeeds, fails permanently (a permanent bucket
// error or a conflict), or ctx ends, backing off from 100 ms to 10 s between
// attempts.
func (a *Archiver) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	return backoff.Retry(ctx, s3Backoff, func(ctx context.Context) error {
		err := fn(ctx)
		var ce *ConflictError
		if err != nil && (bucket.Permanent(err) || errors.As(err, &ce)) {
			return backoff.Permanent(err)
		}
		return err
	}, func(_ int, err error, wait time.Duration) {
		a.m.retries.Inc()
		a.log.Warn("s3 operation failed; retrying", "op", what, "err", err, "backoff", wait)
	})
}

// Assigned implements topic.PartitionObserver: it reads the partition's last
// manifest so that offsets it already seals are skipped.
func (a *Archiver) Assigned(ctx context.Context, p int32) error {
	st := &partition{id: p, expect: -1}
	if err := a.retry(ctx, "recover", func(ctx context.Context) error {
		h, err := a.readHead(ctx, p)
		st.head = h
		return err
	}); err != nil {
		return err
	}
	a.mu.Lock()
	a.parts[p] = st
	a.mu.Unlock()
	a.log.Info("partition recovered from its manifests", "partition", p, "next_offset", st.head.next, "next_seq", st.head.seq, "head", st.head.key)
	return nil
}

// readHead reads the last manifest of partition p.
func (a *Archiver) readHead(ctx context.Context, p int32) (head, error) {
	key, err := a.b.Last(ctx, a.lay.ManifestPrefix(p), 20)
	if err != nil || key == "" {
		return head{}, err
	}
	data, _, err := a.b.Get(ctx, key)
	if err != nil {
		return head{}, err
	}
	m, _, err := manifest.Open(data, a.ring)
	if err != nil {
		var me *manifest.Error
		if errors.As(err, &me) && me.Signature {
			// Perhaps signed by a key published after we started.
			if lerr := a.loadKeys(ctx); lerr == nil {
				m, _, err = manifest.Open(data, a.ring)
			}
		}
		if err != nil {
			return head{}, &ConflictError{Key: key, Partition: p, Reason: "the partition's last manifest does not open: " + err.Error()}
		}
	}
	if m.Partition != p || m.Topic != a.topic {
		return head{}, &ConflictError{Key: key, Partition: p, Reason: fmt.Sprintf("the last manifest belongs to %s partition %d, not %s partition %d (one prefix per topic)", m.Topic, m.Partition, a.topic, p)}
	}
	sum := sha256.Sum256(data)
	return head{known: true, next: m.To, seq: m.Seq + 1, prev: hex.EncodeToString(sum[:]), key: key}, nil
}

// Revoked implements topic.PartitionObserver: it seals the open batch (within
// archive.shutdown_timeout) and forgets the partition. Records it could not
// seal are not Done, so the next owner reads them again.
func (a *Archiver) Revoked(p int32) {
	a.mu.Lock()
	st := a.parts[p]
	delete(a.parts, p)
	a.mu.Unlock()
	if st == nil || len(st.rows) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := a.seal(ctx, st); err != nil {
		a.log.Warn("could not seal the open batch of a revoked partition; it will be read again", "partition", p, "records", len(st.rows), "err", err)
	}
	a.m.open.Sub(float64(len(st.rows)))
}

func (a *Archiver) part(p int32) *partition {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.parts[p]
}

// Handle implements topic.Handler.
func (a *Archiver) Handle(ctx context.Context, msgs []*topic.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	st := a.part(msgs[0].Partition)
	if st == nil {
		return fmt.Errorf("partition %d: records before assignment", msgs[0].Partition)
	}
	skipBelow := int64(-1)
	if st.head.known {
		skipBelow = st.head.next
	}
	var rows []batch.Row
	if a.raw != nil {
		var err error
		if rows, err = a.rawRows(ctx, msgs, skipBelow); err != nil {
			return err
		}
	} else {
		rows = newRows(a.topic, msgs, skipBelow)
	}
	for i, m := range msgs {
		if st.expect < 0 && st.head.known {
			st.expect = st.head.next
		}
		if st.expect >= 0 && m.Offset > st.expect {
			// Offsets without a record: transaction markers, or records
			// deleted by retention before they were archived. The chain
			// covers them either way; say so, because the latter is loss
			// upstream of the archive.
			a.m.gaps.Add(float64(m.Offset - st.expect))
			if m.Offset-st.expect > 1 {
				a.log.Warn("offsets without a record on the decisions topic (retention deleted records before they were archived?)",
					"partition", m.Partition, "from", st.expect, "to", m.Offset)
			}
		}
		st.expect = max(st.expect, m.Offset+1)
		if m.Offset < skipBelow {
			m.Done() // sealed by an existing manifest: a replay after a crash
			a.m.skipped.Inc()
			continue
		}
		if len(st.rows) == 0 {
			st.openedAt = a.now()
		}
		row := rows[i]
		if row.Error != "" && a.raw == nil {
			a.m.decodeErrors.Inc()
			a.log.Warn("archiving a value that is not a decision record", "partition", m.Partition, "offset", m.Offset, "err", row.Error)
		}
		st.rows = append(st.rows, row)
		st.msgs = append(st.msgs, m)
		st.bytes += int64(len(row.Canonical))
		a.m.open.Inc()
		if len(st.rows) >= a.cfg.Batch.MaxRecords || st.bytes >= a.cfg.Batch.MaxBytes {
			if err := a.seal(ctx, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// newRows decodes, canonicalises and hashes (leaf rule v2, bound to topicName
// and each message's partition and offset) the values of msgs at offsets
// from skipBelow on, in parallel: it is most of the archive's CPU, and one
// partition's records are otherwise handled on one core.
func newRows(topicName string, msgs []*topic.Message, skipBelow int64) []batch.Row {
	rows := make([]batch.Row, len(msgs))
	workers := min(runtime.GOMAXPROCS(0), len(msgs)/64+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(msgs); i += workers {
				if m := msgs[i]; m.Offset >= skipBelow {
					rows[i] = batch.NewRow(topicName, m.Partition, m.Offset, m.Timestamp, m.Value)
				}
			}
		}()
	}
	wg.Wait()
	return rows
}

// Tick implements topic.Ticker: it seals an open batch older than max_age.
func (a *Archiver) Tick(ctx context.Context, p int32, now time.Time) error {
	st := a.part(p)
	if st == nil || len(st.rows) == 0 || now.Sub(st.openedAt) < a.cfg.Batch.MaxAge {
		return nil
	}
	return a.seal(ctx, st)
}

// sealing is one batch on its way into the archive. Everything is computed
// once; uploads are retried from where they failed.
type sealing struct {
	topic     string
	partition int32
	from, to  int64
	rows      []batch.Row
	data      []byte // the Parquet object
	objectKey string
	objSHA    string
	objSize   int64
	root      []byte
}

// seal writes the open batch: Parquet object, then manifest (the commit
// point), then marks its messages Done. On return the open batch is empty,
// unless an error is returned (ctx ended, or a permanent conflict).
func (a *Archiver) seal(ctx context.Context, st *partition) error {
	t0 := time.Now()
	from := st.rows[0].Offset
	if st.head.known {
		from = st.head.next // the chain is contiguous: offsets between are control records
	}
	s := &sealing{topic: a.topic, partition: st.id, from: from, to: st.rows[len(st.rows)-1].Offset + 1, rows: st.rows}
	var err error
	if s.root, err = merkletree.Root(batch.Leaves(s.rows)); err != nil {
		return fmt.Errorf("partition %d: %w", st.id, err)
	}
	var buf bytes.Buffer
	err = batch.Encode(&buf, s.rows, batch.Meta{Topic: a.topic, Partition: st.id, From: s.from, To: s.to, Root: s.root},
		batch.Options{RowGroupBytes: a.cfg.Batch.RowGroupBytes, CompressionLevel: a.cfg.Batch.CompressionLevel})
	if err != nil {
		return fmt.Errorf("partition %d: %w", st.id, err)
	}
	s.data = buf.Bytes()
	s.objectKey = a.lay.Batch(st.id, s.from, s.to)
	sum := sha256.Sum256(s.data)
	s.objSHA, s.objSize = hex.EncodeToString(sum[:]), int64(len(s.data))

	if err := a.retry(ctx, "put batch", func(ctx context.Context) error { return a.putBatch(ctx, st.id, s) }); err != nil {
		return err
	}
	var written bool
	var mdata []byte
	if err := a.retry(ctx, "put manifest", func(ctx context.Context) error {
		var err error
		mdata, written, err = a.putManifest(ctx, st, s)
		return err
	}); err != nil {
		return err
	}
	if !written {
		// Another writer sealed this chain slot with another batch (a zombie
		// owner of the partition). Follow the chain as it now is.
		h, err := a.readHead(ctx, st.id)
		if err != nil {
			return err
		}
		a.log.Warn("chain slot taken by another writer; continuing after its batch", "partition", st.id, "slot", s.from, "new_next", h.next)
		st.head = h
		keepRows, keepMsgs := st.rows[:0], st.msgs[:0]
		st.bytes = 0
		for i, r := range st.rows {
			if r.Offset < h.next {
				st.msgs[i].Done()
				a.m.open.Dec()
				continue
			}
			keepRows, keepMsgs = append(keepRows, r), append(keepMsgs, st.msgs[i])
			st.bytes += int64(len(r.Canonical))
		}
		st.rows, st.msgs = keepRows, keepMsgs
		return nil
	}
	msum := sha256.Sum256(mdata)
	st.head = head{known: true, next: s.to, seq: st.head.seq + 1, prev: hex.EncodeToString(msum[:]), key: a.lay.Manifest(st.id, s.from)}
	for _, m := range st.msgs {
		m.Done()
	}
	n := len(st.rows)
	st.rows, st.msgs, st.bytes = nil, nil, 0
	a.m.open.Sub(float64(n))
	a.m.batches.Inc()
	a.m.records.Add(float64(n))
	a.m.bytes.Add(float64(s.objSize))
	a.m.seal.Observe(time.Since(t0).Seconds())
	a.log.Debug("batch sealed", "partition", st.id, "from", s.from, "to", s.to, "records", n, "bytes", s.objSize, "seq", st.head.seq-1)
	return nil
}

// putBatch uploads the Parquet object. If the key exists (a crash after the
// upload and before the manifest, or a retry after a lost response), the
// existing object is adopted when it holds exactly our records.
func (a *Archiver) putBatch(ctx context.Context, p int32, s *sealing) error {
	t0 := time.Now()
	err := a.b.Put(ctx, s.objectKey, s.data, "application/vnd.apache.parquet", a.lock())
	if err == nil {
		a.m.upload.WithLabelValues("batch").Observe(time.Since(t0).Seconds())
		return nil
	}
	if !errors.Is(err, bucket.ErrExists) {
		return err
	}
	existing, _, err := a.b.Get(ctx, s.objectKey)
	if err != nil {
		return err
	}
	if bytes.Equal(existing, s.data) {
		a.m.adopted.Inc()
		a.log.Info("adopted a batch object uploaded before a restart", "key", s.objectKey)
		return nil
	}
	if a.raw != nil {
		if err := sameRawRecords(ctx, existing, s); err != nil {
			return &ConflictError{Key: s.objectKey, Partition: p, From: s.from, To: s.to, Reason: "the raw batch object exists with other events: " + err.Error()}
		}
		a.m.adopted.Inc()
		a.log.Info("adopted a raw batch object uploaded before a restart", "key", s.objectKey)
		return nil
	}
	if err := sameRecords(ctx, existing, s.rows); err != nil {
		return &ConflictError{Key: s.objectKey, Partition: p, From: s.from, To: s.to, Reason: "the batch object exists with other records: " + err.Error()}
	}
	sum := sha256.Sum256(existing)
	s.objSHA, s.objSize = hex.EncodeToString(sum[:]), int64(len(existing))
	a.m.adopted.Inc()
	a.log.Info("adopted a batch object uploaded before a restart", "key", s.objectKey)
	return nil
}

// sameRecords checks that a batch file holds exactly rows: same offsets, same
// leaf hashes, in order.
func sameRecords(ctx context.Context, data []byte, rows []batch.Row) error {
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer f.Close()
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return err
	}
	leaves, err := f.Binaries(ctx, batch.ColLeaf)
	if err != nil {
		return err
	}
	if len(offs) != len(rows) {
		return fmt.Errorf("%d records, want %d", len(offs), len(rows))
	}
	for i := range rows {
		if offs[i] != rows[i].Offset || !bytes.Equal(leaves[i], rows[i].Leaf[:]) {
			return fmt.Errorf("record %d (offset %d) differs", i, offs[i])
		}
	}
	return nil
}

// putManifest signs and uploads the manifest. written is false when the slot
// holds another batch's manifest.
func (a *Archiver) putManifest(ctx context.Context, st *partition, s *sealing) (data []byte, written bool, err error) {
	minT, maxT := s.rows[0].Timestamp, s.rows[0].Timestamp
	for _, r := range s.rows {
		minT, maxT = min(minT, r.Timestamp), max(maxT, r.Timestamp)
	}
	m := &manifest.Manifest{
		Type: manifest.ManifestType, Origin: a.cfg.OriginName(), Topic: a.topic, Partition: st.id,
		Seq: st.head.seq, From: s.from, To: s.to, Count: int64(len(s.rows)), MinTime: minT, MaxTime: maxT,
		ObjectKey: s.objectKey, ObjectSize: s.objSize, ObjectSHA256: s.objSHA, MerkleRoot: hex.EncodeToString(s.root),
		PrevSHA256: st.head.prev, SchemaVersion: record.SchemaVersion, KeyID: a.signer.KeyID(), SealedAt: record.TimeOf(a.now()),
		LeafRule: merkletree.LeafRuleV2,
	}
	data, err = m.Sign(a.signer)
	if err != nil {
		return nil, false, err
	}
	key := a.lay.Manifest(st.id, s.from)
	t0 := time.Now()
	err = a.b.Put(ctx, key, data, "text/plain; charset=utf-8", a.lock())
	if err == nil {
		a.m.upload.WithLabelValues("manifest").Observe(time.Since(t0).Seconds())
		return data, true, nil
	}
	if !errors.Is(err, bucket.ErrExists) {
		return nil, false, err
	}
	// The slot is taken: by our own earlier attempt (same batch), or by
	// another writer.
	existing, _, err := a.b.Get(ctx, key)
	if err != nil {
		return nil, false, err
	}
	em, _, err := manifest.Open(existing, a.ring)
	if err == nil && em.ObjectKey == m.ObjectKey && em.ObjectSHA256 == m.ObjectSHA256 && em.MerkleRoot == m.MerkleRoot &&
		em.Seq == m.Seq && em.PrevSHA256 == m.PrevSHA256 && em.To == m.To {
		return existing, true, nil
	}
	return nil, false, nil
}
