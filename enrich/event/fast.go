package event

// The fast path of ParseLiteLLM. It fills the same wire struct the general
// path (go-json-experiment's reflective decoder) fills, by handing each
// member's raw value to the same UnmarshalJSON method the general decoder
// calls with the same bytes, so both produce the same LiteLLM by
// construction; what differs is only how the members are found: a
// validating byte scanner (scan.go) that skips what enrich does not read at
// memory speed, instead of a token reader that looks every member name up
// in a folded-name table.
//
// It declines — and the general path decides — whenever the two could
// differ: Python's NaN/Infinity tokens (not JSON, so the scan fails; in
// strings sanitize leaves them, so a payload that scans needs no sanitize),
// an escaped member name, a
// name seen twice in an object it decodes (the general path merges or
// overwrites), an object member of another shape (an error there), nesting
// past maxScanDepth, a lone surrogate escape, and anything that is not one
// JSON object. FuzzFastLiteLLM checks the two paths agree on every input.
//
// Measured (BenchmarkParseLiteLLM, bench/PROFILE.md): see there.

import (
	"bytes"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// unmarshaler is what the flex types implement (jsontext.Value too, but
// the fast path keeps a value in place instead of copying it).
type unmarshaler interface{ UnmarshalJSON([]byte) error }

// fastLiteLLM decodes b (a payload trimmed of spaces) into w, which must be
// zero; false means "use the general path" (w may then be partly filled).
func fastLiteLLM(b []byte, w *wireLiteLLM) bool {
	s := scanner{b: b, strs: strsPool.Get().(*strs)}
	defer s.strs.release()
	if !s.members(0, w.field) {
		return false
	}
	s.ws()
	if s.i != len(b) {
		return false
	}
	s.strs.copyOut(b)
	return true
}

// strs collects the flexString members whose value is taken as it lies in
// the payload (what flexString.UnmarshalJSON keeps of a string without
// escapes, a number, true or false), to copy them all out in one
// allocation once the payload has scanned: a payload has a few dozen such
// members, each of which was a string allocation of its own.
type strs struct {
	dst  []*flexString
	span [][2]int // in the payload
	size int
}

var strsPool = sync.Pool{New: func() any { return new(strs) }}

// maxShared is the longest value copied out with the others: a longer one
// gets an allocation of its own, so that a large value the record does not
// use (an error_str of a success) is not kept alive by the small ones.
const maxShared = 256

// add records that *d is b[start:end] (a scanned value), or reports false
// when the value is not one it takes (flexString.UnmarshalJSON decides).
func (t *strs) add(d *flexString, b []byte, start, end int) bool {
	switch b[start] {
	case '"':
		if bytes.IndexByte(b[start:end], '\\') >= 0 {
			return false
		}
		start, end = start+1, end-1
		if string(b[start:end]) == "None" {
			start = end // pyNone
		}
	case 'n', '{', '[':
		return false
	}
	if start == end {
		*d = ""
		return true
	}
	return t.put(d, start, end)
}

// put records that *d is b[start:end] of the payload, unless it is longer
// than maxShared (false: the caller copies it alone).
func (t *strs) put(d *flexString, start, end int) bool {
	if end-start > maxShared {
		return false
	}
	t.dst = append(t.dst, d)
	t.span = append(t.span, [2]int{start, end})
	t.size += end - start
	return true
}

// copyOut sets every recorded member, from one copy of their bytes.
func (t *strs) copyOut(b []byte) {
	var sb strings.Builder
	sb.Grow(t.size)
	for _, sp := range t.span {
		sb.Write(b[sp[0]:sp[1]])
	}
	all, at := sb.String(), 0
	for i, d := range t.dst {
		n := t.span[i][1] - t.span[i][0]
		*d = flexString(all[at : at+n])
		at += n
	}
}

// release empties t (no pointer into a decoded struct stays) and returns
// it to the pool.
func (t *strs) release() {
	clear(t.dst)
	t.dst, t.span, t.size = t.dst[:0], t.span[:0], 0
	strsPool.Put(t)
}

// members decodes the object at s.i: field returns each member's
// destination (nil: skip the value) and a bit unique within the object,
// to refuse a repeated name.
func (s *scanner) members(depth int, field func(name []byte) (any, uint64)) bool {
	if s.peek() != '{' {
		return false
	}
	var seen uint64
	empty, ok := s.open(depth)
	for ok && !empty {
		var name []byte
		if name, ok = s.name(); !ok {
			return false
		}
		dst, bit := field(name)
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if !s.member(depth, dst) {
			return false
		}
		empty, ok = s.next()
	}
	return ok
}

// member decodes one member's value into dst.
func (s *scanner) member(depth int, dst any) bool {
	switch d := dst.(type) {
	case nil:
		_, _, ok := s.value(depth)
		return ok
	case *wireMeta:
		// UnmarshalJSONFrom: an object is decoded in place, anything else
		// by UnmarshalJSON.
		if s.peek() == '{' {
			return s.members(depth+1, d.field)
		}
		start, end, ok := s.value(depth)
		if ok {
			_ = d.UnmarshalJSON(s.b[start:end])
		}
		return ok
	case *flexString:
		start, end, ok := s.value(depth)
		if ok && (s.strs == nil || !s.strs.add(d, s.b, start, end)) {
			_ = d.UnmarshalJSON(s.b[start:end])
		}
		return ok
	case *flexStrings:
		start, end, ok := s.value(depth)
		if ok && (s.b[start] != '[' || !d.plainStrings(s.b[start:end], s.strs, start)) {
			_ = d.UnmarshalJSON(s.b[start:end])
		}
		return ok
	case *jsontext.Value:
		// Kept as it lies in the payload: parseLiteLLM copies what it keeps.
		start, end, ok := s.value(depth)
		if ok {
			*d = s.b[start:end:end]
		}
		return ok
	case unmarshaler:
		start, end, ok := s.value(depth)
		if ok {
			_ = d.UnmarshalJSON(s.b[start:end]) // the flex types never fail
		}
		return ok
	case **wireStatusFields:
		return nullOr(s, depth, d, (*wireStatusFields).field)
	case **wireError:
		return nullOr(s, depth, d, (*wireError).field)
	case **wireHidden:
		return nullOr(s, depth, d, (*wireHidden).field)
	case **wireHeaders:
		return nullOr(s, depth, d, (*wireHeaders).field)
	case **wireEmission:
		return nullOr(s, depth, d, (*wireEmission).field)
	}
	return false
}

// nullOr decodes a pointer-to-struct member: null leaves it nil, an object
// fills a new struct; any other value fails (an error on the general path).
func nullOr[T any](s *scanner, depth int, p **T, field func(*T, []byte) (any, uint64)) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '{':
		*p = new(T)
		v := *p
		return s.members(depth+1, func(name []byte) (any, uint64) { return field(v, name) })
	}
	return false
}

func (w *wireLiteLLM) field(name []byte) (any, uint64) {
	switch string(name) {
	case "id":
		return &w.ID, 1 << 0
	case "trace_id":
		return &w.TraceID, 1 << 1
	case "litellm_call_id":
		return &w.CallID, 1 << 2
	case "call_id":
		return &w.OldCallID, 1 << 3
	case "call_type":
		return &w.CallType, 1 << 4
	case "stream":
		return &w.Stream, 1 << 5
	case "response_cost":
		return &w.ResponseCost, 1 << 6
	case "cost":
		return &w.Cost, 1 << 7
	case "status":
		return &w.Status, 1 << 8
	case "status_fields":
		return &w.StatusFields, 1 << 9
	case "custom_llm_provider":
		return &w.Provider, 1 << 10
	case "prompt_tokens":
		return &w.PromptTokens, 1 << 11
	case "completion_tokens":
		return &w.CompletionTokens, 1 << 12
	case "startTime":
		return &w.StartTime, 1 << 13
	case "endTime":
		return &w.EndTime, 1 << 14
	case "model":
		return &w.Model, 1 << 15
	case "model_id":
		return &w.ModelID, 1 << 16
	case "model_group":
		return &w.ModelGroup, 1 << 17
	case "api_base":
		return &w.APIBase, 1 << 18
	case "metadata":
		return &w.Metadata, 1 << 19
	case "cache_hit":
		return &w.CacheHit, 1 << 20
	case "saved_cache_cost":
		return &w.SavedCacheCost, 1 << 21
	case "request_tags":
		return &w.RequestTags, 1 << 22
	case "end_user":
		return &w.EndUser, 1 << 23
	case "user":
		return &w.User, 1 << 24
	case "requester_ip_address":
		return &w.RequesterIP, 1 << 25
	case "user_agent":
		return &w.UserAgent, 1 << 26
	case "messages":
		return &w.Messages, 1 << 27
	case "response":
		return &w.Response, 1 << 28
	case "error_str":
		return &w.ErrorStr, 1 << 29
	case "error_information":
		return &w.ErrorInformation, 1 << 30
	case "hidden_params":
		return &w.HiddenParams, 1 << 31
	case "guardrail_information":
		return &w.Guardrails, 1 << 32
	case "usage":
		return &w.Usage, 1 << 33
	case "auditline":
		return &w.Auditline, 1 << 34
	}
	return nil, 0
}

func (m *wireMeta) field(name []byte) (any, uint64) {
	f := &m.wireMetaFields
	switch string(name) {
	case "user_api_key_hash":
		return &f.KeyHash, 1 << 0
	case "user_api_key_alias":
		return &f.KeyAlias, 1 << 1
	case "user_api_key_spend":
		return &f.KeySpend, 1 << 2
	case "user_api_key_max_budget":
		return &f.KeyMax, 1 << 3
	case "user_api_key_budget_reset_at":
		return &f.KeyResetAt, 1 << 4
	case "user_api_key_user_spend":
		return &f.UserSpend, 1 << 5
	case "user_api_key_user_max_budget":
		return &f.UserMax, 1 << 6
	case "user_api_key_team_spend":
		return &f.TeamSpend, 1 << 7
	case "user_api_key_team_max_budget":
		return &f.TeamMax, 1 << 8
	case "user_api_key_org_id":
		return &f.OrgID, 1 << 9
	case "user_api_key_org_alias":
		return &f.OrgAlias, 1 << 10
	case "user_api_key_team_id":
		return &f.TeamID, 1 << 11
	case "user_api_key_team_alias":
		return &f.TeamAlias, 1 << 12
	case "team_id":
		return &f.TeamID2, 1 << 13
	case "team_alias":
		return &f.TeamAlias2, 1 << 14
	case "user_api_key_project_id":
		return &f.ProjectID, 1 << 15
	case "user_api_key_user_id":
		return &f.UserID, 1 << 16
	case "user_api_key_user_email":
		return &f.UserEmail, 1 << 17
	case "user_api_key_end_user_id":
		return &f.EndUser, 1 << 18
	case "user_api_key_request_route":
		return &f.Route, 1 << 19
	case "requester_ip_address":
		return &f.RequesterIP, 1 << 20
	case "user_agent":
		return &f.UserAgent, 1 << 21
	case "applied_guardrails":
		return &f.AppliedGuardrails, 1 << 22
	case "tags":
		return &f.Tags, 1 << 23
	}
	return nil, 0
}

func (f *wireStatusFields) field(name []byte) (any, uint64) {
	if string(name) == "guardrail_status" {
		return &f.GuardrailStatus, 1
	}
	return nil, 0
}

func (e *wireError) field(name []byte) (any, uint64) {
	switch string(name) {
	case "error_code":
		return &e.Code, 1 << 0
	case "error_class":
		return &e.Class, 1 << 1
	case "llm_provider":
		return &e.Provider, 1 << 2
	case "error_message":
		return &e.Message, 1 << 3
	case "normalized_error":
		return &e.Normalized, 1 << 4
	case "error_rate_limit_category":
		return &e.RateLimitCategory, 1 << 5
	case "error_rate_limit_type":
		return &e.RateLimitType, 1 << 6
	case "error_budget_entity_type":
		return &e.BudgetEntityType, 1 << 7
	case "error_budget_entity_id":
		return &e.BudgetEntityID, 1 << 8
	case "error_budget_limit":
		return &e.BudgetLimit, 1 << 9
	case "error_budget_spend":
		return &e.BudgetSpend, 1 << 10
	}
	return nil, 0
}

func (h *wireHidden) field(name []byte) (any, uint64) {
	switch string(name) {
	case "model_id":
		return &h.ModelID, 1 << 0
	case "api_base":
		return &h.APIBase, 1 << 1
	case "litellm_model_name":
		return &h.LiteLLMModelName, 1 << 2
	case "additional_headers":
		return &h.Headers, 1 << 3
	}
	return nil, 0
}

func (h *wireHeaders) field(name []byte) (any, uint64) {
	switch string(name) {
	case "x-litellm-attempted-retries":
		return &h.Retries, 1 << 0
	case "x-litellm-attempted-fallbacks":
		return &h.Fallbacks, 1 << 1
	}
	return nil, 0
}

func (w *wireEmission) field(name []byte) (any, uint64) {
	switch string(name) {
	case "emitter":
		return &w.Emitter, 1 << 0
	case "seq":
		return &w.Seq, 1 << 1
	case "config_hash":
		return &w.ConfigHash, 1 << 2
	case "config_seq":
		return &w.ConfigSeq, 1 << 3
	}
	return nil, 0
}
