package source

import (
	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
)

// LiteLLM decodes one element of a generic_api callback body: a
// StandardLoggingPayload, or the legacy v1 dict (generic_api_use_v1) whose
// values are all Python str()s. format is the body's wire form; a legacy
// element is labelled raw.FormatLegacyV1 instead, because that is what a
// reader needs to know to parse it.
func LiteLLM(elem []byte, kind body.Kind, format raw.Format) (Event, error) {
	if kind != body.Object {
		return Event{}, &FieldError{Msg: "want a JSON object (a StandardLoggingPayload), got " + kind.String()}
	}
	var id, callID, oldCallID, traceID, status string
	fields := []struct {
		name string
		dst  *string
	}{{"id", &id}, {"litellm_call_id", &callID}, {"call_id", &oldCallID}, {"trace_id", &traceID}, {"status", &status}}
	allStrings, hasStatus, n := true, false, 0
	// found has bit i set once fields[i] was seen.
	var found uint
	const want = 1<<0 | 1<<4 // id and status
	var ferr error
	err := body.Members(elem, func(k, v []byte) bool {
		n++
		if body.KindOf(v) != body.String {
			allStrings = false
		}
		for i, f := range fields {
			if string(k) != f.name {
				continue
			}
			if f.name == "status" {
				hasStatus = true
			}
			s, ok := strField(v)
			if !ok {
				ferr = wrongType(f.name, v)
				return false
			}
			*f.dst = s
			found |= 1 << i
		}
		// Every field we need sits near the top of a StandardLoggingPayload:
		// once id, status and a non-empty litellm_call_id (which outranks the
		// other key fields) are seen, and the object is known not to be a
		// legacy all-strings dict, the rest (most of the bytes) need not be
		// read. The element was validated whole by body.Split already.
		return allStrings || found&want != want || callID == ""
	})
	if err != nil {
		return Event{}, &FieldError{Msg: err.Error()}
	}
	if ferr != nil {
		return Event{}, ferr
	}
	if allStrings && !hasStatus && n > 0 {
		format = raw.FormatLegacyV1
		status = "legacy_v1" // the v1 dict has no status; only successes were sent in it
	}
	key := first(callID, oldCallID, traceID, id)
	if key == "" {
		return Event{}, &FieldError{Field: "id", Msg: "no litellm_call_id, call_id, trace_id or id: the event cannot be joined to its request"}
	}
	eid := "litellm:" + id + ":" + status
	if id == "" {
		eid = "litellm:sha256:" + sum(elem)
	}
	return Event{Event: raw.Event{Source: raw.SourceLiteLLM, Format: format, Key: key, EventID: eid, Value: elem}}, nil
}

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
