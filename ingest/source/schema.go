package source

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/schemas"
)

// Schemas validates auditline's own events (gateway, oversight) against the
// JSON Schema files embedded from schemas/, with format assertions on (an
// occurred_at that is not RFC 3339 is an error). Safe for concurrent use.
type Schemas struct {
	bySchema map[string]*jsonschema.Schema // "auditline.gateway.v1" → compiled
	printer  *message.Printer
}

// NewSchemas compiles every schema in schemas.Files.
func NewSchemas() (*Schemas, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s := &Schemas{bySchema: map[string]*jsonschema.Schema{}, printer: message.NewPrinter(language.English)}
	for name, file := range schemas.Files {
		b, err := fs.ReadFile(schemas.FS, file)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", file, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", file, err)
		}
		if err := c.AddResource(file, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", file, err)
		}
		sch, err := c.Compile(file)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", file, err)
		}
		s.bySchema[name] = sch
	}
	return s, nil
}

// Gateway decodes one event of a security gateway: a policy decision
// (schemas/gateway-event.v*.json) or an approval event
// (schemas/approval-event.v*.json), told apart by its schema.
func (s *Schemas) Gateway(elem []byte, k body.Kind, format raw.Format) (Event, error) {
	f, err := s.validate(elem, k, "auditline.gateway.", "auditline.approval.")
	if err != nil {
		return Event{}, err
	}
	if strings.HasPrefix(f.schema, "auditline.approval.") {
		return Event{Event: raw.Event{Source: raw.SourceApproval, Format: format, Key: f.requestKey,
			EventID: "approval:" + f.eventID, Value: elem}}, nil
	}
	return Event{Event: raw.Event{Source: raw.SourceGateway, Format: format, Key: f.requestKey,
		EventID: "gateway:" + f.eventID, Value: elem}}, nil
}

// Access decodes one access event (schemas/access-event.v*.json): keyed
// "access:<event_id>", so that each becomes a record of its own.
func (s *Schemas) Access(elem []byte, k body.Kind, format raw.Format) (Event, error) {
	f, err := s.validate(elem, k, "auditline.access.")
	if err != nil {
		return Event{}, err
	}
	return Event{Event: raw.Event{Source: raw.SourceAccess, Format: format, Key: "access:" + f.eventID,
		EventID: "access:" + f.eventID, Value: elem}, Reviewer: f.claims}, nil
}

// Oversight decodes one human oversight event
// (schemas/oversight-event.v*.json). kind sampling_control is marked
// AllPartitions and keyed "sampling_control" (it concerns no one request).
func (s *Schemas) Oversight(elem []byte, k body.Kind, format raw.Format) (Event, error) {
	f, err := s.validate(elem, k, "auditline.oversight.")
	if err != nil {
		return Event{}, err
	}
	ev := Event{Event: raw.Event{Source: raw.SourceOversight, Format: format, Key: f.requestKey,
		EventID: "oversight:" + f.eventID, Value: elem}, Reviewer: f.claims}
	if f.kind == "sampling_control" {
		ev.AllPartitions = true
		if ev.Key == "" {
			ev.Key = "sampling_control"
		}
	}
	return ev, nil
}

// RequestStarted decodes one request_started marker of auditline's LiteLLM
// plugin (schemas/request-started.v*.json): keyed by its request key, so it
// lands on the partition of the request's LiteLLM payloads.
func (s *Schemas) RequestStarted(elem []byte, k body.Kind, format raw.Format) (Event, error) {
	f, err := s.validate(elem, k, "auditline.request_started.")
	if err != nil {
		return Event{}, err
	}
	return Event{Event: raw.Event{Source: raw.SourceRequestStarted, Format: format, Key: f.requestKey,
		EventID: "request_started:" + f.eventID, Value: elem}}, nil
}

// Attempt decodes one attempt event of auditline's LiteLLM plugin
// (schemas/litellm-attempt.v*.json): one upstream call of a request, keyed by
// its request key like the request's LiteLLM payloads.
func (s *Schemas) Attempt(elem []byte, k body.Kind, format raw.Format) (Event, error) {
	f, err := s.validate(elem, k, "auditline.attempt.")
	if err != nil {
		return Event{}, err
	}
	return Event{Event: raw.Event{Source: raw.SourceAttempt, Format: format, Key: f.requestKey,
		EventID: "attempt:" + f.eventID, Value: elem}}, nil
}

// GatewayConfig decodes one gateway_config event of auditline's LiteLLM
// plugin (schemas/gateway-config.v*.json), keyed by its emitter.
func (s *Schemas) GatewayConfig(elem []byte, k body.Kind, format raw.Format) (Event, error) {
	f, err := s.validate(elem, k, "auditline.gateway_config.")
	if err != nil {
		return Event{}, err
	}
	return Event{Event: raw.Event{Source: raw.SourceGatewayConfig, Format: format, Key: f.emitter,
		EventID: "gateway_config:" + f.eventID, Value: elem}}, nil
}

type ownFields struct {
	schema, eventID, requestKey, kind, emitter string
	claims                                     string // reviewer.id or actor.id
}

func (s *Schemas) validate(elem []byte, k body.Kind, prefixes ...string) (ownFields, error) {
	var f ownFields
	if err := object(elem, k, map[string]*string{"schema": &f.schema}); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Field == "schema" {
			return f, fe
		}
		return f, err
	}
	if f.schema == "" {
		return f, &FieldError{Field: "schema", Msg: fmt.Sprintf("missing (want one of %s)", s.names(prefixes))}
	}
	sch, ok := s.bySchema[f.schema]
	if !ok || !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(f.schema, p) }) {
		return f, &FieldError{Field: "schema", Msg: fmt.Sprintf("%q is not accepted here (want one of %s)", f.schema, s.names(prefixes))}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(elem))
	if err != nil {
		// Valid for our scanner but not for RFC 8259: a Python NaN/Infinity token.
		return f, &FieldError{Msg: "not RFC 8259 JSON (NaN and Infinity are not allowed in auditline's own events): " + err.Error()}
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return f, schemaError(ve, s.printer)
		}
		return f, &FieldError{Msg: err.Error()}
	}
	m := inst.(map[string]any)
	f.eventID, _ = m["event_id"].(string)
	f.requestKey, _ = m["request_key"].(string)
	f.kind, _ = m["kind"].(string)
	f.emitter, _ = m["emitter"].(string)
	for _, who := range []string{"reviewer", "actor"} {
		if o, ok := m[who].(map[string]any); ok {
			f.claims, _ = o["id"].(string)
		}
	}
	return f, nil
}

func (s *Schemas) names(prefixes []string) string {
	var out []string
	for n := range s.bySchema {
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(n, p) }) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// schemaError turns the validator's error tree into one FieldError naming
// one leaf: its instance path, dotted ("policy.decision", "subject.roles.0"),
// with a missing required property appended to the path. The validator
// checks an object's properties in map order, so the order of the leaves
// varies between runs; the leaf named is the first by instance path, then
// keyword location, so that one body always gets one answer.
func schemaError(ve *jsonschema.ValidationError, p *message.Printer) *FieldError {
	var leaf *jsonschema.ValidationError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if leaf == nil || leafBefore(e, leaf) {
				leaf = e
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	path := append([]string(nil), leaf.InstanceLocation...)
	msg := leaf.ErrorKind.LocalizedString(p)
	if req, ok := leaf.ErrorKind.(*kind.Required); ok && len(req.Missing) > 0 {
		path = append(path, req.Missing[0])
		msg = "missing (required)"
	}
	return &FieldError{Field: strings.Join(path, "."), Msg: msg}
}

// leafBefore orders validation errors by instance path, then keyword location.
func leafBefore(a, b *jsonschema.ValidationError) bool {
	if c := slices.Compare(a.InstanceLocation, b.InstanceLocation); c != 0 {
		return c < 0
	}
	return strings.Join(a.ErrorKind.KeywordPath(), "/") < strings.Join(b.ErrorKind.KeywordPath(), "/")
}
