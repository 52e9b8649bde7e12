package source

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
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

// Gateway decodes one gateway event (schemas/gateway-event.v*.json).
func (s *Schemas) Gateway(elem []byte, k body.Kind, format raw.Format) (Event, error) {
	f, err := s.validate(elem, k, "auditline.gateway.")
	if err != nil {
		return Event{}, err
	}
	return Event{Event: raw.Event{Source: raw.SourceGateway, Format: format, Key: f.requestKey,
		EventID: "gateway:" + f.eventID, Value: elem}}, nil
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
		EventID: "oversight:" + f.eventID, Value: elem}}
	if f.kind == "sampling_control" {
		ev.AllPartitions = true
		if ev.Key == "" {
			ev.Key = "sampling_control"
		}
	}
	return ev, nil
}

type ownFields struct{ schema, eventID, requestKey, kind string }

func (s *Schemas) validate(elem []byte, k body.Kind, prefix string) (ownFields, error) {
	var f ownFields
	if err := object(elem, k, map[string]*string{"schema": &f.schema}); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Field == "schema" {
			return f, fe
		}
		return f, err
	}
	if f.schema == "" {
		return f, &FieldError{Field: "schema", Msg: fmt.Sprintf("missing (want one of %s)", s.names(prefix))}
	}
	sch, ok := s.bySchema[f.schema]
	if !ok || !strings.HasPrefix(f.schema, prefix) {
		return f, &FieldError{Field: "schema", Msg: fmt.Sprintf("%q is not accepted here (want one of %s)", f.schema, s.names(prefix))}
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
	return f, nil
}

func (s *Schemas) names(prefix string) string {
	var out []string
	for n := range s.bySchema {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// schemaError turns the validator's error tree into one FieldError naming the
// first leaf: its instance path, dotted ("policy.decision", "subject.roles.0"),
// with a missing required property appended to the path.
func schemaError(ve *jsonschema.ValidationError, p *message.Printer) *FieldError {
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	path := append([]string(nil), leaf.InstanceLocation...)
	msg := leaf.ErrorKind.LocalizedString(p)
	if req, ok := leaf.ErrorKind.(*kind.Required); ok && len(req.Missing) > 0 {
		path = append(path, req.Missing[0])
		msg = "missing (required)"
	}
	return &FieldError{Field: strings.Join(path, "."), Msg: msg}
}
