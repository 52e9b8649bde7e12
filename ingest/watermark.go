package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
)

// stamper hands out receive times and keeps, per watermark topic, the ones
// whose records Kafka has not settled yet, so that watermark can tell the
// lowest receive time a record still in flight to that topic may carry.
//
// A stamp is registered for every watermark topic at once (the body is not
// planned yet), then narrowed to the topics its records really go to: a
// sparse topic's watermark is then not held back by the other topic's
// produces. Stamping and registering happen under one lock, and so does
// computing a watermark, which also raises that topic's floor: no payload is
// ever stamped below a watermark already computed (the wall clock may step
// back; the stamp then stays at the highest floor).
type stamper struct {
	now    func() time.Time
	topics []string
	mu     sync.Mutex
	floor  []int64         // per topic, ms: the last watermark computed
	open   []map[int64]int // per topic: receive time (ms) → payloads stamped with it and not yet finished
}

func newStamper(now func() time.Time, topics []string) *stamper {
	s := &stamper{now: now, topics: topics, floor: make([]int64, len(topics)), open: make([]map[int64]int, len(topics))}
	for i := range s.open {
		s.open[i] = map[int64]int{}
	}
	return s
}

// stamp is one body's receive time, registered as unfinished for the
// topics in mask (bit i: stamper.topics[i]).
type stamp struct {
	s    *stamper
	ms   int64
	mask uint64
}

// stamp returns the receive time of a body about to be planned, registered
// as unfinished for every watermark topic until narrowed or finished.
func (s *stamper) stamp() *stamp {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.now().UnixMilli()
	for _, f := range s.floor {
		ms = max(ms, f)
	}
	for _, o := range s.open {
		o[ms]++
	}
	return &stamp{s: s, ms: ms, mask: 1<<len(s.topics) - 1}
}

// at is the receive time.
func (st *stamp) at() time.Time { return time.UnixMilli(st.ms) }

// narrow finishes the stamp for the topics none of recs goes to.
func (st *stamp) narrow(recs []*kgo.Record) {
	s := st.s
	var used uint64
	for _, r := range recs {
		for i, t := range s.topics {
			if r.Topic == t {
				used |= 1 << i
			}
		}
	}
	st.release(st.mask &^ used)
}

// finish reports that the stamp's records are settled: acknowledged by
// Kafka, refused, or never produced. Calling it again does nothing.
func (st *stamp) finish() { st.release(st.mask) }

func (st *stamp) release(mask uint64) {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	mask &= st.mask
	for i, o := range s.open {
		if mask&(1<<i) == 0 {
			continue
		}
		if n := o[st.ms]; n > 1 {
			o[st.ms] = n - 1
		} else {
			delete(o, st.ms)
		}
	}
	st.mask &^= mask
}

// watermark returns W for topic i, the lowest receive time of a payload
// unfinished for it, or the clock when there is none (never below an
// earlier W), and makes W the topic's floor. Every payload stamped below W
// was finished for the topic when watermark was called.
func (s *stamper) watermark(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.now().UnixMilli()
	for ms := range s.open[i] { // at most one entry per millisecond of produce_timeout
		w = min(w, ms)
	}
	w = max(w, s.floor[i])
	s.floor[i] = w
	return time.UnixMilli(w)
}

// newInstanceID names this ingest process in its watermarks: the host, the
// process id and a random part, so that a restarted process is a new
// instance (enrich forgets the old one; docs/ingest.md "Watermarks").
func newInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "ingest"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// partitionsRefresh is how often publishWatermarks asks for the partition
// counts again (a partition added to a topic gets watermarks from then on).
const partitionsRefresh = 10 * time.Second

// publishWatermarks writes a watermark to every partition of raw.litellm and
// raw.gateway every watermark_interval until ctx ends, one loop per topic:
// each waits only for its own acknowledgement, so a sparse topic's
// watermarks are not paced by the busy topic's produce queue. A watermark
// that Kafka does not acknowledge is only counted: the next one supersedes
// it, and enrich waits for it (stream time does not advance without it).
// Serve writes the leaving watermarks after the loops stopped.
//
// Until every topic's first watermark is acknowledged, deliver accepts no
// body (joinGate): enrich learns of this instance from that first watermark,
// so no event of it can sit behind another instance's later watermark while
// enrich does not yet wait for it.
func (s *Server) publishWatermarks(ctx context.Context) {
	var wg sync.WaitGroup
	var waiting atomic.Int32 // topics without an acknowledged watermark yet
	waiting.Store(int32(len(s.stamps.topics)))
	for i := range s.stamps.topics {
		wg.Go(func() {
			t := time.NewTicker(s.cfg.WatermarkInterval)
			defer t.Stop()
			joined := false
			for {
				err := s.writeWatermark(ctx, i, false)
				if err != nil && ctx.Err() == nil {
					s.m.watermarks.WithLabelValues("error").Inc()
					s.log.Debug("watermark not written", "topic", s.stamps.topics[i], "err", err)
				}
				if err == nil && !joined {
					joined = true
					if waiting.Add(-1) == 0 {
						close(s.joined)
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// joinGate waits until this instance's first watermarks are written
// (publishWatermarks), at most produce_timeout, and refuses the body as
// retryable otherwise.
func (s *Server) joinGate(ctx context.Context) error {
	if s.joinedYet() == nil {
		return nil
	}
	t := time.NewTimer(s.cfg.ProduceTimeout)
	defer t.Stop()
	select {
	case <-s.joined:
		return nil
	case <-ctx.Done():
		return &retryable{reason: "kafka_unavailable", msg: "ingest is starting (its first watermarks are not written yet); retry later", cause: ctx.Err()}
	case <-t.C:
		return &retryable{reason: "kafka_unavailable", msg: "ingest is starting (its first watermarks are not written yet); retry later"}
	}
}

// joinedYet returns nil when no gate applies or the first watermarks are
// written.
func (s *Server) joinedYet() error {
	if !s.gated.Load() {
		return nil
	}
	select {
	case <-s.joined:
		return nil
	default:
		return errors.New("first watermarks not written yet")
	}
}

// writeLeaving writes the leaving watermark of every watermark topic.
func (s *Server) writeLeaving(ctx context.Context) error {
	var errs []error
	for i := range s.stamps.topics {
		if err := s.writeWatermark(ctx, i, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeWatermark computes W of watermark topic i and produces it to every
// partition of the topic, waiting for the acknowledgement (produce_timeout).
// Only topic i's loop (or, after it, writeLeaving) calls it for i.
func (s *Server) writeWatermark(ctx context.Context, i int, leaving bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProduceTimeout)
	defer cancel()
	t := s.stamps.topics[i]
	if s.wmParts[i] == 0 || time.Since(s.wmPartsAt[i]) > partitionsRefresh {
		n, err := s.parts.Partitions(ctx, t)
		if err != nil {
			return err
		}
		s.wmParts[i], s.wmPartsAt[i] = n, time.Now()
	}
	w := raw.Watermark{Instance: s.instance, At: s.stamps.watermark(i), Leaving: leaving}
	recs := make([]*kgo.Record, s.wmParts[i])
	for p := range recs {
		recs[p] = raw.WatermarkRecord(t, int32(p), w)
	}
	if err := s.marks.Produce(ctx, recs...); err != nil {
		return err
	}
	s.m.watermarks.WithLabelValues("ok").Inc()
	s.m.watermarkLag.WithLabelValues(t).Set(time.Since(w.At).Seconds())
	return nil
}
