// Package source knows the shape of each event source ingest accepts: how to
// find an element's Kafka key and stable event id, and what makes an element
// unusable. It reads only the few top-level fields it needs (with
// body.Members, so Python's NaN elsewhere in a LiteLLM payload is no obstacle)
// and never changes the element's bytes.
//
// Keys and event ids (DESIGN.md §2):
//
//	litellm    key litellm_call_id, else call_id, else trace_id, else id
//	           event id "litellm:<id>:<status>" ("litellm:sha256:<hex>" without id)
//	alert      key "<event_group>:<entity id>", event_group normalised to the
//	           newest names (internal_user → user, customer → end_user)
//	           event id "alert:<sha256 of the bytes>" (alerts carry no id)
//	admin      key object_id, event id "admin:<id>"
//	gateway    key request_key, event id "gateway:<event_id>"
//	approval   key request_key, event id "approval:<event_id>" (on /v1/gateway)
//	oversight  key request_key, event id "oversight:<event_id>";
//	           kind sampling_control is marked AllPartitions
//	request_started  key request_key, event id "request_started:<event_id>"
//	gateway_config   key emitter, event id "gateway_config:<event_id>"
//	litellm_attempt  key request_key, event id "attempt:<event_id>"
//	access     key "access:<event_id>", event id "access:<event_id>"
//
// LiteLLM's own shapes are taken as they come (unknown fields, missing
// optional fields, guardrail_information as object or list are all fine): only
// the fields that make the key and the id are checked. auditline's own
// schemas (gateway, oversight) are validated in full against the files in
// schemas/, because their senders can fix and resend a rejected event.
package source

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
)

// Event is one decoded element, ready to become a Kafka record.
type Event struct {
	raw.Event
	// AllPartitions asks for one copy of the event on every partition of its
	// topic (a control event every consumer must see at a deterministic point
	// of its own partition's stream).
	AllPartitions bool
	// Reviewer is the identity the event claims (an oversight event's
	// reviewer.id, an access event's actor.id), which must be the one the
	// posting token is bound to; "" for events that claim none.
	Reviewer string
}

// FieldError says why an element that is valid JSON is not a usable event.
// Field is the JSON path of the offending member ("policy.decision"), or
// empty when the element as a whole is wrong.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func wrongType(field string, v []byte) *FieldError {
	return &FieldError{Field: field, Msg: "want a string, got " + body.KindOf(v).String()}
}

// strField decodes a string-or-null member. ok is false for another type.
func strField(v []byte) (s string, ok bool) {
	if body.KindOf(v) == body.Null {
		return "", true
	}
	return body.Str(v)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// object checks the element is an object and collects the wanted string
// members (missing and null members are ""). A wanted member of another type
// is a FieldError.
func object(elem []byte, kind body.Kind, wanted map[string]*string) error {
	if kind != body.Object {
		return &FieldError{Msg: fmt.Sprintf("want a JSON object, got %s", kind)}
	}
	var ferr error
	err := body.Members(elem, func(k, v []byte) bool {
		dst, ok := wanted[string(k)]
		if !ok {
			return true
		}
		s, ok := strField(v)
		if !ok {
			ferr = wrongType(string(k), v)
			return false
		}
		*dst = s
		return true
	})
	if err != nil {
		return &FieldError{Msg: err.Error()}
	}
	return ferr
}
