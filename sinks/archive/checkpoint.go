package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/chain"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/tlog"
)

// checkpointer writes a signed checkpoint over every partition head each
// checkpoint.interval, when a head moved. Heads come from the bucket, not from
// memory, so a checkpoint covers partitions owned by other archiver processes
// too; checkpoints of several processes form one chain because each is written
// with If-None-Match at the next sequence number (a loser re-reads and retries).
//
// Each checkpoint (v2) also extends the global log (package tlog): it appends
// the leaves of the batches sealed since the previous v2 checkpoint, read back
// from the bucket and checked against their manifests, and states the log's
// size, root and frontier, plus a signature over the C2SP tlog-checkpoint that
// the cosigner submits to witnesses.
type checkpointer struct {
	a        *Archiver
	rd       chain.Reader
	lastKeys map[int32]string // partition -> last manifest key seen
	// The latest checkpoint in the bucket (any version).
	known bool
	seq   uint64
	sha   string
	heads []manifest.Head
	isV2  bool
	// The global log as of the latest v2 checkpoint: its heads and the log
	// [0, size) (empty before the first v2 checkpoint).
	logHeads []manifest.Head
	log      *tlog.Segment
	// written is told the sequence number of each checkpoint written.
	written func(seq uint64)
}

// maxV1Scan bounds the search back for the latest v2 checkpoint when the
// latest one is v1 (an archiver of an older version wrote it during a rolling
// upgrade).
const maxV1Scan = 1000

func newCheckpointer(a *Archiver, written func(uint64)) *checkpointer {
	return &checkpointer{a: a, rd: a.chainReader(), lastKeys: map[int32]string{}, log: tlog.NewSegment(0), written: written}
}

func (c *checkpointer) loop(ctx context.Context) {
	t := time.NewTicker(c.a.cfg.Checkpoint.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.checkpoint(ctx); err != nil && ctx.Err() == nil {
				c.a.m.checkpointErrors.Inc()
				c.a.log.Error("checkpoint failed; will retry at the next interval", "err", err)
			}
		}
	}
}

// checkpoint writes one checkpoint if any head moved since the latest one (or
// the latest one does not carry the global log yet).
func (c *checkpointer) checkpoint(ctx context.Context) error {
	heads, err := c.collectHeads(ctx)
	if err != nil {
		return err
	}
	if len(heads) == 0 {
		return nil
	}
	for attempt := 0; attempt < 5; attempt++ {
		if err := c.loadLatest(ctx); err != nil {
			return err
		}
		if c.known && c.isV2 && slices.Equal(heads, c.heads) {
			return nil
		}
		seg := c.log.Clone()
		if err := c.rd.AppendLog(ctx, seg, c.logHeads, heads); err != nil {
			return fmt.Errorf("refusing to extend the global log (a sealed batch or manifest is missing or altered; run auditline verify): %w", err)
		}
		root, err := seg.Root()
		if err != nil {
			return err
		}
		cp := &manifest.Checkpoint{
			Type: manifest.CheckpointType, Origin: c.a.cfg.OriginName(), Time: record.TimeOf(c.a.now()),
			KeyID: c.a.signer.KeyID(), Heads: heads,
			LogSize: seg.End(), LogRoot: hex.EncodeToString(root), LogFrontier: tlog.EncodeHashes(seg.Frontier()),
		}
		if c.known {
			cp.Seq, cp.PrevSHA256 = c.seq+1, c.sha
		}
		if err := cp.SignLog(c.a.signer); err != nil {
			return err
		}
		data, err := cp.Sign(c.a.signer)
		if err != nil {
			return err
		}
		key := c.a.lay.Checkpoint(cp.Seq)
		t0 := time.Now()
		err = c.a.b.Put(ctx, key, data, "text/plain; charset=utf-8", c.a.lock())
		if errors.Is(err, bucket.ErrExists) {
			c.known = false // another process wrote this sequence number: re-read
			continue
		}
		if err != nil {
			return err
		}
		c.a.m.upload.WithLabelValues("checkpoint").Observe(time.Since(t0).Seconds())
		c.a.m.checkpoints.Inc()
		c.a.m.logSize.Set(float64(cp.LogSize))
		sum := sha256.Sum256(data)
		c.known, c.seq, c.sha, c.heads, c.isV2 = true, cp.Seq, hex.EncodeToString(sum[:]), heads, true
		c.logHeads, c.log = heads, seg
		c.a.log.Debug("checkpoint written", "seq", cp.Seq, "partitions", len(heads), "log_size", cp.LogSize)
		if c.a.tsa != nil {
			c.stamp(ctx, cp.Seq, data)
		}
		if c.written != nil {
			c.written(cp.Seq)
		}
		return nil
	}
	return errors.New("checkpoint: lost the race for a sequence number five times")
}

// stamp obtains an RFC 3161 token over the checkpoint and stores it beside it.
// A failure is counted and logged, never fatal: the checkpoint stands without
// a stamp, and verify reports it.
func (c *checkpointer) stamp(ctx context.Context, seq uint64, data []byte) {
	tctx, cancel := context.WithTimeout(ctx, c.a.cfg.Checkpoint.TSATimeout)
	defer cancel()
	tok, err := c.a.tsa.Stamp(tctx, data)
	if err == nil {
		err = c.a.putOnce(ctx, "timestamp", c.a.lay.Timestamp(seq), tok, "application/timestamp-reply")
	}
	if err != nil {
		c.a.m.tsaErrors.Inc()
		c.a.log.Warn("checkpoint not time-stamped", "seq", seq, "tsa", c.a.cfg.Checkpoint.TSAURL, "err", err)
	}
}

// loadLatest reads the latest checkpoint in the bucket unless already known,
// and the global log as of the latest v2 checkpoint.
func (c *checkpointer) loadLatest(ctx context.Context) error {
	if c.known {
		return nil
	}
	seq, ok, err := c.rd.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	c.heads, c.isV2, c.logHeads, c.log = nil, false, nil, tlog.NewSegment(0)
	if !ok {
		return nil
	}
	cp, data, err := c.rd.Checkpoint(ctx, seq)
	if err != nil {
		return fmt.Errorf("latest checkpoint: %w", err)
	}
	sum := sha256.Sum256(data)
	c.known, c.seq, c.sha, c.heads, c.isV2 = true, seq, hex.EncodeToString(sum[:]), cp.Heads, cp.Type == manifest.CheckpointType
	// The log continues from the latest v2 checkpoint.
	for s := seq; ; s-- {
		if cp.Type == manifest.CheckpointType {
			return c.setLog(cp)
		}
		if s == 0 || seq-s >= maxV1Scan {
			return nil // no v2 checkpoint yet: the log starts empty
		}
		if cp, _, err = c.rd.Checkpoint(ctx, s-1); err != nil {
			return fmt.Errorf("looking for the latest v2 checkpoint: %w", err)
		}
	}
}

func (c *checkpointer) setLog(cp *manifest.Checkpoint) error {
	front, err := tlog.DecodeHashes(cp.LogFrontier)
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", cp.Seq, err)
	}
	log, err := tlog.FromFrontier(cp.LogSize, front)
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", cp.Seq, err)
	}
	c.logHeads, c.log = cp.Heads, log
	return nil
}

// collectHeads returns the latest manifest of every partition in the bucket.
func (c *checkpointer) collectHeads(ctx context.Context) ([]manifest.Head, error) {
	folders, err := c.a.b.Folders(ctx, c.a.lay.ManifestsPrefix())
	if err != nil {
		return nil, err
	}
	var heads []manifest.Head
	for _, f := range folders {
		p, err := c.a.lay.ParsePartitionFolder(f)
		if err != nil {
			continue // not ours
		}
		last := c.lastKeys[p]
		if last == "" {
			if last, err = c.a.b.Last(ctx, f, 20); err != nil {
				return nil, err
			}
		} else if err := c.a.b.List(ctx, f, last, func(in bucket.Info) error { last = in.Key; return nil }); err != nil {
			return nil, err
		}
		if last == "" {
			continue
		}
		c.lastKeys[p] = last
		h, err := c.head(ctx, p, last)
		if err != nil {
			return nil, err
		}
		heads = append(heads, h)
	}
	slices.SortFunc(heads, func(x, y manifest.Head) int { return int(x.Partition) - int(y.Partition) })
	return heads, nil
}

func (c *checkpointer) head(ctx context.Context, p int32, key string) (manifest.Head, error) {
	data, _, err := c.a.b.Get(ctx, key)
	if err != nil {
		return manifest.Head{}, err
	}
	m, _, err := manifest.Open(data, c.a.ring)
	if err != nil {
		if lerr := c.a.loadKeys(ctx); lerr == nil {
			m, _, err = manifest.Open(data, c.a.ring)
		}
		if err != nil {
			return manifest.Head{}, fmt.Errorf("head of partition %d (%s): %w", p, key, err)
		}
	}
	sum := sha256.Sum256(data)
	return manifest.Head{Partition: p, Seq: m.Seq, To: m.To, Manifest: key, SHA256: hex.EncodeToString(sum[:])}, nil
}
