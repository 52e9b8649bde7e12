package capture

// The capture transform as it was before issue 17's fast path (a token walk
// of every body), kept verbatim as the reference the differential tests
// compare Body with.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// ref is a Capturer whose methods are the reference transform.
type ref struct{ *Capturer }

// Body returns b, one source event's bytes (or any body a sender posted), as
// the policy lets a copy keep it. It returns b itself when nothing needs to
// change.
func (c ref) refBody(b []byte) []byte {
	if c.policy == Full && c.pseud == nil {
		return b
	}
	if !c.refMentions(b) && jsontext.Value(b).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
		return b // JSON naming no content, text or identity member: nothing to replace
	}
	out, ok := c.refRewrite(b)
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
// identity member anywhere: a necessary condition for rewrite to replace
// anything.
func (c ref) refMentions(b []byte) bool {
	if bytes.IndexByte(b, '\\') >= 0 {
		return true // a member name spelled with escapes (the fix both sides share)
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

// rewrite walks b as one JSON value and replaces the content and text
// members' values; ok is false when b is not exactly one JSON value.
func (c ref) refRewrite(b []byte) (out []byte, ok bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var edits []splice
	for {
		if d := dec.StackDepth(); d > 0 {
			if kind, n := dec.StackIndex(d); kind == '{' && n%2 == 0 && dec.PeekKind() == '"' {
				name, err := dec.ReadToken()
				if err != nil {
					return nil, false
				}
				key := name.String()
				if c.policy != Full && (c.content[key] || c.text[key]) {
					v, err := dec.ReadValue()
					if err != nil {
						return nil, false
					}
					end := dec.InputOffset()
					if with := c.refMember(key, v); with != nil {
						edits = append(edits, splice{end - int64(len(v)), end, with})
					}
				} else if f, obj := c.ident[key], c.objs[key]; (f != "" && dec.PeekKind() == '"') || (obj != nil && dec.PeekKind() == '{') {
					v, err := dec.ReadValue()
					if err != nil {
						return nil, false
					}
					end := dec.InputOffset()
					with, ok := c.refIdentity(f, obj, v)
					if !ok {
						return nil, false
					}
					if with != nil {
						edits = append(edits, splice{end - int64(len(v)), end, with})
					}
				}
				continue // the value of any other member is read next
			}
		}
		if dec.PeekKind() == '"' && c.policy == Full {
			if _, err := dec.ReadValue(); err != nil {
				return nil, false
			}
		} else if dec.PeekKind() == '"' {
			// A string value: content as a whole when it quotes a content member.
			v, err := dec.ReadValue()
			if err != nil {
				return nil, false
			}
			if c.refQuotesContent(v) {
				end := dec.InputOffset()
				edits = append(edits, splice{end - int64(len(v)), end, c.refReplace(v)})
			}
		} else if _, err := dec.ReadToken(); err != nil {
			return nil, false
		}
		if dec.StackDepth() == 0 {
			break
		}
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

// identity returns the replacement of an identity member's raw value v (a
// string pseudonymised as field f, or an object whose members obj names are),
// nil to keep it; ok is false when v does not decode.
func (c ref) refIdentity(f string, obj map[string]string, v jsontext.Value) ([]byte, bool) {
	if v.Kind() == '"' {
		var s string
		if err := refUnquote(v, &s); err != nil {
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
			with, ok := c.refIdentity(field, nil, val)
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
		if out, ok = c.refRewrite(out); !ok {
			return nil, false
		}
	}
	if bytes.Equal(out, v) {
		return nil, true
	}
	return out, true
}

// member returns the replacement of member key's raw value v, nil to keep it.
func (c ref) refMember(key string, v jsontext.Value) []byte {
	if c.content[key] {
		if v.Kind() == 'n' || c.refReplaced(v) {
			return nil // null holds nothing; a copy of a copy stays as it is
		}
		return c.refReplace(v)
	}
	// A text member: only strings are texts; an object (error_information
	// under another name) is walked by nobody, so treat it as content.
	switch v.Kind() {
	case '"':
		var s string
		if err := refUnquote(v, &s); err != nil {
			return c.refReplace(v)
		}
		masked := c.red.String(s)
		if masked == s {
			return nil
		}
		q, err := jsontext.AppendQuote(nil, masked)
		if err != nil {
			return c.refReplace(v)
		}
		return q
	case 'n', 't', 'f', '0':
		return nil
	}
	return c.refReplace(v)
}

// replace returns what a content value becomes: its masked JSON under
// redacted, else "sha256:<hex>" of its raw bytes.
func (c ref) refReplace(v []byte) []byte {
	if c.policy == Redacted {
		return c.red.JSON(v)
	}
	sum := sha256.Sum256(v)
	return []byte(`"sha256:` + hex.EncodeToString(sum[:]) + `"`)
}

// replaced reports whether v is already what replace makes under hash and
// none ("sha256:" and 64 hex digits), so that a copy of a DLQ copy (the
// store reads the DLQ into raw_events) keeps the same bytes.
func (c ref) refReplaced(v []byte) bool {
	if c.policy == Redacted || len(v) != len(`"sha256:"`)+64 || !bytes.HasPrefix(v, []byte(`"sha256:`)) {
		return false
	}
	_, err := hex.DecodeString(string(v[8 : len(v)-1]))
	return err == nil
}

// quotesContent reports whether the raw JSON string v quotes a content
// member name: 'messages', "messages" or \"messages\" followed by a colon.
func (c ref) refQuotesContent(v []byte) bool {
	s := string(v)
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

// unquote decodes the JSON string v (with JSON's escapes, which differ from
// Go's in \/ and surrogate pairs).
func refUnquote(v jsontext.Value, out *string) error {
	dec := jsontext.NewDecoder(bytes.NewReader(v), jsontext.AllowInvalidUTF8(true))
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	*out = tok.String()
	return nil
}
