package archive

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/auditline/auditline/internal/backoff"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/chain"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/tlog"
	"github.com/auditline/auditline/sinks/archive/witness"
)

// cosigner submits the archive's checkpoints to the configured witnesses
// (C2SP tlog-witness) and stores each cosigned checkpoint note in the bucket
// (layout.Cosignature). It runs beside sealing and never holds it up: a
// witness that is down or refuses is counted, logged and retried with
// backoff, and when it is back the cosigner catches up checkpoint by
// checkpoint from the size the witness last cosigned — each step with the
// consistency proof from the previous checkpoint — so every checkpoint ends
// up cosigned.
//
// A witness whose view contradicts the bucket (it has seen a larger log, or a
// size no checkpoint has) is never "fixed": that is the rollback the witness
// exists to catch. The cosigner logs it at error level and stops submitting
// to that witness until restarted; `auditline verify` reports it.
type cosigner struct {
	a     *Archiver
	rd    chain.Reader
	cl    *witness.Client
	ws    []witness.Witness
	wake  chan struct{}
	sizes map[string]int64 // witness name → size it last cosigned (-1: not known yet)
	stuck map[string]string
	cache map[uint64]*manifest.Checkpoint
}

func newCosigner(a *Archiver, ws []witness.Witness) *cosigner {
	c := &cosigner{a: a, rd: a.chainReader(), cl: &witness.Client{HTTP: a.witnessHTTP()}, ws: ws,
		wake: make(chan struct{}, 1), sizes: map[string]int64{}, stuck: map[string]string{}, cache: map[uint64]*manifest.Checkpoint{}}
	for _, w := range ws {
		c.sizes[w.Name] = -1
	}
	return c
}

// notify wakes the cosigner after a checkpoint was written.
func (c *cosigner) notify(uint64) {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// witnessBackoff spaces the retries of a witness that is down: at most a
// minute, so that cosigning resumes within a minute of the witness coming
// back (a retry is one small request).
var witnessBackoff = backoff.Policy{Min: time.Second, Max: time.Minute, Jitter: 0.2}

func (c *cosigner) loop(ctx context.Context) {
	failures := map[string]int{}
	next := map[string]time.Time{}
	t := time.NewTicker(max(c.a.cfg.Checkpoint.Interval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-t.C:
		}
		for _, w := range c.ws {
			if c.stuck[w.Name] != "" || time.Now().Before(next[w.Name]) {
				continue
			}
			err := c.catchUp(ctx, w)
			if err == nil || ctx.Err() != nil {
				failures[w.Name], next[w.Name] = 0, time.Time{}
				continue
			}
			c.a.m.witnessErrors.WithLabelValues(w.Name).Inc()
			var contra *contradiction
			if errors.As(err, &contra) {
				c.stuck[w.Name] = err.Error()
				c.a.log.Error("witness contradicts the bucket: its view of the log is not a prefix of ours (were batches or checkpoints removed?); no longer submitting to it", "witness", w.Name, "err", err)
				continue
			}
			failures[w.Name]++
			b := witnessBackoff.Wait(failures[w.Name], rand.Float64())
			next[w.Name] = time.Now().Add(b)
			c.a.log.Warn("witness unavailable; sealing goes on and cosigning catches up later", "witness", w.Name, "err", err, "retry_in", b)
		}
	}
}

// contradiction is a witness whose view the bucket cannot extend.
type contradiction struct{ msg string }

func (e *contradiction) Error() string { return e.msg }

// latestV2 returns the newest v2 checkpoint in the bucket (nil when none).
func (c *cosigner) latestV2(ctx context.Context) (*manifest.Checkpoint, error) {
	seq, ok, err := c.rd.LatestCheckpoint(ctx)
	if err != nil || !ok {
		return nil, err
	}
	for s := seq; ; s-- {
		cp, err := c.checkpoint(ctx, s)
		if err != nil {
			return nil, err
		}
		if cp.Type == manifest.CheckpointType {
			return cp, nil
		}
		if s == 0 || seq-s >= maxV1Scan {
			return nil, nil
		}
	}
}

func (c *cosigner) checkpoint(ctx context.Context, seq uint64) (*manifest.Checkpoint, error) {
	if cp, ok := c.cache[seq]; ok {
		return cp, nil
	}
	cp, _, err := c.rd.Checkpoint(ctx, seq)
	if err != nil {
		return nil, err
	}
	if len(c.cache) > 256 {
		clear(c.cache)
	}
	c.cache[seq] = cp
	return cp, nil
}

// catchUp brings one witness to the newest checkpoint.
func (c *cosigner) catchUp(ctx context.Context, w witness.Witness) error {
	latest, err := c.latestV2(ctx)
	if err != nil || latest == nil {
		return err
	}
	for attempt := 0; attempt < 1_000_000; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		size := c.sizes[w.Name]
		if size < 0 {
			// Learn the witness's size: old 0 gets a 409 with it, or — for a
			// witness that never cosigned this log — a cosignature. That
			// first submission is the first checkpoint of the log, so that a
			// new witness then cosigns every checkpoint, step by step.
			first, err := c.firstV2(ctx, latest)
			if err != nil {
				return err
			}
			note, err := first.LogNote()
			if err != nil {
				return err
			}
			seen, cosigned, err := c.cl.Latest(ctx, w, note, first.LogSize)
			if err != nil {
				return err
			}
			if cosigned != nil {
				if err := c.store(ctx, first.Seq, w, cosigned); err != nil {
					return err
				}
			}
			c.setSize(w, int64(seen))
			continue
		}
		switch {
		case uint64(size) > latest.LogSize:
			return &contradiction{fmt.Sprintf("witness %s has cosigned a log of %d leaves, the newest checkpoint in the bucket (seq %d) has %d", w.Name, size, latest.Seq, latest.LogSize)}
		case uint64(size) == latest.LogSize:
			if _, err := c.a.b.Stat(ctx, c.a.lay.Cosignature(latest.Seq, w.Key.KeyHash())); err == nil {
				return nil // cosigned and stored
			}
			note, err := latest.LogNote()
			if err != nil {
				return err
			}
			cosigned, err := c.cl.AddCheckpoint(ctx, w, uint64(size), nil, note)
			if err != nil {
				return c.conflict(w, err)
			}
			return c.store(ctx, latest.Seq, w, cosigned)
		}
		// The witness is behind: submit the checkpoint after the one it has.
		from, err := c.findBySize(ctx, uint64(size), latest)
		if err != nil {
			return err
		}
		to, err := c.nextV2(ctx, from, latest)
		if err != nil {
			return err
		}
		proof, err := c.proof(ctx, from, to)
		if err != nil {
			return err
		}
		note, err := to.LogNote()
		if err != nil {
			return err
		}
		cosigned, err := c.cl.AddCheckpoint(ctx, w, uint64(size), proof, note)
		if err != nil {
			if err := c.conflict(w, err); err != nil {
				return err
			}
			continue
		}
		if err := c.store(ctx, to.Seq, w, cosigned); err != nil {
			return err
		}
		c.setSize(w, int64(to.LogSize))
	}
	return errors.New("cosigner: too many steps")
}

// conflict handles a refusal: a 409 tells the witness's size (a race with
// another archiver process); anything else is returned. A fork (a 409 for
// the size the witness holds, or a 422) is a contradiction.
func (c *cosigner) conflict(w witness.Witness, err error) error {
	var ce *witness.ConflictError
	var se *witness.StatusError
	switch {
	case errors.As(err, &ce):
		if int64(ce.Size) == c.sizes[w.Name] {
			return &contradiction{fmt.Sprintf("witness %s refuses our checkpoint of %d leaves: it saw another log of that size (a fork)", w.Name, ce.Size)}
		}
		c.setSize(w, int64(ce.Size))
		return nil
	case errors.As(err, &se) && se.Code == 422:
		return &contradiction{err.Error()}
	}
	return err
}

func (c *cosigner) setSize(w witness.Witness, size int64) {
	c.sizes[w.Name] = size
	c.a.m.witnessSize.WithLabelValues(w.Name).Set(float64(size))
}

// store writes a cosigned checkpoint note to the bucket (write-once; another
// process may have stored the same checkpoint's cosignature first).
func (c *cosigner) store(ctx context.Context, seq uint64, w witness.Witness, cosigned []byte) error {
	err := c.a.b.Put(ctx, c.a.lay.Cosignature(seq, w.Key.KeyHash()), cosigned, "text/plain; charset=utf-8", c.a.lock())
	if err != nil && !errors.Is(err, bucket.ErrExists) {
		return err
	}
	c.a.m.cosigned.WithLabelValues(w.Name).Inc()
	return nil
}

// findBySize returns the v2 checkpoint whose log has size leaves (log sizes
// grow strictly with the v2 checkpoints' seq: a binary search).
func (c *cosigner) findBySize(ctx context.Context, size uint64, latest *manifest.Checkpoint) (*manifest.Checkpoint, error) {
	lo, hi := uint64(0), latest.Seq
	for lo <= hi {
		mid := lo + (hi-lo)/2
		cp, err := c.v2AtOrAfter(ctx, mid, latest.Seq)
		if err != nil {
			return nil, err
		}
		switch {
		case cp == nil || cp.LogSize > size:
			if mid == 0 {
				lo = 1
				hi = 0
				continue
			}
			hi = mid - 1
		case cp.LogSize < size:
			lo = cp.Seq + 1
		default:
			return cp, nil
		}
	}
	return nil, &contradiction{fmt.Sprintf("the witness has cosigned a checkpoint of %d leaves, which no checkpoint in the bucket has (removed, or the log forked)", size)}
}

// firstV2 returns the first v2 checkpoint: a binary search that assumes v2
// checkpoints follow the v1 ones (after a rolling upgrade they interleave for
// a while; then an early v2 checkpoint may be missed, and the witness starts
// later in the log).
func (c *cosigner) firstV2(ctx context.Context, latest *manifest.Checkpoint) (*manifest.Checkpoint, error) {
	lo, hi := uint64(0), latest.Seq
	for lo < hi {
		mid := lo + (hi-lo)/2
		cp, err := c.checkpoint(ctx, mid)
		if err != nil {
			return nil, err
		}
		if cp.Type == manifest.CheckpointType {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return c.checkpoint(ctx, lo)
}

// v2AtOrAfter returns the first v2 checkpoint with seq in [seq, last].
func (c *cosigner) v2AtOrAfter(ctx context.Context, seq, last uint64) (*manifest.Checkpoint, error) {
	for s := seq; s <= last; s++ {
		cp, err := c.checkpoint(ctx, s)
		if err != nil {
			return nil, err
		}
		if cp.Type == manifest.CheckpointType {
			return cp, nil
		}
	}
	return nil, nil
}

// nextV2 returns the v2 checkpoint after from.
func (c *cosigner) nextV2(ctx context.Context, from, latest *manifest.Checkpoint) (*manifest.Checkpoint, error) {
	cp, err := c.v2AtOrAfter(ctx, from.Seq+1, latest.Seq)
	if err == nil && cp == nil {
		err = fmt.Errorf("no v2 checkpoint after %d", from.Seq)
	}
	return cp, err
}

// proof returns the consistency proof from checkpoint from to checkpoint to:
// from's frontier, and the leaves of the batches to appends, read back.
func (c *cosigner) proof(ctx context.Context, from, to *manifest.Checkpoint) ([][]byte, error) {
	front, err := tlog.DecodeHashes(from.LogFrontier)
	if err != nil {
		return nil, err
	}
	seg := tlog.NewSegment(from.LogSize)
	if err := c.rd.AppendLog(ctx, seg, from.Heads, to.Heads); err != nil {
		return nil, err
	}
	if seg.End() != to.LogSize {
		return nil, fmt.Errorf("checkpoint %d: its batches give %d leaves, it says %d", to.Seq, seg.End(), to.LogSize)
	}
	return tlog.Consistency(from.LogSize, front, seg)
}
