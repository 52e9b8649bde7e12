package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/source"
	"github.com/auditline/auditline/internal/httpstatus"
)

// A write request passes, in this order, through
//
//	authenticate  bearer token and scope               401/403
//	accept        Content-Type                          415
//	limit         size, in-flight budget, body read     413/503/400
//	signature     HMAC of the body, when configured     401
//	deliver       plan (plan.go), Kafka, the answer     2xx/400/413/503
//
// Each step is a decorator around the next (net/http middleware style, on
// the request's state instead of an http.Handler, so no step allocates or
// copies per request): it returns an error to refuse, and answerError
// (answer.go) turns that error into the answer. Only deliver writes a 2xx.

// endpoint is one write endpoint.
type endpoint struct {
	name   string // metric label
	path   string
	scope  auth.Scope
	src    raw.Source
	strict bool // one invalid element refuses the whole body (auditline's own schemas)
	decode func([]byte, body.Kind, raw.Format) (source.Event, error)
}

// call is the state of one write request as it passes the steps.
type call struct {
	w        *httpstatus.Writer
	r        *http.Request
	ep       *endpoint
	auth     *auth.Authenticator // the credentials in force when the request arrived
	sender   auth.Sender         // the token that authorized it
	ndjson   bool
	body     []byte
	buf      *bytes.Buffer // holds body; with reserved, owned by limit until handedOff
	reserved int64         // in-flight budget held for the body
	// handedOff: deliver gave the buffer and the reservation to the produce,
	// which returns them once Kafka settles (possibly after the answer).
	handedOff bool
}

// step handles a call, or returns the error that refuses it.
type step func(*call) error

func (s *Server) endpoint(ep *endpoint) http.Handler {
	serve := s.authenticate(s.accept(s.limit(s.signature(s.deliver))))
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := httpstatus.New(rw)
		s.m.inflightR.Inc()
		defer func() {
			s.m.inflightR.Dec()
			s.m.requests.WithLabelValues(ep.name, strconv.Itoa(w.Code())).Inc()
			s.m.requestTimes.WithLabelValues(ep.name).Observe(time.Since(start).Seconds())
		}()
		c := &call{w: w, r: r, ep: ep}
		if err := serve(c); err != nil {
			s.answerError(c, err)
		}
	})
}

// authenticate checks the bearer token and its scope for the endpoint.
func (s *Server) authenticate(next step) step {
	return func(c *call) error {
		c.auth = s.auth.Load()
		sender, err := c.auth.AuthorizeSender(c.r, c.ep.scope)
		if err != nil {
			var ae *auth.Error
			if errors.As(err, &ae) {
				rf := refuse(ae.Status, ae.Reason, errorBody{Error: ae.Msg})
				rf.challenge = auth.Challenge(ae)
				return rf
			}
			return refuse(http.StatusUnauthorized, "invalid_token", errorBody{Error: "unauthorized"})
		}
		c.sender = sender
		return next(c)
	}
}

// accept checks the Content-Type, before the body is read.
func (s *Server) accept(next step) step {
	return func(c *call) error {
		ct := c.r.Header.Get("Content-Type")
		ndjson, ok := contentType(ct)
		if !ok {
			return refuse(http.StatusUnsupportedMediaType, "unsupported_media_type", errorBody{
				Error: fmt.Sprintf("Content-Type %q: want application/json (json_array, single) or application/x-ndjson, in UTF-8", ct)})
		}
		c.ndjson = ndjson
		return next(c)
	}
}

// limit enforces max_body_bytes and the in-flight budget, then reads the
// body. A declared length over the limit, or a full budget, is refused
// before a byte is read; the budget is reserved for the declared length (for
// max_body_bytes when chunked) and trimmed to what was read. The buffer and
// the reservation are returned here unless deliver handed them to a produce.
func (s *Server) limit(next step) step {
	return func(c *call) error {
		cfg := &s.cfg
		if c.r.ContentLength > cfg.MaxBodyBytes {
			return refuse(http.StatusRequestEntityTooLarge, "body_too_large", errorBody{
				Error: fmt.Sprintf("body of %d bytes is larger than ingest.max_body_bytes (%d)", c.r.ContentLength, cfg.MaxBodyBytes)})
		}
		c.reserved = c.r.ContentLength
		if c.reserved < 0 {
			c.reserved = cfg.MaxBodyBytes // chunked: assume the worst until read
		}
		if !s.acquire(c.reserved) {
			return errOverloaded
		}
		c.buf = s.getBuf()
		defer func() {
			if !c.handedOff {
				s.settle(c)
			}
		}()
		if c.r.ContentLength > 0 {
			c.buf.Grow(int(c.r.ContentLength))
		}
		if _, err := c.buf.ReadFrom(http.MaxBytesReader(c.w, c.r.Body, cfg.MaxBodyBytes)); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return refuse(http.StatusRequestEntityTooLarge, "body_too_large", errorBody{
					Error: fmt.Sprintf("body is larger than ingest.max_body_bytes (%d)", cfg.MaxBodyBytes)})
			}
			return refuse(http.StatusBadRequest, "read_error", errorBody{Error: "reading the body: " + err.Error()})
		}
		c.body = c.buf.Bytes()
		if n := int64(len(c.body)); n < c.reserved {
			s.release(c.reserved - n)
			c.reserved = n
		}
		s.m.bodyBytes.WithLabelValues(c.ep.name).Add(float64(len(c.body)))
		return next(c)
	}
}

// settle returns c's buffer and in-flight reservation.
func (s *Server) settle(c *call) {
	s.release(c.reserved)
	s.putBuf(c.buf)
}

// signature checks the body's HMAC, when secrets are configured.
func (s *Server) signature(next step) step {
	return func(c *call) error {
		if err := c.auth.VerifyBody(c.r, c.body); err != nil {
			var ae *auth.Error
			if errors.As(err, &ae) {
				return refuse(ae.Status, ae.Reason, errorBody{Error: ae.Msg})
			}
			return refuse(http.StatusUnauthorized, "bad_signature", errorBody{Error: "bad signature"})
		}
		return next(c)
	}
}

// deliver plans the body, hands the plan's records to Kafka and, once Kafka
// acknowledged all of them, gives the plan's answer.
func (s *Server) deliver(c *call) error {
	pl := planner{src: c.ep.src, strict: c.ep.strict, decode: c.ep.decode, topics: s.topics,
		maxEvents: s.cfg.MaxEvents, maxEventBytes: s.cfg.MaxEventBytes, capt: s.capt}
	if err := s.joinGate(c.r.Context()); err != nil {
		return err
	}
	st := s.stamps.stamp()
	produced := false
	defer func() {
		if !produced {
			st.finish()
		}
	}()
	in := planInput{body: c.body, ndjson: c.ndjson, sender: c.sender.Name, reviewer: c.sender.Reviewer, receivedAt: st.at()}
	p := pl.plan(in)
	if p.refusal != nil && len(p.records) == 0 {
		return p.refusal
	}
	remember := c.ep.strict && p.refusal == nil
	if remember {
		if id := s.seen.conflict(p.records); id != "" {
			reason := fmt.Sprintf("event id %q was accepted before with other content; an event keeps its id only when re-sent unchanged (give a changed event a new id)", id)
			p = pl.deadLetterBody(plan{sender: p.sender}, in, sha256Hex(c.body), raw.Format(p.answer.Format), http.StatusConflict, "event_id_conflict", reason, errorBody{Error: reason})
			remember = false
		}
	}
	recs := p.records
	if len(p.fanOut) > 0 {
		parts := make(map[string]int, 1)
		for _, t := range p.fanOutTopics() {
			n, err := s.parts.Partitions(c.r.Context(), t)
			if err != nil || n < 1 {
				if err == nil {
					err = fmt.Errorf("topic %s has no partitions", t)
				}
				return &retryable{reason: "kafka_unavailable", msg: "kafka metadata unavailable; retry later",
					cause: fmt.Errorf("cannot fan out a control event: partition count of %s unknown: %w", t, err)}
			}
			parts[t] = n
		}
		recs = p.expand(parts)
	}
	st.narrow(recs)
	c.handedOff, produced = true, true
	if err := s.produce(recs, func() { s.settle(c) }, st); err != nil {
		return kafkaError(err)
	}
	if p.refusal != nil { // the body is on the DLQ
		s.m.dlq.WithLabelValues(c.ep.name, p.refusal.body.Reason).Inc()
		return p.refusal
	}
	if remember {
		s.seen.add(p.records)
	}
	s.m.accepted.WithLabelValues(string(c.ep.src)).Add(float64(p.answer.Accepted))
	if p.answer.DeadLettered > 0 {
		s.m.dlq.WithLabelValues(c.ep.name, "invalid_event").Add(float64(p.answer.DeadLettered))
	}
	if p.answer.SkippedNulls > 0 {
		s.m.nulls.WithLabelValues(c.ep.name).Add(float64(p.answer.SkippedNulls))
	}
	writeJSON(c.w, http.StatusOK, p.answer)
	return nil
}
