package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
)

// stamper hands out receive times and keeps the ones whose records Kafka has
// not settled yet, so that watermark can tell the lowest receive time a
// record still in flight may carry.
//
// Stamping and registering happen under one lock, and so does computing a
// watermark, which also raises the floor under every later stamp: no
// payload is ever stamped below a watermark already computed (the wall clock
// may step back; the stamp then stays at the floor).
type stamper struct {
	now   func() time.Time
	mu    sync.Mutex
	floor int64         // ms: the last watermark computed; no stamp goes below it
	open  map[int64]int // receive time (ms) → payloads stamped with it and not yet finished
}

func newStamper(now func() time.Time) *stamper {
	return &stamper{now: now, open: map[int64]int{}}
}

// stamp returns the receive time of a body about to be planned, registered
// as unfinished until finish(ms) is called once.
func (s *stamper) stamp() (time.Time, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := max(s.now().UnixMilli(), s.floor)
	s.open[ms]++
	return time.UnixMilli(ms), ms
}

// finish reports that the records stamped ms are settled: acknowledged by
// Kafka, refused, or never produced.
func (s *stamper) finish(ms int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.open[ms]; n > 1 {
		s.open[ms] = n - 1
	} else {
		delete(s.open, ms)
	}
}

// watermark returns W, the lowest receive time of an unfinished payload, or
// the clock when none is unfinished (never below an earlier W), and makes W
// the floor of later stamps. Every payload stamped below W was finished
// when watermark was called.
func (s *stamper) watermark() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.now().UnixMilli()
	for ms := range s.open { // at most one entry per millisecond of produce_timeout
		w = min(w, ms)
	}
	w = max(w, s.floor)
	s.floor = w
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

// watermarkTopics are the raw topics watermarks go to: the two enrich joins.
func (s *Server) watermarkTopics() []string {
	return []string{s.topics.RawLiteLLM(), s.topics.RawGateway()}
}

// partitionsRefresh is how often publishWatermarks asks for the partition
// counts again (a partition added to a topic gets watermarks from then on).
const partitionsRefresh = 10 * time.Second

// publishWatermarks writes a watermark to every partition of raw.litellm and
// raw.gateway every watermark_interval until ctx ends, then one last,
// leaving, watermark when leave is called (after every produce settled).
// A watermark that Kafka does not acknowledge is only logged: the next one
// supersedes it, and enrich waits for it (stream time does not advance
// without it).
func (s *Server) publishWatermarks(ctx context.Context) {
	t := time.NewTicker(s.cfg.WatermarkInterval)
	defer t.Stop()
	for {
		if err := s.writeWatermark(ctx, false); err != nil && ctx.Err() == nil {
			s.m.watermarks.WithLabelValues("error").Inc()
			s.log.Debug("watermark not written", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// writeWatermark computes W and produces it to every partition of the
// watermark topics, waiting for the acknowledgement (produce_timeout).
func (s *Server) writeWatermark(ctx context.Context, leaving bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProduceTimeout)
	defer cancel()
	if s.wmParts == nil || time.Since(s.wmPartsAt) > partitionsRefresh {
		parts := make(map[string]int, 2)
		for _, t := range s.watermarkTopics() {
			n, err := s.parts.Partitions(ctx, t)
			if err != nil {
				return err
			}
			parts[t] = n
		}
		s.wmParts, s.wmPartsAt = parts, time.Now()
	}
	w := raw.Watermark{Instance: s.instance, At: s.stamps.watermark(), Leaving: leaving}
	var recs []*kgo.Record
	for _, t := range s.watermarkTopics() {
		for p := range s.wmParts[t] {
			recs = append(recs, raw.WatermarkRecord(t, int32(p), w))
		}
	}
	if err := s.produceSafe(ctx, recs); err != nil {
		return err
	}
	s.m.watermarks.WithLabelValues("ok").Inc()
	s.m.watermarkLag.Set(time.Since(w.At).Seconds())
	return nil
}
