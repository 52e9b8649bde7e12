package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/source"
)

// endpoint is one write endpoint.
type endpoint struct {
	name   string // metric label
	path   string
	scope  auth.Scope
	src    raw.Source
	strict bool // one invalid element refuses the whole body (auditline's own schemas)
	decode func([]byte, body.Kind, raw.Format) (source.Event, error)
}

// maxReportedErrors caps the element errors listed in a response.
const maxReportedErrors = 20

// accepted is the body of a 2xx answer.
type accepted struct {
	// Accepted counts events acknowledged on their raw topic (a control event
	// fanned out to every partition counts once).
	Accepted int `json:"accepted"`
	// SkippedNulls counts null elements (LiteLLM queues null when it could
	// not build a payload); there is nothing to keep.
	SkippedNulls int `json:"skipped_nulls"`
	// DeadLettered counts elements that were JSON but not usable events; each
	// is kept on the DLQ topic with its reason.
	DeadLettered int            `json:"dead_lettered"`
	Format       string         `json:"format"`
	Errors       []elementError `json:"errors,omitempty"`
}

type elementError struct {
	Element int    `json:"element"`
	Field   string `json:"field,omitempty"`
	Error   string `json:"error"`
}

// errorBody is the body of every non-2xx answer.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
	// Position of a JSON syntax error.
	Offset *int `json:"offset,omitempty"`
	Line   int  `json:"line,omitempty"`
	Column int  `json:"column,omitempty"`
	// The offending element (0-based) and field of an invalid event.
	Element *int   `json:"element,omitempty"`
	Field   string `json:"field,omitempty"`
	// DeadLettered is true when the whole body is kept on the DLQ topic.
	DeadLettered bool `json:"dead_lettered,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// request is the state of one write request.
type request struct {
	s      *Server
	ep     *endpoint
	w      *statusWriter
	sender string
}

func (q *request) refuse(code int, reason string, eb errorBody) {
	q.s.m.rejected.WithLabelValues(q.ep.name, reason).Inc()
	eb.Reason = reason
	if code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests {
		q.w.Header().Set("Retry-After", strconv.Itoa(int(q.s.cfg.RetryAfter/time.Second)))
	}
	writeJSON(q.w, code, eb)
}

func (s *Server) endpoint(ep *endpoint) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		s.m.inflightR.Inc()
		defer func() {
			s.m.inflightR.Dec()
			s.m.requests.WithLabelValues(ep.name, strconv.Itoa(w.code)).Inc()
			s.m.requestTimes.WithLabelValues(ep.name).Observe(time.Since(start).Seconds())
		}()
		q := &request{s: s, ep: ep, w: w}
		q.serve(r)
	})
}

func (q *request) serve(r *http.Request) {
	s, cfg := q.s, q.s.cfg
	sender, err := s.auth.Load().Authorize(r, q.ep.scope)
	if err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			q.w.Header().Set("WWW-Authenticate", auth.Challenge(ae))
			q.refuse(ae.Status, ae.Reason, errorBody{Error: ae.Msg})
			return
		}
		q.refuse(http.StatusUnauthorized, "invalid_token", errorBody{Error: "unauthorized"})
		return
	}
	q.sender = sender
	ndjson, ok := contentType(r.Header.Get("Content-Type"))
	if !ok {
		q.refuse(http.StatusUnsupportedMediaType, "unsupported_media_type", errorBody{
			Error: fmt.Sprintf("Content-Type %q: want application/json (json_array, single) or application/x-ndjson, in UTF-8", r.Header.Get("Content-Type"))})
		return
	}
	if r.ContentLength > cfg.MaxBodyBytes {
		q.refuse(http.StatusRequestEntityTooLarge, "body_too_large", errorBody{
			Error: fmt.Sprintf("body of %d bytes is larger than ingest.max_body_bytes (%d)", r.ContentLength, cfg.MaxBodyBytes)})
		return
	}
	reserved := r.ContentLength
	if reserved < 0 {
		reserved = cfg.MaxBodyBytes // chunked: assume the worst until read
	}
	if !s.acquire(reserved) {
		q.refuse(http.StatusServiceUnavailable, "overloaded", errorBody{Error: "too many bytes in flight; retry later"})
		return
	}
	buf := s.getBuf()
	// Until the records are handed to Kafka, this request owns the buffer and
	// the reservation; after, the produce's settle does (see produce).
	handedOff := false
	defer func() {
		if !handedOff {
			s.release(reserved)
			s.putBuf(buf)
		}
	}()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(q.w, r.Body, cfg.MaxBodyBytes)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			q.refuse(http.StatusRequestEntityTooLarge, "body_too_large", errorBody{
				Error: fmt.Sprintf("body is larger than ingest.max_body_bytes (%d)", cfg.MaxBodyBytes)})
			return
		}
		q.refuse(http.StatusBadRequest, "read_error", errorBody{Error: "reading the body: " + err.Error()})
		return
	}
	b := buf.Bytes()
	if n := int64(len(b)); n < reserved {
		s.release(reserved - n)
		reserved = n
	}
	s.m.bodyBytes.WithLabelValues(q.ep.name).Add(float64(len(b)))
	if err := s.auth.Load().VerifyBody(r, b); err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			q.refuse(ae.Status, ae.Reason, errorBody{Error: ae.Msg})
			return
		}
		q.refuse(http.StatusUnauthorized, "bad_signature", errorBody{Error: "bad signature"})
		return
	}

	receivedAt := s.now()
	sumArr := sha256.Sum256(b)
	bodySum := hex.EncodeToString(sumArr[:])

	form, els, err := body.Split(b, ndjson, cfg.MaxEvents)
	if err != nil {
		var tm *body.TooManyError
		if errors.As(err, &tm) {
			q.refuse(http.StatusRequestEntityTooLarge, "too_many_events", errorBody{
				Error: fmt.Sprintf("%v (ingest.max_events); send smaller batches", err)})
			return
		}
		var se *body.SyntaxError
		eb := errorBody{Error: err.Error()}
		if errors.As(err, &se) {
			eb.Offset, eb.Line, eb.Column = &se.Offset, se.Line, se.Column
		}
		handedOff = q.deadLetterBody(b, buf, reserved, bodySum, "", receivedAt, "invalid_json", err.Error(), eb)
		return
	}
	format := raw.Format(form.String())

	var (
		recs   = make([]*kgo.Record, 0, len(els))
		resp   = accepted{Format: string(format)}
		events int
	)
	for i, el := range els {
		if el.Kind == body.Null {
			resp.SkippedNulls++
			continue
		}
		elem := el.Bytes(b)
		if len(elem) > cfg.MaxEventBytes {
			q.refuse(http.StatusRequestEntityTooLarge, "event_too_large", errorBody{Element: &i,
				Error: fmt.Sprintf("element %d is %d bytes, larger than ingest.max_event_bytes (%d); nothing was accepted", i, len(elem), cfg.MaxEventBytes)})
			return
		}
		ev, err := q.ep.decode(elem, el.Kind, format)
		if err != nil {
			var fe *source.FieldError
			field := ""
			if errors.As(err, &fe) {
				field = fe.Field
			}
			reason := fmt.Sprintf("element %d: %v", i, err)
			if q.ep.strict {
				handedOff = q.deadLetterBody(b, buf, reserved, bodySum, format, receivedAt, "invalid_event", reason,
					errorBody{Error: reason, Element: &i, Field: field})
				return
			}
			rec := s.topics.Record(raw.Event{Source: q.ep.src, Format: format, EventID: "dlq:" + sha256Hex(elem), Value: elem}, receivedAt, bodySum, i)
			recs = append(recs, q.toDLQ(rec, "invalid_event: "+reason))
			resp.DeadLettered++
			if len(resp.Errors) < maxReportedErrors {
				resp.Errors = append(resp.Errors, elementError{Element: i, Field: field, Error: err.Error()})
			}
			continue
		}
		events++
		if ev.AllPartitions {
			topicName := s.topics.ForSource(ev.Source)
			n, err := s.parts.Partitions(r.Context(), topicName)
			if err != nil || n < 1 {
				s.log.Warn("cannot fan out a control event: partition count unknown", "topic", topicName, "err", err)
				q.refuse(http.StatusServiceUnavailable, "kafka_unavailable", errorBody{Error: "kafka metadata unavailable; retry later"})
				return
			}
			for p := range n {
				rec := s.topics.Record(ev.Event, receivedAt, bodySum, i)
				rec.Partition = int32(p)
				rec.Headers = append(rec.Headers,
					kgo.RecordHeader{Key: raw.HeaderExplicitPartition, Value: strconv.AppendInt(nil, int64(p), 10)},
					kgo.RecordHeader{Key: raw.HeaderSender, Value: []byte(q.sender)})
				recs = append(recs, rec)
			}
			continue
		}
		rec := s.topics.Record(ev.Event, receivedAt, bodySum, i)
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: raw.HeaderSender, Value: []byte(q.sender)})
		recs = append(recs, rec)
	}
	resp.Accepted = events

	handedOff = true
	err = s.produce(recs, func() { s.release(reserved); s.putBuf(buf) })
	if err != nil {
		q.produceFailed(err)
		return
	}
	s.m.accepted.WithLabelValues(string(q.ep.src)).Add(float64(events))
	if resp.DeadLettered > 0 {
		s.m.dlq.WithLabelValues(q.ep.name, "invalid_event").Add(float64(resp.DeadLettered))
	}
	if resp.SkippedNulls > 0 {
		s.m.nulls.WithLabelValues(q.ep.name).Add(float64(resp.SkippedNulls))
	}
	writeJSON(q.w, http.StatusOK, resp)
}

func (q *request) produceFailed(err error) {
	if errors.Is(err, errProduceTimeout) {
		q.refuse(http.StatusServiceUnavailable, "produce_timeout", errorBody{Error: "kafka did not acknowledge in time; nothing is confirmed, retry later"})
		return
	}
	q.s.log.Warn("produce failed", "endpoint", q.ep.name, "err", err)
	q.refuse(http.StatusServiceUnavailable, "produce_error", errorBody{Error: "kafka refused or is unreachable; nothing is confirmed, retry later"})
}

func (q *request) toDLQ(rec *kgo.Record, reason string) *kgo.Record {
	rec.Topic = q.s.topics.DLQ()
	rec.Key = nil
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: raw.HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: raw.HeaderSender, Value: []byte(q.sender)})
	return rec
}

// deadLetterBody keeps the whole body on the DLQ (in parts of at most
// max_event_bytes) and answers 400 once Kafka acknowledged it, or 503 if
// Kafka did not. It returns true: the buffer and reservation are handed to
// the produce.
func (q *request) deadLetterBody(b []byte, buf *bytes.Buffer, reserved int64, bodySum string, format raw.Format,
	receivedAt time.Time, kind, reason string, eb errorBody) bool {
	s := q.s
	size := s.cfg.MaxEventBytes
	n := max(1, (len(b)+size-1)/size)
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		part := b[i*size : min(len(b), (i+1)*size)]
		rec := s.topics.Record(raw.Event{Source: q.ep.src, Format: format, EventID: "dlq:" + bodySum, Value: part}, receivedAt, bodySum, -1)
		rec = q.toDLQ(rec, kind+": "+reason)
		if n > 1 {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: raw.HeaderPart, Value: fmt.Appendf(nil, "%d/%d", i+1, n)})
		}
		recs = append(recs, rec)
	}
	err := s.produce(recs, func() { s.release(reserved); s.putBuf(buf) })
	if err != nil {
		q.produceFailed(err)
		return true
	}
	s.m.dlq.WithLabelValues(q.ep.name, kind).Inc()
	eb.DeadLettered = true
	q.refuse(http.StatusBadRequest, kind, eb)
	return true
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
