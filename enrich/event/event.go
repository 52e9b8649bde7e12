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
// knew about it, and its decoded body. Exactly one of LiteLLM, Gateway and
// Oversight is set.
type Event struct {
	ID         string // stable event id (raw.HeaderEventID), the de-duplication key
	Source     raw.Source
	Key        string // request key (the Kafka record key)
	Topic      string
	Partition  int32
	Offset     int64
	ReceivedAt record.Time
	SHA256     string // of the original bytes

	LiteLLM   *LiteLLM
	Gateway   *Gateway
	Oversight *Oversight
}

// FromRecord decodes a raw record of raw.litellm or raw.gateway. An error
// means the body cannot be used (the caller sends the record to the DLQ).
func FromRecord(r *kgo.Record) (*Event, error) {
	sum := sha256.Sum256(r.Value)
	e := &Event{
		ID:         raw.Header(r, raw.HeaderEventID),
		Source:     raw.Source(raw.Header(r, raw.HeaderSource)),
		Key:        string(r.Key),
		Topic:      r.Topic,
		Partition:  r.Partition,
		Offset:     r.Offset,
		ReceivedAt: record.TimeOf(raw.ReceivedAt(r)),
		SHA256:     hex.EncodeToString(sum[:]),
	}
	var err error
	switch e.Source {
	case raw.SourceLiteLLM:
		e.LiteLLM, err = ParseLiteLLM(r.Value)
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
	case raw.SourceOversight:
		e.Oversight, err = ParseOversight(r.Value)
		if err == nil {
			e.Key = first(e.Key, e.Oversight.RequestKey)
			e.ID = first(e.ID, "oversight:"+e.Oversight.EventID)
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
	return n
}
