package envelope

import (
	"encoding/json"
	"fmt"
)

// Key scopes (archive.raw.key_by): whose key seals an event.
const (
	ByTeam    = "team"     // one key per team: "team:<team id>"
	ByTenant  = "tenant"   // one key per tenant (identity.tenant): "tenant:<tenant>"
	ByEndUser = "end_user" // one key per end user (data subject): "end_user:<id>"
	ByArchive = "archive"  // one key for everything: "archive"
)

// Unattributed is the subject of events that name no team or end user.
const Unattributed = "unattributed"

// paths are the members looked up per scope, first found wins: LiteLLM's
// StandardLoggingPayload (metadata.user_api_key_*, end_user), and auditline's
// event schemas (subject.tenant and subject.id of gateway and approval
// events, tenant of access events, reviewer.tenant of oversight events).
// tenant follows the record's identity.tenant: the gateway subject's tenant,
// else the LiteLLM org id, else "default".
var paths = map[string][][]string{
	ByTeam:    {{"team_id"}, {"metadata", "user_api_key_team_id"}, {"metadata", "team_id"}, {"user_api_key_team_id"}},
	ByTenant:  {{"subject", "tenant"}, {"tenant"}, {"reviewer", "tenant"}, {"metadata", "user_api_key_org_id"}, {"user_api_key_org_id"}},
	ByEndUser: {{"end_user"}, {"end_user_id"}, {"metadata", "user_api_key_end_user_id"}, {"user_api_key_end_user_id"}, {"subject", "id"}},
}

// ValidScope checks a key_by value.
func ValidScope(s string) error {
	switch s {
	case ByTeam, ByTenant, ByEndUser, ByArchive:
		return nil
	}
	return fmt.Errorf("%q is not team, tenant, end_user or archive", s)
}

// Subject returns the data subject of a raw event's bytes under scope: e.g.
// "team:t-42"; "tenant:default" for an event naming no tenant; Unattributed
// for one naming no team or end user (or not JSON).
func Subject(scope string, value []byte) string {
	if scope == ByArchive || scope == "" {
		return ByArchive
	}
	none := Unattributed
	if scope == ByTenant {
		none = ByTenant + ":default"
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(value, &obj) != nil {
		return none
	}
	for _, p := range paths[scope] {
		if id := lookup(obj, p); id != "" {
			return scope + ":" + id
		}
	}
	return none
}

// lookup returns the non-empty string at path, or "".
func lookup(obj map[string]json.RawMessage, path []string) string {
	raw, ok := obj[path[0]]
	if !ok {
		return ""
	}
	if len(path) == 1 {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	}
	var next map[string]json.RawMessage
	if json.Unmarshal(raw, &next) != nil {
		return ""
	}
	return lookup(next, path[1:])
}
