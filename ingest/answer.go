package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The answers ingest gives. Errors are classified once, where they arise,
// as a refusal (permanent: the sender must change the request) or as
// retryable (transient: nothing is confirmed, send the same request again
// after Retry-After); answerError is the one place that turns them into a
// status, and the only writer of non-2xx answers besides the panic guard.

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

// refusal is a permanent answer (4xx): sending the same request again gets
// the same answer.
type refusal struct {
	status    int
	body      errorBody // Reason is the metric label and the answer's reason
	challenge string    // WWW-Authenticate, when the bearer token is at fault
}

func (r *refusal) Error() string { return r.body.Reason + ": " + r.body.Error }

// refuse returns a refusal with status, reason and body eb.
func refuse(status int, reason string, eb errorBody) *refusal {
	eb.Reason = reason
	return &refusal{status: status, body: eb}
}

// retryable is a transient failure (503 + Retry-After): nothing of the body
// is confirmed, and the same request may succeed later.
type retryable struct {
	reason string // metric label and the answer's reason
	msg    string // for the sender
	cause  error  // logged when set (a timeout or a full budget needs no log line)
}

func (e *retryable) Error() string {
	if e.cause != nil {
		return e.reason + ": " + e.cause.Error()
	}
	return e.reason + ": " + e.msg
}

func (e *retryable) Unwrap() error { return e.cause }

var errOverloaded = &retryable{reason: "overloaded", msg: "too many bytes in flight; retry later"}

// kafkaError classifies a failed produce: Kafka not acknowledging in time
// and Kafka refusing are both retryable (some records may still land; a
// resend is de-duplicated downstream by event id).
func kafkaError(err error) error {
	if errors.Is(err, errProduceTimeout) {
		return &retryable{reason: "produce_timeout", msg: "kafka did not acknowledge in time; nothing is confirmed, retry later"}
	}
	return &retryable{reason: "produce_error", msg: "kafka refused or is unreachable; nothing is confirmed, retry later",
		cause: fmt.Errorf("produce failed: %w", err)}
}

// answerError writes the answer for err: the one error → status mapping.
func (s *Server) answerError(c *call, err error) {
	var (
		code int
		eb   errorBody
		rf   *refusal
		rt   *retryable
	)
	switch {
	case errors.As(err, &rf):
		code, eb = rf.status, rf.body
		if rf.challenge != "" {
			c.w.Header().Set("WWW-Authenticate", rf.challenge)
		}
	case errors.As(err, &rt):
		code, eb = http.StatusServiceUnavailable, errorBody{Error: rt.msg, Reason: rt.reason}
		if rt.cause != nil {
			s.log.Warn("kafka did not take a body; answered 503", "endpoint", c.ep.name, "reason", rt.reason, "err", rt.cause)
		}
	default: // a bug: every error is classified where it arises
		s.log.Error("unclassified error in request handling", "endpoint", c.ep.name, "err", err)
		code, eb = http.StatusInternalServerError, errorBody{Error: "internal error", Reason: "internal"}
	}
	s.m.rejected.WithLabelValues(c.ep.name, eb.Reason).Inc()
	if code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests {
		c.w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
	}
	writeJSON(c.w, code, eb)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
