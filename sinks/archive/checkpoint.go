package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/manifest"
)

// checkpointer writes a signed checkpoint over every partition head each
// checkpoint.interval, when a head moved. Heads come from the bucket, not from
// memory, so a checkpoint covers partitions owned by other archiver processes
// too; checkpoints of several processes form one chain because each is written
// with If-None-Match at the next sequence number (a loser re-reads and retries).
type checkpointer struct {
	a        *Archiver
	lastKeys map[int32]string // partition -> last manifest key seen
	lastSHA  map[string]string
	// The latest checkpoint in the bucket.
	known bool
	seq   uint64
	sha   string
	heads []manifest.Head
}

func newCheckpointer(a *Archiver) *checkpointer {
	return &checkpointer{a: a, lastKeys: map[int32]string{}, lastSHA: map[string]string{}}
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
				c.a.log.Warn("checkpoint failed; will retry at the next interval", "err", err)
			}
		}
	}
}

// checkpoint writes one checkpoint if any head moved since the latest one.
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
		if c.known && slices.Equal(heads, c.heads) {
			return nil
		}
		cp := &manifest.Checkpoint{
			Type: manifest.CheckpointType, Origin: c.a.cfg.OriginName(), Time: record.TimeOf(c.a.now()),
			KeyID: c.a.signer.KeyID(), Heads: heads,
		}
		if c.known {
			cp.Seq, cp.PrevSHA256 = c.seq+1, c.sha
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
		sum := sha256.Sum256(data)
		c.known, c.seq, c.sha, c.heads = true, cp.Seq, hex.EncodeToString(sum[:]), heads
		c.a.log.Debug("checkpoint written", "seq", cp.Seq, "partitions", len(heads))
		if c.a.tsa != nil {
			c.stamp(ctx, cp.Seq, data)
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

// loadLatest reads the latest checkpoint in the bucket unless already known.
func (c *checkpointer) loadLatest(ctx context.Context) error {
	if c.known {
		return nil
	}
	last, err := c.a.b.Last(ctx, c.a.lay.CheckpointsPrefix(), 20)
	if err != nil {
		return err
	}
	if last == "" {
		c.heads = nil
		return nil
	}
	// Last may return the .tsr of the latest checkpoint: both share its number.
	num := strings.TrimPrefix(last, c.a.lay.CheckpointsPrefix())
	if i := strings.IndexByte(num, '.'); i > 0 {
		num = num[:i]
	}
	seq, err := c.a.lay.ParseCheckpoint(c.a.lay.CheckpointsPrefix() + num + ".checkpoint")
	if err != nil {
		return err
	}
	data, _, err := c.a.b.Get(ctx, c.a.lay.Checkpoint(seq))
	if err != nil {
		return err
	}
	cp, _, err := manifest.OpenCheckpoint(data, c.a.ring)
	if err != nil {
		return fmt.Errorf("latest checkpoint %d: %w", seq, err)
	}
	sum := sha256.Sum256(data)
	c.known, c.seq, c.sha, c.heads = true, seq, hex.EncodeToString(sum[:]), cp.Heads
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
