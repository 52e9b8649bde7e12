package event

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
)

// Event is one source event of a request: where it sits in Kafka, what ingest
// knew about it, and its decoded body. Exactly one of LiteLLM, Gateway,
// Oversight, Started, Attempt, Approval and Access is set.
type Event struct {
	ID         string // stable event id (raw.HeaderEventID), the de-duplication key
	Source     raw.Source
	Key        string // request key (the Kafka record key)
	Topic      string
	Partition  int32
	Offset     int64
	ReceivedAt record.Time
	SHA256     string // of the original bytes
	// Sender is the name of the ingest token that posted the event
	// (raw.HeaderSender), "" when ingest did not say.
	Sender string

	LiteLLM   *LiteLLM
	Gateway   *Gateway
	Oversight *Oversight
	Started   *Started // a request_started marker of auditline's LiteLLM plugin
	Attempt   *Attempt // one upstream call (try, retry or fallback hop), from auditline's LiteLLM plugin
	Approval  *Approval
	Access    *Access
}

// Emission is the plugin's emitter, sequence number and gateway config of
// the event (zero when the event did not come from auditline's LiteLLM plugin).
func (e *Event) Emission() Emission {
	switch {
	case e.LiteLLM != nil:
		return e.LiteLLM.Emission
	case e.Started != nil:
		return e.Started.Emission
	case e.Attempt != nil:
		return e.Attempt.Emission
	}
	return Emission{}
}

// FromRecord decodes a raw record of raw.litellm or raw.gateway. An error
// means the body cannot be used (the caller sends the record to the DLQ).
// The Event holds no reference to r's bytes.
func FromRecord(r *kgo.Record) (*Event, error) { return fromRecord(r, true) }

// FromRecordWithoutContent is FromRecord for capture policies that keep no
// content: a LiteLLM event's Messages and Response are hashed where they lie
// in r's bytes and never copied out (nil, as after DropContent).
func FromRecordWithoutContent(r *kgo.Record) (*Event, error) { return fromRecord(r, false) }

func fromRecord(r *kgo.Record, content bool) (*Event, error) {
	sum := sha256.Sum256(r.Value)
	e := &Event{
		ID:         raw.Header(r, raw.HeaderEventID),
		Source:     sourceOf(r),
		Key:        string(r.Key),
		Topic:      r.Topic,
		Partition:  r.Partition,
		Offset:     r.Offset,
		ReceivedAt: record.TimeOf(raw.ReceivedAt(r)),
		SHA256:     hex.EncodeToString(sum[:]),
		Sender:     raw.Header(r, raw.HeaderSender),
	}
	var err error
	switch e.Source {
	case raw.SourceLiteLLM:
		e.LiteLLM, err = parseLiteLLM(r.Value, content)
		if err == nil && e.Key == "" {
			e.Key = e.LiteLLM.RequestKey()
		}
		if err == nil && e.ID == "" {
			e.ID = "litellm:" + e.LiteLLM.ID + ":" + e.LiteLLM.Status
		}
	case raw.SourceGateway:
		e.Gateway, err = ParseGateway(r.Value)
		if err == nil {
			e.Key = first(e.Key, e.Gateway.RequestKey)
			e.ID = first(e.ID, "gateway:"+e.Gateway.EventID)
		}
	case raw.SourceRequestStarted:
		e.Started, err = ParseStarted(r.Value)
		if err == nil {
			e.Key = first(e.Key, e.Started.RequestKey)
			e.ID = first(e.ID, "request_started:"+e.Started.EventID)
		}
	case raw.SourceAttempt:
		e.Attempt, err = ParseAttempt(r.Value)
		if err == nil {
			e.Key = first(e.Key, e.Attempt.RequestKey)
			e.ID = first(e.ID, "attempt:"+e.Attempt.EventID)
		}
	case raw.SourceOversight:
		e.Oversight, err = ParseOversight(r.Value)
		if err == nil {
			e.Key = first(e.Key, e.Oversight.RequestKey)
			e.ID = first(e.ID, "oversight:"+e.Oversight.EventID)
		}
	case raw.SourceApproval:
		e.Approval, err = ParseApproval(r.Value)
		if err == nil {
			e.Key = first(e.Key, e.Approval.RequestKey)
			e.ID = first(e.ID, "approval:"+e.Approval.EventID)
		}
	case raw.SourceAccess:
		e.Access, err = ParseAccess(r.Value)
		if err == nil {
			e.Key = first(e.Key, "access:"+e.Access.EventID)
			e.ID = first(e.ID, "access:"+e.Access.EventID)
		}
	default:
		err = fmt.Errorf("unexpected source %q on %s", e.Source, r.Topic)
	}
	if err != nil {
		return nil, err
	}
	if e.ID == "" || strings.HasSuffix(e.ID, "::") {
		e.ID = string(e.Source) + ":sha256:" + e.SHA256
	}
	return e, nil
}

// sources are the values of raw.HeaderSource sourceOf returns without a copy.
var sources = []raw.Source{raw.SourceLiteLLM, raw.SourceGateway, raw.SourceOversight, raw.SourceRequestStarted,
	raw.SourceAttempt, raw.SourceApproval, raw.SourceAccess}

// sourceOf is raw.Source(raw.Header(r, raw.HeaderSource)), without copying a
// known value.
func sourceOf(r *kgo.Record) raw.Source {
	for _, h := range r.Headers {
		if h.Key != raw.HeaderSource {
			continue
		}
		for _, s := range sources {
			if string(h.Value) == string(s) {
				return s
			}
		}
		return raw.Source(h.Value)
	}
	return ""
}

// Time is the event's own time: the attempt's end for LiteLLM, occurred_at for
// gateway and oversight events; the receive time when it has none.
func (e *Event) Time() record.Time {
	var t record.Time
	switch {
	case e.LiteLLM != nil:
		t = e.LiteLLM.End
	case e.Gateway != nil:
		t = e.Gateway.OccurredAt
	case e.Oversight != nil:
		t = e.Oversight.OccurredAt
	case e.Started != nil:
		t = e.Started.OccurredAt
	case e.Attempt != nil:
		t = e.Attempt.End
	case e.Approval != nil:
		t = e.Approval.OccurredAt
	case e.Access != nil:
		t = e.Access.OccurredAt
	}
	if t == 0 {
		return e.ReceivedAt
	}
	return t
}

// Size estimates the bytes e keeps alive, for the bounded caches.
func (e *Event) Size() int {
	n := 256 + len(e.ID) + len(e.Key) + len(e.Topic) + len(e.SHA256)
	if l := e.LiteLLM; l != nil {
		n += 1024 + len(l.Messages) + len(l.Response) + len(l.Error.Message)
		for _, g := range l.Guardrails {
			n += 128 + len(g.Name) + len(g.Provider)
		}
		for _, t := range l.Identity.Tags {
			n += 16 + len(t)
		}
	}
	if e.Gateway != nil {
		n += 512 + len(e.Gateway.Reason)
	}
	if e.Oversight != nil {
		n += 256 + len(e.Oversight.Rationale)
	}
	if e.Started != nil {
		n += 256
	}
	if a := e.Attempt; a != nil {
		n += 512 + len(a.ErrorMessage) + len(a.APIBase)
	}
	if e.Approval != nil {
		n += 256 + len(e.Approval.Reason)
	}
	if e.Access != nil {
		n += 256 + len(e.Access.Query)
	}
	return n
}
