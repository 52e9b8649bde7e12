package enrich

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// Header names on decision records.
const (
	HeaderRecordID     = "auditline-record-id"
	HeaderVersion      = "auditline-version"
	HeaderCompleteness = "auditline-completeness"
	// HeaderDLQDetail and HeaderOrigin are set on DLQ records enrich writes:
	// the reason in words, and "<topic>/<partition>/<offset>" of the raw
	// event (which stays where it is).
	HeaderDLQDetail = "auditline-dlq-detail"
	HeaderOrigin    = "auditline-origin"
)

// DLQ reasons enrich writes (raw.HeaderReason).
const (
	ReasonUndecodable    = "enrich_undecodable"
	ReasonLate           = "late_beyond_amend_window"
	ReasonSourcesUnavail = "amend_sources_unavailable"
	ReasonUnencodable    = "enrich_unencodable"
	// ReasonConflict: an event id enrich already holds arrived with other
	// bytes. The first bytes stay the evidence; the other copy is kept here,
	// never silently dropped as a duplicate.
	ReasonConflict = "event_id_conflict"
)

// request is one request waiting for its final event.
type request struct {
	key        string
	events     []*event.Event
	msgs       []*topic.Message
	firstAt    record.Time // first receive time
	lastLLM    record.Time // latest receive time of a LiteLLM event (or of a later attempt event)
	hasLiteLLM bool
	hasStarted bool // a request_started marker or an attempt event of the LiteLLM plugin joined
	success    bool
	access     bool        // an access event: a record of its own, complete at once
	deadline   record.Time // stream time at which it is emitted
	idx        int         // in the deadline heap
}

// completeness of a request emitted at its deadline.
func (r *request) completeness() string {
	switch {
	case r.access:
		return record.Complete // an access event is the whole record
	case !r.hasLiteLLM && r.hasStarted:
		// The plugin's marker says the request started; no outcome came.
		return record.MissingOutcome
	case !r.hasLiteLLM || fold.MissingFailure(r.events):
		// No LiteLLM event, or LiteLLM's success says attempts failed but
		// their failure payload never came (a lost logger batch).
		return record.TimedOut
	}
	return record.Complete
}

// partition is the state of one partition number. Only its goroutine (Handle,
// Tick, Assigned) touches it.
type partition struct {
	h        *Processor
	id       int32
	label    string
	clock    *streamClock
	pending  map[string]*request
	queue    deadlines
	cache    *cache
	burst    burstState
	idleWall time.Time // wall time of the last Tick; zero: use h.wall()
	// next is, per input topic, the offset after the last message handled
	// (absent until one was): with the Reader's high watermark it tells
	// whether the topic is lagging.
	next map[string]int64

	// Collected during one Handle or Tick, written by flush.
	out      []*kgo.Record
	done     []*topic.Message
	amends   []*emitted
	pending1 []*emitted // first versions built this flush (cache entries to add)

	// Scratch space of one emission, reused (never referenced after it):
	// the Decision being built and its canonical encoding, whose exact-size
	// copy is what the produced record keeps.
	dec record.Decision
	enc []byte
}

func newPartition(h *Processor, p int32) *partition {
	s := &partition{
		h: h, id: p, label: strconv.Itoa(int(p)),
		clock:   newStreamClock(h.cfg.IdleAfter, h.cfg.WatermarkTimeout),
		next:    map[string]int64{},
		pending: map[string]*request{},
		cache:   newCache(h.cfg.CacheBytes, h.cfg.AmendWindow.Milliseconds()),
	}
	// Both inputs count as active from the start, so that a success read
	// before the other topic's first fetch waits (at most idle_after) for it.
	for _, t := range []string{h.topics.RawLiteLLM(), h.topics.RawGateway()} {
		s.clock.observe(t, 0, h.wall())
	}
	s.burst.auto = h.cfg.Sampling.Auto
	s.burst.switched = func(on bool) {
		v := 0.0
		if on {
			v = 1
		}
		h.m.burst.WithLabelValues(s.label).Set(v)
		h.log.Info("automatic burst sampling", "partition", p, "on", on)
	}
	return s
}

func (s *partition) wallNow() time.Time {
	if !s.idleWall.IsZero() {
		return s.idleWall
	}
	return s.h.wall()
}

// rebuild re-reads the decisions emitted to this partition within the amend
// window, and the burst switches within the burst lookback. It returns how
// many decisions it read.
func (s *partition) rebuild(ctx context.Context) (int, error) {
	h := s.h
	now := h.wall()
	n := 0
	err := h.scan.Scan(ctx, h.topics.Decisions(), s.id, now.Add(-h.cfg.AmendWindow).UnixMilli(), true, func(r *kgo.Record) error {
		n++
		d, err := parseHead(r.Value)
		if err != nil {
			h.log.Warn("undecodable decision skipped in rebuild", "partition", r.Partition, "offset", r.Offset, "err", err)
			return nil
		}
		if old := s.cache.get(d.Request.RequestKey); old != nil && old.version >= d.Version {
			return nil
		}
		s.cache.put(d.entry(record.TimeOf(r.Timestamp)))
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("read %s: %w", h.topics.Decisions(), err)
	}
	if h.cfg.BurstLookback > 0 {
		err = h.scan.Scan(ctx, h.topics.RawGateway(), s.id, now.Add(-h.cfg.BurstLookback).UnixMilli(), true, func(r *kgo.Record) error {
			if raw.Source(raw.Header(r, raw.HeaderSource)) != raw.SourceOversight {
				return nil
			}
			if ev, err := event.FromRecord(r); err == nil && ev.Oversight.Kind == event.KindSamplingControl {
				s.burst.addControl(ev.ID, ev.Oversight)
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("read %s: %w", h.topics.RawGateway(), err)
		}
	}
	return n, nil
}

// route takes one message: joins it to its pending request, recognises it as
// a duplicate or a late event of an emitted record, or starts a request.
func (s *partition) route(ctx context.Context, m *topic.Message) error {
	h := s.h
	s.next[m.Topic] = m.Offset + 1
	if raw.IsWatermark(m.Record) {
		// Not an event: it only moves stream time, and is Done at once.
		s.idleWall = time.Time{}
		if w, ok := raw.ParseWatermark(m.Record); ok {
			s.clock.watermark(m.Topic, w.Instance, record.TimeOf(w.At), w.Leaving, s.wallNow())
			h.m.watermarks.WithLabelValues("ok").Inc()
		} else {
			h.m.watermarks.WithLabelValues("malformed").Inc()
		}
		m.Done()
		return nil
	}
	ev, err := s.decode(m.Record)
	if err != nil {
		h.m.events.WithLabelValues(raw.Header(m.Record, raw.HeaderSource), "dlq").Inc()
		s.toDLQ(m, ReasonUndecodable, err.Error())
		return nil
	}
	s.idleWall = time.Time{}
	s.clock.observe(m.Topic, ev.ReceivedAt, s.wallNow())
	src := string(ev.Source)
	if o := ev.Oversight; o != nil && o.Kind == event.KindSamplingControl {
		// Its effect (the burst timeline) is rebuilt from raw.gateway on
		// assignment, so it is Done at once.
		s.burst.addControl(ev.ID, o)
		h.m.events.WithLabelValues(src, "control").Inc()
		m.Done()
		return nil
	}
	if r := s.pending[ev.Key]; r != nil {
		if old := sameID(r.events, ev); old != nil && old.SHA256 != ev.SHA256 {
			s.conflict(m, ev, old.SHA256)
			return nil
		}
		s.join(r, ev, m)
		h.m.events.WithLabelValues(src, "joined").Inc()
		return nil
	}
	e := s.cache.get(ev.Key)
	if e == nil && ev.Oversight != nil && ev.Oversight.Ref != nil {
		if e, err = s.fetchRef(ctx, ev); err != nil {
			return err
		}
	}
	if e != nil {
		switch {
		case e.has(ev.ID):
			if sum := e.sum(ev.ID); sum != "" && sum != ev.SHA256 {
				s.conflict(m, ev, sum)
				return nil
			}
			h.m.events.WithLabelValues(src, "duplicate").Inc()
			m.Done() // the decision reflecting it is already acknowledged
		case slices.ContainsFunc(e.late, func(x *event.Event) bool { return x.ID == ev.ID }):
			if old := sameID(e.late, ev); old.SHA256 != ev.SHA256 {
				s.conflict(m, ev, old.SHA256)
				return nil
			}
			h.m.events.WithLabelValues(src, "duplicate").Inc()
			e.msgs = append(e.msgs, m)
		default:
			h.m.events.WithLabelValues(src, "amend").Inc()
			if len(e.late) == 0 {
				s.amends = append(s.amends, e)
			}
			e.late = append(e.late, ev)
			e.msgs = append(e.msgs, m)
		}
		return nil
	}
	if o := ev.Oversight; o != nil && o.Kind != "approval" {
		// A review, override or escalation concerns a record that exists; its
		// record left memory and no decision_ref led back to it. The raw event
		// stays in Kafka and in ClickHouse's raw_events; the DLQ record says
		// why it is in no decision.
		//
		// LiteLLM and gateway events for an unknown key start a request
		// instead: judging them late by their own timestamps would trust the
		// sender's clock, and LiteLLM never re-sends an event hours later.
		h.m.events.WithLabelValues(src, "late").Inc()
		s.toDLQ(m, ReasonLate, fmt.Sprintf("no record of request %q in memory (amend window %s) and no usable decision_ref", ev.Key, h.cfg.AmendWindow))
		return nil
	}
	h.m.events.WithLabelValues(src, "new").Inc()
	r := &request{key: ev.Key, firstAt: ev.ReceivedAt}
	s.pending[ev.Key] = r
	s.join(r, ev, m)
	heap.Push(&s.queue, r)
	return nil
}

// decode decodes a raw record; LiteLLM content is copied out only under a
// capture policy that keeps it.
func (s *partition) decode(r *kgo.Record) (*event.Event, error) {
	if s.h.builder.KeepsContent() {
		return event.FromRecord(r)
	}
	return event.FromRecordWithoutContent(r)
}

// sameID returns the event of evs with ev's id, or nil.
func sameID(evs []*event.Event, ev *event.Event) *event.Event {
	for _, x := range evs {
		if x.ID == ev.ID {
			return x
		}
	}
	return nil
}

// conflict sends m, an event whose id enrich holds with other bytes (sum),
// to the DLQ.
func (s *partition) conflict(m *topic.Message, ev *event.Event, sum string) {
	s.h.m.events.WithLabelValues(string(ev.Source), "conflict").Inc()
	s.h.log.Warn("event id seen with other content; the first stays the evidence", "event_id", ev.ID, "key", ev.Key,
		"kept_sha256", sum, "refused_sha256", ev.SHA256)
	s.toDLQ(m, ReasonConflict, fmt.Sprintf("event id %s is already part of request %q with sha256 %s; this copy has sha256 %s", ev.ID, ev.Key, sum, ev.SHA256))
}

// join adds ev to a pending request and recomputes its deadline. The
// message's bytes are released (the request holds the decoded event, not
// the payload), so that kafka.max_outstanding_bytes bounds what pending
// requests really hold: past it the partition is paused until requests are
// emitted, never dropped.
func (s *partition) join(r *request, ev *event.Event, m *topic.Message) {
	m.Release(ev.Size())
	r.events = append(r.events, ev)
	r.msgs = append(r.msgs, m)
	r.firstAt = minNonZero(r.firstAt, ev.ReceivedAt)
	r.access = r.access || ev.Access != nil
	if l := ev.LiteLLM; l != nil {
		r.hasLiteLLM = true
		r.lastLLM = max(r.lastLLM, ev.ReceivedAt)
		r.success = r.success || l.Status == "success"
	}
	r.hasStarted = r.hasStarted || ev.Started != nil || ev.Attempt != nil
	if ev.Attempt != nil && r.hasLiteLLM {
		// The router goes on after LiteLLM logged a request's first failure:
		// each later call's attempt event gives the request the failure
		// grace again, so the first version holds the route, not an
		// amendment.
		r.lastLLM = max(r.lastLLM, ev.ReceivedAt)
	}
	switch {
	case r.access:
		// An access event is the whole record: emitted as soon as stream
		// time reaches it.
		r.deadline = r.firstAt
	case r.success:
		// Final: emitted once stream time passes its receive time by
		// success_delay, i.e. once the other input topic has been read that
		// far too (a gateway event received about when the success was is
		// then joined into version 1, not amended in).
		r.deadline = r.lastLLM + record.Time(s.h.cfg.SuccessDelay.Milliseconds())
	case r.hasLiteLLM:
		r.deadline = r.lastLLM + record.Time(s.h.cfg.FailureGrace.Milliseconds())
	case r.hasStarted:
		// The plugin proved the request started: its outcome may take as long
		// as the request itself (a long stream) plus the plugin's delivery.
		r.deadline = r.firstAt + record.Time(s.h.cfg.OutcomeWait.Milliseconds())
	default:
		r.deadline = r.firstAt + record.Time(s.h.cfg.LiteLLMWait.Milliseconds())
	}
	if r.idx >= 0 && r.idx < len(s.queue) && s.queue[r.idx] == r {
		heap.Fix(&s.queue, r.idx)
	}
}

// flush emits what is due at the current stream time, produces everything
// collected, and only then reports the messages Done.
func (s *partition) flush(ctx context.Context) error {
	h := s.h
	before := s.clock.now
	paused := s.lagging()
	now := s.clock.advance(s.wallNow())
	if paused != "" && now == before && s.clock.holds(paused) && len(s.queue) > 0 {
		// An input partition paused by backpressure holds stream time
		// still: its records cannot be read until pending requests are
		// emitted, and these wait for stream time. Emit the oldest half
		// early, as max_pending would (counted, timed_out), rather than let
		// the wall clock cut every request or stop for good.
		for n := (len(s.queue) + 1) / 2; n > 0; n-- {
			s.emitEarly(now)
		}
	}
	s.burst.advance(now)
	s.burst.update(now)
	for len(s.queue) > 0 && s.queue[0].deadline <= now {
		r := heap.Pop(&s.queue).(*request)
		s.emitFirst(r, r.completeness(), now)
	}
	for len(s.pending) > h.cfg.MaxPending {
		s.emitEarly(now)
	}
	for _, e := range s.amends {
		if err := s.amend(ctx, e, now); err != nil {
			return err
		}
	}
	s.amends = s.amends[:0]

	if len(s.out) > 0 {
		start := time.Now()
		if err := h.prod.Produce(ctx, s.out...); err != nil {
			return fmt.Errorf("produce %d records to %s: %w", len(s.out), h.topics.Decisions(), err)
		}
		h.m.produceSecs.Observe(time.Since(start).Seconds())
		for _, r := range s.out {
			if r.Topic != h.decisions {
				h.m.dlq.WithLabelValues(raw.Header(r, raw.HeaderReason)).Inc()
			} else {
				h.m.decisions.WithLabelValues(raw.Header(r, HeaderCompleteness)).Inc()
			}
		}
	}
	for _, m := range s.done {
		m.Done()
	}
	clear(s.out)
	s.out = s.out[:0]
	clear(s.done)
	s.done = s.done[:0]
	s.cache.evict(now)

	h.m.pending.WithLabelValues(s.label).Set(float64(len(s.pending)))
	h.m.cacheBytes.WithLabelValues(s.label).Set(float64(s.cache.bytes))
	h.m.cacheSize.WithLabelValues(s.label).Set(float64(s.cache.len()))
	if now > 0 {
		h.m.streamLag.WithLabelValues(s.label).Set(h.wall().Sub(now.Std()).Seconds())
	}
	return nil
}

// emitEarly emits the request with the nearest deadline before it is due
// (max_pending, or the backpressure valve), counted, as timed_out or
// missing_outcome: an event that comes later amends it.
func (s *partition) emitEarly(now record.Time) {
	r := heap.Pop(&s.queue).(*request)
	s.h.m.early.Inc()
	c := record.TimedOut
	if !r.hasLiteLLM && r.hasStarted {
		c = record.MissingOutcome
	}
	s.emitFirst(r, c, now)
}

// lagging tells the clock which input topics have records not handled yet,
// and returns one of them that is paused for backpressure, if any.
func (s *partition) lagging() (paused string) {
	if s.h.pos == nil {
		return ""
	}
	for t, next := range s.next {
		hwm, p, ok := s.h.pos.Position(t, s.id)
		lag := ok && hwm > next
		s.clock.setLagging(t, lag)
		if lag && p {
			paused = t
		}
	}
	return paused
}

func (s *partition) context(prior *fold.Sample) fold.Context {
	return fold.Context{Alerts: s.h.alerts, Burst: s.burst.on, Prior: prior}
}

// emitFirst builds version 1 of a pending request.
func (s *partition) emitFirst(r *request, completeness string, now record.Time) {
	delete(s.pending, r.key)
	s.dec = s.h.builder.Build(r.events, s.context(nil))
	d := &s.dec
	d.Version, d.Completeness = 1, completeness
	if err := s.produce(d); err != nil {
		s.h.log.Error("cannot encode decision; events sent to the DLQ", "record_id", d.RecordID, "err", err)
		for _, m := range r.msgs {
			s.toDLQ(m, ReasonUnencodable, err.Error())
		}
		return
	}
	s.done = append(s.done, r.msgs...)
	s.burst.observe(now, d)
	evs := fold.Dedup(r.events)
	e := &emitted{key: r.key, recordID: d.RecordID, version: 1, events: evs, emittedAt: now,
		prior: fold.Sample{Sampled: d.Risk.Sampled, Reason: d.Risk.SampleReason, Rate: d.Risk.SampleRate}}
	for _, ev := range evs {
		e.ids = append(e.ids, ev.ID)
	}
	s.cache.put(e)
}

// amend builds the next version of an emitted record from its events and the
// late ones. A cold entry's events are read back from the raw topics first;
// if they are gone the late events go to the DLQ (permanent), if Kafka does
// not answer the error is returned (retryable: nothing is Done, the partition
// stops and its events are read again).
func (s *partition) amend(ctx context.Context, e *emitted, now record.Time) error {
	h := s.h
	if e.events == nil {
		evs, err := s.fetchSources(ctx, e.sources)
		var unusable *unusableError
		switch {
		case errors.As(err, &unusable):
			h.log.Warn("cannot amend: sources unavailable", "record_id", e.recordID, "err", err)
			for _, m := range e.msgs {
				s.toDLQ(m, ReasonSourcesUnavail, err.Error())
			}
			e.late, e.msgs = nil, nil
			return nil
		case err != nil:
			return err // Kafka did not answer: stop; the late events are read again
		}
		e.events = evs
	}
	all := append(slices.Clip(e.events), e.late...)
	prior := e.prior
	s.dec = h.builder.Build(all, s.context(&prior))
	d := &s.dec
	d.Version, d.Completeness = e.version+1, record.Amended
	if err := s.produce(d); err != nil {
		h.log.Error("cannot encode decision; late events sent to the DLQ", "record_id", d.RecordID, "err", err)
		for _, m := range e.msgs {
			s.toDLQ(m, ReasonUnencodable, err.Error())
		}
		e.late, e.msgs = nil, nil
		return nil
	}
	s.done = append(s.done, e.msgs...)
	e.events = fold.Dedup(all)
	e.ids = e.ids[:0]
	for _, ev := range e.events {
		e.ids = append(e.ids, ev.ID)
	}
	e.version = d.Version
	e.prior = fold.Sample{Sampled: d.Risk.Sampled, Reason: d.Risk.SampleReason, Rate: d.Risk.SampleRate}
	e.emittedAt, e.late, e.msgs, e.sources = now, nil, nil, nil
	s.cache.put(e)
	return nil
}

// produce queues one Decision for the decisions topic, partition s.id (the
// partition of its request key in the raw topics). The value is the record's
// RFC 8785 canonical JSON, encoded once here: the archive hashes these bytes
// as they are (it only checks that they are canonical) and the store decodes
// them like any JSON. It fails only if d cannot be encoded (a bug: fold never
// yields NaN or ±Inf); the caller then sends the request's events to the DLQ
// rather than stop the partition for good.
func (s *partition) produce(d *record.Decision) error {
	b, err := d.AppendCanonical(s.enc[:0])
	s.enc = b[:0] // grown to the largest record so far, reused
	if err != nil {
		return err
	}
	// One allocation for the record and its headers, one for all their
	// bytes.
	rh := new(recordHeaders)
	version := strconv.FormatUint(uint64(d.Version), 10)
	sl := slab(make([]byte, 0, len(b)+len(d.Request.RequestKey)+len(s.label)+len(d.RecordID)+len(version)+len(d.Completeness)))
	value := sl.add(b)
	key := sl.addString(d.Request.RequestKey)
	rh.hs = [4]kgo.RecordHeader{
		{Key: raw.HeaderExplicitPartition, Value: sl.addString(s.label)},
		{Key: HeaderRecordID, Value: sl.addString(d.RecordID)},
		{Key: HeaderVersion, Value: sl.addString(version)},
		{Key: HeaderCompleteness, Value: sl.addString(d.Completeness)},
	}
	rh.rec = kgo.Record{
		Topic:     s.h.decisions,
		Partition: s.id,
		Key:       key,
		Value:     value,
		Headers:   rh.hs[:],
	}
	s.out = append(s.out, &rh.rec)
	return nil
}

// recordHeaders is a produced record with room for its headers.
type recordHeaders struct {
	rec kgo.Record
	hs  [4]kgo.RecordHeader
}

// slab hands out consecutive pieces of one buffer, each capped at its end so
// that no append to one can run into the next.
type slab []byte

func (s *slab) add(v []byte) []byte {
	i := len(*s)
	*s = append(*s, v...)
	return (*s)[i:len(*s):len(*s)]
}

func (s *slab) addString(v string) []byte {
	i := len(*s)
	*s = append(*s, v...)
	return (*s)[i:len(*s):len(*s)]
}

// toDLQ queues m for the DLQ topic with a reason; m is Done once it is
// acknowledged. The copy follows the capture policy (privacy/capture): the
// original bytes stay on the raw topic, which auditline-origin names.
func (s *partition) toDLQ(m *topic.Message, reason, detail string) {
	hs := make([]kgo.RecordHeader, 0, len(m.Headers)+3)
	for _, hd := range m.Headers {
		if hd.Key != raw.HeaderReason && hd.Key != raw.HeaderExplicitPartition {
			hs = append(hs, hd)
		}
	}
	hs = append(hs,
		kgo.RecordHeader{Key: raw.HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQDetail, Value: []byte(s.h.capt.Text(detail))},
		kgo.RecordHeader{Key: HeaderOrigin, Value: fmt.Appendf(nil, "%s/%d/%d", m.Topic, m.Partition, m.Offset)},
	)
	value := m.Value
	if m.Value == nil {
		// Released while its request was pending: the payload stays at
		// its origin in the raw topic (and in raw_events).
		hs[len(hs)-2].Value = fmt.Appendf(nil, "%s (payload not kept in memory: read it at the origin)", s.h.capt.Text(detail))
	} else {
		value = s.h.capt.Body(m.Value)
	}
	s.out = append(s.out, &kgo.Record{Topic: s.h.topics.DLQ(), Key: m.Key, Value: value, Headers: hs})
	s.done = append(s.done, m)
}

// fetchSources reads a cold record's source events back from the raw topics,
// checking each one's SHA-256 against the evidence.
func (s *partition) fetchSources(ctx context.Context, sources []record.Source) ([]*event.Event, error) {
	h := s.h
	out := make([]*event.Event, 0, len(sources))
	for _, src := range sources {
		var got *event.Event
		var ferr error
		err := h.scan.Scan(ctx, src.Topic, src.Partition, src.Offset, false, func(r *kgo.Record) error {
			if r.Offset != src.Offset {
				ferr = fmt.Errorf("%s/%d offset %d is gone (retention?)", src.Topic, src.Partition, src.Offset)
				return topic.ErrStop
			}
			ev, err := s.decode(r)
			switch {
			case err != nil:
				ferr = fmt.Errorf("%s/%d@%d: %w", src.Topic, src.Partition, src.Offset, err)
			case ev.SHA256 != src.SHA256:
				ferr = fmt.Errorf("%s/%d@%d: sha256 %s, evidence says %s", src.Topic, src.Partition, src.Offset, ev.SHA256, src.SHA256)
			default:
				got = ev
			}
			return topic.ErrStop
		})
		if err == nil && got == nil && ferr == nil {
			ferr = fmt.Errorf("%s/%d offset %d not found", src.Topic, src.Partition, src.Offset)
		}
		switch {
		case err != nil: // Kafka did not answer: retryable
			h.m.fetches.WithLabelValues("source", "retry").Inc()
			return nil, fmt.Errorf("read source %s/%d@%d: %w", src.Topic, src.Partition, src.Offset, err)
		case ferr != nil: // the source is gone or not what the evidence says: permanent
			h.m.fetches.WithLabelValues("source", "unusable").Inc()
			return nil, &unusableError{ferr}
		}
		h.m.fetches.WithLabelValues("source", "ok").Inc()
		out = append(out, got)
	}
	return out, nil
}

// fetchRef reads the decision an oversight event's decision_ref names and
// returns it as a cold cache entry. It returns nil and no error when the ref
// leads nowhere usable (the event is then late), and an error only when Kafka
// did not answer (retryable: the partition stops and the event is read again).
//
// The ref is trusted to name the latest version: the dashboards post the ref
// of the version they show, which is the latest. Should a later version
// exist, the amendment still carries every event (it is rebuilt from the
// sources), only its version number may repeat one already used; store keeps
// one row per (record id, version) and archive keeps both, so nothing is lost.
func (s *partition) fetchRef(ctx context.Context, ev *event.Event) (*emitted, error) {
	h := s.h
	ref := ev.Oversight.Ref
	var head *decisionHead
	var at record.Time
	var ferr error
	err := h.scan.Scan(ctx, h.topics.Decisions(), ref.Partition, ref.Offset, false, func(r *kgo.Record) error {
		if r.Offset != ref.Offset {
			ferr = fmt.Errorf("decision %d/%d is gone", ref.Partition, ref.Offset)
			return topic.ErrStop
		}
		head, ferr = parseHead(r.Value)
		at = record.TimeOf(r.Timestamp)
		return topic.ErrStop
	})
	if err != nil {
		h.m.fetches.WithLabelValues("decision_ref", "retry").Inc()
		return nil, fmt.Errorf("read decision_ref %d/%d: %w", ref.Partition, ref.Offset, err)
	}
	if ferr == nil && head == nil {
		ferr = fmt.Errorf("decision %d/%d not found", ref.Partition, ref.Offset)
	}
	if ferr == nil && head.Request.RequestKey != ev.Key {
		ferr = fmt.Errorf("decision %d/%d is of request %q, not %q", ref.Partition, ref.Offset, head.Request.RequestKey, ev.Key)
	}
	if ferr != nil {
		h.m.fetches.WithLabelValues("decision_ref", "unusable").Inc()
		h.log.Warn("decision_ref unusable", "event_id", ev.ID, "err", ferr)
		return nil, nil
	}
	h.m.fetches.WithLabelValues("decision_ref", "ok").Inc()
	e := head.entry(at)
	s.cache.put(e)
	return e, nil
}

// unusableError marks a permanent failure to read back what an amendment
// needs: retrying cannot help, so the late event goes to the DLQ.
type unusableError struct{ err error }

func (e *unusableError) Error() string { return e.err.Error() }
func (e *unusableError) Unwrap() error { return e.err }

func minNonZero(a, b record.Time) record.Time {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

func sortUnique(ss *[]string) {
	slices.Sort(*ss)
	*ss = slices.Compact(*ss)
}

// deadlines is a min-heap of pending requests by deadline, then key (so that
// requests due at the same stream time are emitted in a fixed order).
type deadlines []*request

func (q deadlines) Len() int { return len(q) }
func (q deadlines) Less(i, j int) bool {
	if q[i].deadline != q[j].deadline {
		return q[i].deadline < q[j].deadline
	}
	return q[i].key < q[j].key
}
func (q deadlines) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}
func (q *deadlines) Push(x any) {
	r := x.(*request)
	r.idx = len(*q)
	*q = append(*q, r)
}
func (q *deadlines) Pop() any {
	old := *q
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	r.idx = -1
	return r
}
