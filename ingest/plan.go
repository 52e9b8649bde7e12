package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/source"
	"github.com/auditline/auditline/privacy/capture"
)

// planner decides what one body of one endpoint asks of Kafka, from the
// body's bytes alone: it does no I/O, reads no clock and keeps no state, so
// the same input always gives the same plan (TestPlan, FuzzPlan). Everything
// around it — credentials, limits, the signature, Kafka, the answer — is in
// the decorators and deliver (handler.go).
type planner struct {
	src           raw.Source
	strict        bool // one invalid element refuses the whole body (auditline's own schemas)
	decode        func([]byte, body.Kind, raw.Format) (source.Event, error)
	topics        raw.Topics
	maxEvents     int // ingest.max_events
	maxEventBytes int // ingest.max_event_bytes; also the size of a dead-lettered body's parts
	// capt is what a DLQ copy keeps of a body (the capture policy; nil keeps
	// the bytes): under hash, no content and no client header.
	capt *capture.Capturer
}

// dlqText is the DLQ copy of an error text.
func (pl *planner) dlqText(s string) string {
	if pl.capt == nil {
		return s
	}
	return pl.capt.Text(s)
}

// dlqValue is the DLQ copy of b.
func (pl *planner) dlqValue(b []byte) []byte {
	if pl.capt == nil {
		return b
	}
	return pl.capt.Body(b)
}

// planInput is one request as the planner sees it.
type planInput struct {
	body   []byte
	ndjson bool   // the Content-Type says ndjson
	sender string // name of the token that authorized the request
	// reviewer is the one reviewer id the token may name in an event that
	// claims one (oversight reviewer.id, access actor.id); "" for any.
	reviewer   string
	receivedAt time.Time
}

// plan is a body's fate. Records go to Kafka in this order; only once Kafka
// acknowledged every one of them is the answer given:
//
//   - refusal nil: 2xx with answer. records holds one raw record per
//     accepted event and one DLQ record per element that is JSON but not a
//     usable event (lenient endpoints), each with its error in answer.Errors.
//   - refusal set, records empty: refused as it is (413); nothing is kept.
//   - refusal set, records non-empty: records are the whole body on the DLQ
//     (in parts), and the refusal (400, dead_lettered) is the answer once
//     they are acknowledged.
type plan struct {
	records []*kgo.Record
	// fanOut lists the indexes in records of control events (AllPartitions):
	// each is a template to copy to every partition of its topic (expand).
	fanOut  []int
	answer  accepted
	refusal *refusal
	sender  []byte // header value shared by the body's records (never modified)
}

// plan plans one body.
func (pl *planner) plan(in planInput) plan {
	p := plan{sender: []byte(in.sender)}
	sum := sha256.Sum256(in.body)
	bodySum := hex.EncodeToString(sum[:])

	form, els, err := body.Split(in.body, in.ndjson, pl.maxEvents)
	if err != nil {
		var tm *body.TooManyError
		if errors.As(err, &tm) {
			p.refusal = refuse(http.StatusRequestEntityTooLarge, "too_many_events",
				errorBody{Error: fmt.Sprintf("%v (ingest.max_events); send smaller batches", err)})
			return p
		}
		var se *body.SyntaxError
		eb := errorBody{Error: err.Error()}
		if errors.As(err, &se) {
			eb.Offset, eb.Line, eb.Column = &se.Offset, se.Line, se.Column
		}
		return pl.deadLetterBody(p, in, bodySum, "", http.StatusBadRequest, "invalid_json", err.Error(), eb)
	}
	format := raw.Format(form.String())
	p.answer.Format = string(format)
	p.records = make([]*kgo.Record, 0, len(els))
	for i, el := range els {
		if el.Kind == body.Null {
			p.answer.SkippedNulls++
			continue
		}
		elem := el.Bytes(in.body)
		if len(elem) > pl.maxEventBytes {
			at := i
			return plan{refusal: refuse(http.StatusRequestEntityTooLarge, "event_too_large", errorBody{Element: &at,
				Error: fmt.Sprintf("element %d is %d bytes, larger than ingest.max_event_bytes (%d); nothing was accepted", i, len(elem), pl.maxEventBytes)})}
		}
		ev, err := pl.decode(elem, el.Kind, format)
		if err != nil {
			var fe *source.FieldError
			field := ""
			if errors.As(err, &fe) {
				field = fe.Field
			}
			reason := fmt.Sprintf("element %d: %v", i, err)
			if pl.strict {
				at := i
				return pl.deadLetterBody(plan{sender: p.sender}, in, bodySum, format, http.StatusBadRequest, "invalid_event", reason,
					errorBody{Error: reason, Element: &at, Field: field})
			}
			rec := pl.topics.Record(raw.Event{Source: pl.src, Format: format, EventID: "dlq:" + sha256Hex(elem), Value: pl.dlqValue(elem)}, in.receivedAt, bodySum, i)
			p.records = append(p.records, pl.toDLQ(rec, "invalid_event: "+reason, p.sender))
			p.answer.DeadLettered++
			if len(p.answer.Errors) < maxReportedErrors {
				p.answer.Errors = append(p.answer.Errors, elementError{Element: i, Field: field, Error: err.Error()})
			}
			continue
		}
		if ev.Reviewer != "" && in.reviewer != "" && ev.Reviewer != in.reviewer {
			// A token speaks for its own reviewer only: the identity sealed
			// with the event must be the one that authenticated.
			at := i
			reason := fmt.Sprintf("element %d: token %q may post only as reviewer %q, the event names %q", i, in.sender, in.reviewer, ev.Reviewer)
			return pl.deadLetterBody(plan{sender: p.sender}, in, bodySum, format, http.StatusForbidden, "reviewer_mismatch", reason,
				errorBody{Error: reason, Element: &at, Field: reviewerField(ev.Source)})
		}
		p.answer.Accepted++
		rec := pl.topics.Record(ev.Event, in.receivedAt, bodySum, i)
		if ev.AllPartitions {
			p.fanOut = append(p.fanOut, len(p.records))
		} else {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: raw.HeaderSender, Value: p.sender})
		}
		p.records = append(p.records, rec)
	}
	return p
}

// reviewerField names the field that carries the claimed identity.
func reviewerField(s raw.Source) string {
	if s == raw.SourceAccess {
		return "actor.id"
	}
	return "reviewer.id"
}

// deadLetterBody plans the whole body (as the capture policy keeps it) onto
// the DLQ, in parts of at most max_event_bytes, answered status (kind) once
// they are acknowledged. bodySum, in the headers, is the original body's.
func (pl *planner) deadLetterBody(p plan, in planInput, bodySum string, format raw.Format, status int, kind, reason string, eb errorBody) plan {
	b, size := pl.dlqValue(in.body), pl.maxEventBytes
	n := max(1, (len(b)+size-1)/size)
	p.records = make([]*kgo.Record, 0, n)
	for i := range n {
		part := b[i*size : min(len(b), (i+1)*size)]
		rec := pl.topics.Record(raw.Event{Source: pl.src, Format: format, EventID: "dlq:" + bodySum, Value: part}, in.receivedAt, bodySum, -1)
		rec = pl.toDLQ(rec, kind+": "+reason, p.sender)
		if n > 1 {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: raw.HeaderPart, Value: fmt.Appendf(nil, "%d/%d", i+1, n)})
		}
		p.records = append(p.records, rec)
	}
	eb.DeadLettered = true
	p.refusal = refuse(status, kind, eb)
	return p
}

func (pl *planner) toDLQ(rec *kgo.Record, reason string, sender []byte) *kgo.Record {
	rec.Topic = pl.topics.DLQ()
	rec.Key = nil
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: raw.HeaderReason, Value: []byte(pl.dlqText(reason))},
		kgo.RecordHeader{Key: raw.HeaderSender, Value: sender})
	return rec
}

// fanOutTopics lists the topics whose partition counts expand needs.
func (p *plan) fanOutTopics() []string {
	var ts []string
	for _, i := range p.fanOut {
		if t := p.records[i].Topic; !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	return ts
}

// expand returns the records to produce: p.records with every fan-out
// template replaced, in place, by one copy per partition of its topic
// (partitions[topic], at least 1), each marked with its explicit partition.
func (p *plan) expand(partitions map[string]int) []*kgo.Record {
	if len(p.fanOut) == 0 {
		return p.records
	}
	n := len(p.records)
	for _, i := range p.fanOut {
		n += partitions[p.records[i].Topic] - 1
	}
	out := make([]*kgo.Record, 0, n)
	next := 0 // index in p.fanOut of the next template
	for i, r := range p.records {
		if next == len(p.fanOut) || p.fanOut[next] != i {
			out = append(out, r)
			continue
		}
		next++
		for part := range partitions[r.Topic] {
			c := *r
			c.Partition = int32(part)
			c.Headers = append(slices.Clip(r.Headers),
				kgo.RecordHeader{Key: raw.HeaderExplicitPartition, Value: strconv.AppendInt(nil, int64(part), 10)},
				kgo.RecordHeader{Key: raw.HeaderSender, Value: p.sender})
			out = append(out, &c)
		}
	}
	return out
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
