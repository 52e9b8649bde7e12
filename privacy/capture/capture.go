// Package capture applies the capture policy (enrich.content.policy: full,
// redacted, hash or none) to every copy of a source event that auditline
// keeps besides the raw Kafka topics: ClickHouse raw_events, the DLQ (what
// ingest and enrich dead-letter), and error texts in records and logs.
//
// Guarantee: under hash and none, no request or response content and no
// client header leaves the raw topics in clear. The raw topics themselves keep
// the original bytes (they are the evidence every record's SHA-256s point at)
// for the retention `auditline migrate` sets on them (privacy/retention).
//
// What counts as content is a fixed, documented set of member names
// (ContentMembers), matched at any depth of a JSON body: LiteLLM's messages,
// response, client headers (requester_custom_headers), guardrail verdicts
// (which quote the text they judged), prompt variables, vector-store queries
// and results, tracebacks. Error texts (TextMembers) quote requests too; they
// are kept masked by privacy/redact under every policy but full, as the
// decision record keeps them (a record without its error would hide why a
// request failed).
//
// The transform is byte-preserving outside the replaced values: every other
// byte of the body (member order, spacing, numbers) is unchanged, so SQL that
// reads raw_events bodies by pattern (the gateway_configs view) reads the
// same values. A replaced value becomes the JSON string "sha256:<hex>" of
// its raw JSON bytes as received (hash, none) or its masked JSON (redacted).
// A string that itself quotes a content member (LiteLLM's legacy v1 format
// sends dicts as Python str()) is content as a whole. A body that is not JSON
// cannot be inspected: under hash and none it becomes a stub naming only its
// SHA-256 and size; under redacted it is masked as text.
//
// With pseudonymisation on (WithPseudonyms, enrich.content.pseudonymise),
// the identity members of the pseudonymised fields (IdentityMembers) hold
// their pseudonyms in every copy, under every policy.
//
// The output is a pure function of (policy, pseudonym key, bytes), so a
// replayed store or DLQ write stores the same bytes.
package capture

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/auditline/auditline/privacy/pseudonym"
	"github.com/auditline/auditline/privacy/redact"
)

// Policy is a capture policy.
type Policy string

// The capture policies (docs/privacy.md).
const (
	Full     Policy = "full"     // content kept as received: personal data, an explicit opt-in
	Redacted Policy = "redacted" // content kept with personal data and secrets masked
	Hash     Policy = "hash"     // only the SHA-256 of the content (the default)
	None     Policy = "none"     // as hash for copies: the SHA-256 is the least that still proves what was sent
)

// Default is the policy when none is configured.
const Default = Hash

// Parse returns the policy named s.
func Parse(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Full, Redacted, Hash, None:
		return p, nil
	}
	return "", fmt.Errorf("capture policy %q: want full, redacted, hash or none", s)
}

// KeepsContent reports whether p keeps content (masked or not).
func (p Policy) KeepsContent() bool { return p == Full || p == Redacted }

// ContentMembers are the JSON member names whose values are request or
// response content or client headers, at any depth.
var ContentMembers = []string{
	"messages", "response", "prompt", "input", "completion", "tools", "functions",
	"requester_custom_headers", "headers",
	"guardrail_response", "prompt_variables",
	"vector_store_search_response", "query",
	"traceback", "traceback_str",
	"raw_request", "raw_response", "original_response", "request_body", "response_body",
}

// TextMembers are member names whose string values are error texts: masked
// by privacy/redact under every policy but full.
var TextMembers = []string{"error_str", "error_message", "exception", "error"}

// IdentityMembers maps the member names of source events (matched at any
// depth) to the record field whose value they carry: when that field is
// pseudonymised (enrich.content.pseudonymise), a copy keeps the member's
// string value as its pseudonym. "subject" and "actor" objects (gateway,
// approval, oversight and access events) have their "id" (and the actor's
// "client") pseudonymised.
var IdentityMembers = map[string]string{
	"user_api_key_hash": "identity.key_hash", "user_api_key": "identity.key_hash",
	"user_api_key_alias":      "identity.key_alias",
	"user_api_key_user_id":    "identity.user_id",
	"user_api_key_user_email": "identity.user_email",
	"end_user":                "identity.end_user", "user_api_key_end_user_id": "identity.end_user", "user": "identity.end_user",
	"requester_ip_address": "identity.requester_ip",
	"user_agent":           "identity.user_agent",
	"subject_id":           "identity.subject",
}

// identityObjects are members whose object value names a person in the
// members listed, by the record field they become.
var identityObjects = map[string]map[string]string{
	"subject":  {"id": "identity.subject"},
	"reviewer": {"id": "identity.subject"},
	"approver": {"id": "identity.subject"},
	"actor":    {"id": "access.actor", "client": "access.client"},
}

// Capturer applies one policy. It is safe for concurrent use.
type Capturer struct {
	policy  Policy
	red     *redact.Redactor
	content map[string]bool
	text    map[string]bool
	// ident: identity members whose field pseud pseudonymises (WithPseudonyms).
	ident map[string]string
	objs  map[string]map[string]string
	pseud *pseudonym.Pseudonymiser
	// names: every member name walk looks up (content and text members
	// unless the policy is full, ident and objs), for skippable.
	names map[string]bool
}

// New returns a Capturer for p (Default when p is empty).
func New(p Policy) *Capturer {
	if p == "" {
		p = Default
	}
	c := &Capturer{policy: p, red: redact.New(), content: map[string]bool{}, text: map[string]bool{}}
	for _, m := range ContentMembers {
		c.content[m] = true
	}
	for _, m := range TextMembers {
		c.text[m] = true
	}
	c.setNames()
	return c
}

func (c *Capturer) setNames() {
	c.names = map[string]bool{}
	if c.policy != Full {
		for m := range c.content {
			c.names[m] = true
		}
		for m := range c.text {
			c.names[m] = true
		}
	}
	for m := range c.ident {
		c.names[m] = true
	}
	for m := range c.objs {
		c.names[m] = true
	}
}

// WithPseudonyms returns a Capturer that, besides the policy, keeps the
// identity members of the fields p pseudonymises (IdentityMembers) as their
// pseudonyms, under every policy — full included — so that no copy holds an
// identity the records hide. A nil p returns c.
func (c *Capturer) WithPseudonyms(p *pseudonym.Pseudonymiser) *Capturer {
	if p == nil {
		return c
	}
	out := *c
	out.pseud, out.ident, out.objs = p, map[string]string{}, map[string]map[string]string{}
	for m, f := range IdentityMembers {
		if p.Has(f) {
			out.ident[m] = f
		}
	}
	for m, fs := range identityObjects {
		for k, f := range fs {
			if p.Has(f) {
				if out.objs[m] == nil {
					out.objs[m] = map[string]string{}
				}
				out.objs[m][k] = f
			}
		}
	}
	out.setNames()
	return &out
}

// Policy returns the policy c applies.
func (c *Capturer) Policy() Policy { return c.policy }

// Text returns an error text or log value as p keeps it: unchanged under
// full, masked by privacy/redact otherwise.
func (c *Capturer) Text(s string) string {
	if c.policy == Full {
		return s
	}
	return c.red.String(s)
}

// Stub is the JSON a non-JSON body becomes under hash and none.
func Stub(p Policy, b []byte) []byte {
	sum := sha256.Sum256(b)
	return fmt.Appendf(nil, `{"auditline_capture":%q,"sha256":"%s","size":%d}`, p, hex.EncodeToString(sum[:]), len(b))
}

// Body returns b, one source event's bytes (or any body a sender posted), as
// the policy lets a copy keep it. It returns b itself when nothing needs to
// change.
func (c *Capturer) Body(b []byte) []byte {
	if c.policy == Full && c.pseud == nil {
		return b
	}
	if !c.mentions(b) && jsontext.Value(b).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
		return b // JSON naming no content, text or identity member: nothing to replace
	}
	out, ok := c.rewrite(b)
	if !ok {
		if c.policy == Full {
			return b // not JSON: no member to pseudonymise (full keeps the bytes)
		}
		if c.policy == Redacted {
			return []byte(c.red.String(string(b)))
		}
		return Stub(c.policy, b)
	}
	return out
}

// mentions reports whether b contains the name of a content, text or
// identity member anywhere, or any escape (a member name may be spelled with
// escapes, {"m\u0065ssages":…}, which the byte search would not see): a
// necessary condition for rewrite to replace anything.
func (c *Capturer) mentions(b []byte) bool {
	if bytes.IndexByte(b, '\\') >= 0 {
		return true
	}
	for m := range c.ident {
		if bytes.Contains(b, []byte(m)) {
			return true
		}
	}
	for m := range c.objs {
		if bytes.Contains(b, []byte(m)) {
			return true
		}
	}
	if c.policy == Full {
		return false
	}
	for _, m := range ContentMembers {
		if bytes.Contains(b, []byte(m)) {
			return true
		}
	}
	for _, m := range TextMembers {
		if bytes.Contains(b, []byte(m)) {
			return true
		}
	}
	return false
}

// splice is one replaced byte range of the input.
type splice struct {
	start, end int64
	with       []byte
}

// rewrite walks b as one JSON value and replaces the content and text
// members' values; ok is false when b is not exactly one JSON value.
func (c *Capturer) rewrite(b []byte) (out []byte, ok bool) {
	d := decoders.Get().(*decoder)
	defer d.release()
	dec := d.reset(b)
	var edits []splice
	if !c.walk(dec, b, 0, &edits) {
		return nil, false
	}
	// Exactly one value: anything but whitespace after it is not JSON.
	if _, err := dec.ReadToken(); err == nil {
		return nil, false
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, false
	}
	if len(edits) == 0 {
		return b, true
	}
	out = make([]byte, 0, len(b))
	var at int64
	for _, e := range edits {
		out = append(out, b[at:e.start]...)
		out = append(out, e.with...)
		at = e.end
	}
	return append(out, b[at:]...), true
}

// decoder is a reusable jsontext.Decoder reading a body in place: from a
// bytes.Buffer the decoder parses the buffer's bytes without copying them
// (and never writes to them).
type decoder struct {
	buf bytes.Buffer
	dec *jsontext.Decoder
}

var decoders = sync.Pool{New: func() any {
	d := &decoder{}
	d.dec = jsontext.NewDecoder(&d.buf)
	return d
}}

func (d *decoder) reset(b []byte) *jsontext.Decoder {
	d.buf = *bytes.NewBuffer(b)
	d.dec.Reset(&d.buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	return d.dec
}

// release returns d to the pool, holding no body.
func (d *decoder) release() {
	d.buf = bytes.Buffer{}
	d.dec.Reset(&d.buf)
	decoders.Put(d)
}

// skipDepth is how deep walk looks for objects and arrays it can skip whole:
// values of the top value's members or elements, and theirs. Deeper ones are
// walked token by token, so that no byte is scanned more than skipDepth
// extra times however deeply a hostile body nests.
const skipDepth = 2

// walk reads one JSON value from dec, the decoder of in, and appends the
// splices it needs (offsets in in, plus base) to edits; false when the value
// does not decode.
func (c *Capturer) walk(dec *jsontext.Decoder, in []byte, base int64, edits *[]splice) bool {
	for {
		d := dec.StackDepth()
		if d > 0 {
			if kind, n := dec.StackIndex(d); kind == '{' && n%2 == 0 && dec.PeekKind() == '"' {
				// The name's raw bytes: looked up as they are when they hold
				// no escape (invalid UTF-8, which unquoting turns into U+FFFD,
				// matches no member either way), else unquoted.
				name, err := dec.ReadValue()
				if err != nil {
					return false
				}
				var key []byte
				if bytes.IndexByte(name, '\\') < 0 {
					key = name[1 : len(name)-1]
				} else {
					var s string
					if err := unquote(name, &s); err != nil {
						return false
					}
					key = []byte(s)
				}
				content, text := c.policy != Full && c.content[string(key)], c.policy != Full && c.text[string(key)]
				f, obj := c.ident[string(key)], c.objs[string(key)]
				if content || text {
					v, err := dec.ReadValue()
					if err != nil {
						return false
					}
					end := dec.InputOffset()
					if with := c.member(content, v); with != nil {
						*edits = append(*edits, splice{base + end - int64(len(v)), base + end, with})
					}
				} else if (f != "" && dec.PeekKind() == '"') || (obj != nil && dec.PeekKind() == '{') {
					v, err := dec.ReadValue()
					if err != nil {
						return false
					}
					end := dec.InputOffset()
					with, ok := c.identity(f, obj, v)
					if !ok {
						return false
					}
					if with != nil {
						*edits = append(*edits, splice{base + end - int64(len(v)), base + end, with})
					}
				}
				continue // the value of any other member is read next
			}
		}
		switch k := dec.PeekKind(); {
		case k == '"' && c.policy == Full:
			if _, err := dec.ReadValue(); err != nil {
				return false
			}
		case k == '"':
			// A string value: content as a whole when it quotes a content member.
			v, err := dec.ReadValue()
			if err != nil {
				return false
			}
			if c.quotesContent(v) {
				end := dec.InputOffset()
				*edits = append(*edits, splice{base + end - int64(len(v)), base + end, c.replace(v)})
			}
		case (k == '{' || k == '[') && d > 0 && d <= skipDepth:
			// An object or array inside the value: read whole when no string
			// in it can be replaced (skippable), else walked token by token.
			at := dec.InputOffset()
			if end, skip := c.skippable(in, int(at)); skip {
				v, err := dec.ReadValue()
				if err != nil {
					return false
				}
				if dec.InputOffset() != int64(end) {
					// Not the value skippable measured (it cannot be: both
					// read the same valid value); walk what was read.
					sub := jsontext.NewDecoder(bytes.NewReader(v), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
					if !c.walk(sub, v, base+dec.InputOffset()-int64(len(v)), edits) {
						return false
					}
				}
				break
			}
			if _, err := dec.ReadToken(); err != nil {
				return false
			}
		default:
			if _, err := dec.ReadToken(); err != nil {
				return false
			}
		}
		if dec.StackDepth() == 0 {
			return true
		}
	}
}

// skippable reports whether the object or array starting at or after in[at]
// (after whitespace and the ':' or ',' before it) holds nothing walk would
// replace, and where it ends. That holds when none of its strings contains a
// backslash (an escape could spell a member name, or a quoted \" of
// quotesContent), a ' (quotesContent) or is exactly a name walk looks up. It
// is a scan of the raw bytes; the caller still decodes the value, which
// validates it, and compares where it ended.
func (c *Capturer) skippable(in []byte, at int) (end int, ok bool) {
	i := at
	for i < len(in) && (in[i] == ' ' || in[i] == '\t' || in[i] == '\n' || in[i] == '\r' || in[i] == ':' || in[i] == ',') {
		i++
	}
	if i == len(in) || (in[i] != '{' && in[i] != '[') {
		return 0, false
	}
	depth := 0
	for ; i < len(in); i++ {
		switch in[i] {
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1, true
			}
		case '"':
			j := bytes.IndexByte(in[i+1:], '"')
			if j < 0 {
				return 0, false
			}
			s := in[i+1 : i+1+j]
			if bytes.IndexByte(s, '\\') >= 0 || bytes.IndexByte(s, '\'') >= 0 || c.names[string(s)] {
				return 0, false
			}
			i += 1 + j
		}
	}
	return 0, false
}

// identity returns the replacement of an identity member's raw value v (a
// string pseudonymised as field f, or an object whose members obj names are),
// nil to keep it; ok is false when v does not decode.
func (c *Capturer) identity(f string, obj map[string]string, v jsontext.Value) ([]byte, bool) {
	if v.Kind() == '"' {
		var s string
		if err := unquote(v, &s); err != nil {
			return nil, false
		}
		ps := c.pseud.Field(f, s)
		if ps == s {
			return nil, true
		}
		q, err := jsontext.AppendQuote(nil, ps)
		return q, err == nil
	}
	// An object: its listed string members pseudonymised, then the whole
	// rewritten as any value (content inside it is still content).
	dec := jsontext.NewDecoder(bytes.NewReader(v), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	var edits []splice
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, false
		}
		field := obj[name.String()] // before the next read: the token is the decoder's buffer
		val, err := dec.ReadValue()
		if err != nil {
			return nil, false
		}
		if field != "" && val.Kind() == '"' {
			end := dec.InputOffset()
			with, ok := c.identity(field, nil, val)
			if !ok {
				return nil, false
			}
			if with != nil {
				edits = append(edits, splice{end - int64(len(val)), end, with})
			}
		}
	}
	out := make([]byte, 0, len(v))
	var at int64
	for _, e := range edits {
		out = append(out, v[at:e.start]...)
		out = append(out, e.with...)
		at = e.end
	}
	out = append(out, v[at:]...)
	if c.policy != Full {
		var ok bool
		if out, ok = c.rewrite(out); !ok {
			return nil, false
		}
	}
	if bytes.Equal(out, v) {
		return nil, true
	}
	return out, true
}

// member returns the replacement of a content (else text) member's raw value
// v, nil to keep it.
func (c *Capturer) member(content bool, v jsontext.Value) []byte {
	if content {
		if v.Kind() == 'n' || c.replaced(v) {
			return nil // null holds nothing; a copy of a copy stays as it is
		}
		return c.replace(v)
	}
	// A text member: only strings are texts; an object (error_information
	// under another name) is walked by nobody, so treat it as content.
	switch v.Kind() {
	case '"':
		var s string
		if err := unquote(v, &s); err != nil {
			return c.replace(v)
		}
		masked := c.red.String(s)
		if masked == s {
			return nil
		}
		q, err := jsontext.AppendQuote(nil, masked)
		if err != nil {
			return c.replace(v)
		}
		return q
	case 'n', 't', 'f', '0':
		return nil
	}
	return c.replace(v)
}

// replace returns what a content value becomes: its masked JSON under
// redacted, else "sha256:<hex>" of its raw bytes.
func (c *Capturer) replace(v []byte) []byte {
	if c.policy == Redacted {
		return c.red.JSON(v)
	}
	sum := sha256.Sum256(v)
	return []byte(`"sha256:` + hex.EncodeToString(sum[:]) + `"`)
}

// replaced reports whether v is already what replace makes under hash and
// none ("sha256:" and 64 hex digits), so that a copy of a DLQ copy (the
// store reads the DLQ into raw_events) keeps the same bytes.
func (c *Capturer) replaced(v []byte) bool {
	if c.policy == Redacted || len(v) != len(`"sha256:"`)+64 || !bytes.HasPrefix(v, []byte(`"sha256:`)) {
		return false
	}
	_, err := hex.DecodeString(string(v[8 : len(v)-1]))
	return err == nil
}

// quotesContent reports whether the raw JSON string v quotes a content
// member name: 'messages', "messages" or \"messages\" followed by a colon.
func (c *Capturer) quotesContent(v []byte) bool {
	// A name counts only when followed by ' or \": a string with neither
	// (most of them) quotes nothing.
	if bytes.IndexByte(v, '\'') < 0 && !bytes.Contains(v, []byte(`\"`)) {
		return false
	}
	s := unsafe.String(unsafe.SliceData(v), len(v)) // read only, within this call
	for _, m := range ContentMembers {
		i := strings.Index(s, m)
		for i >= 0 {
			rest := s[i+len(m):]
			if strings.HasPrefix(rest, "'") || strings.HasPrefix(rest, `\"`) {
				if i > 0 && (s[i-1] == '\'' || s[i-1] == '"') {
					return true
				}
			}
			j := strings.Index(rest, m)
			if j < 0 {
				break
			}
			i += len(m) + j
		}
	}
	return false
}

// unquote decodes the JSON string v, as a decoder read it (with JSON's
// escapes, which differ from Go's in \/ and surrogate pairs).
func unquote(v jsontext.Value, out *string) error {
	if len(v) >= 2 && bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		*out = string(v[1 : len(v)-1]) // no escape and valid UTF-8: the bytes between the quotes
		return nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(v), jsontext.AllowInvalidUTF8(true))
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	*out = tok.String()
	return nil
}
