package source

import (
	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
)

// Alert event names LiteLLM's webhook alerting sends (WebhookEvent.event).
// Others are accepted too (LiteLLM adds names over time); these are the ones
// documented in docs/ingest.md and exercised by the tests.
var AlertEvents = []string{
	"budget_crossed", "soft_budget_crossed", "threshold_crossed", "projected_limit_exceeded",
	"spend_tracked", "key_created", "internal_user_created",
}

// alertGroups maps every event_group spelling, old and new, to the newest
// name (Litellm_EntityType).
var alertGroups = map[string]string{
	"key": "key", "user": "user", "internal_user": "user", "end_user": "end_user", "customer": "end_user",
	"team": "team", "team_member": "team_member", "organization": "organization", "project": "project", "proxy": "proxy",
}

// NormalizeGroup returns the newest name of an event_group (unknown names
// unchanged).
func NormalizeGroup(g string) string {
	if n, ok := alertGroups[g]; ok {
		return n
	}
	return g
}

// Alert decodes one LiteLLM alerting webhook (WebhookEvent). Its key names the
// budget entity, so that all alerts of one entity share a partition and a
// reader can keep the latest per key.
func Alert(elem []byte, kind body.Kind, format raw.Format) (Event, error) {
	var event, group, token, userID, customerID, teamID, orgID, projectID string
	err := object(elem, kind, map[string]*string{
		"event": &event, "event_group": &group, "token": &token, "user_id": &userID,
		"customer_id": &customerID, "team_id": &teamID, "organization_id": &orgID, "project_id": &projectID,
	})
	if err != nil {
		return Event{}, err
	}
	if event == "" {
		return Event{}, &FieldError{Field: "event", Msg: "missing: not a LiteLLM WebhookEvent"}
	}
	if group == "" {
		return Event{}, &FieldError{Field: "event_group", Msg: "missing: not a LiteLLM WebhookEvent"}
	}
	group = NormalizeGroup(group)
	var entity string
	switch group {
	case "key":
		entity = token
	case "user":
		entity = userID
	case "end_user":
		entity = customerID
	case "team":
		entity = teamID
	case "team_member":
		entity = teamID + "/" + userID
	case "organization":
		entity = orgID
	case "project":
		entity = projectID
	case "proxy":
		entity = ""
	default:
		entity = first(token, userID, customerID, teamID, orgID, projectID)
	}
	return Event{Event: raw.Event{Source: raw.SourceAlert, Format: format, Key: group + ":" + entity,
		EventID: "alert:" + sum(elem), Value: elem}}, nil
}

// Admin decodes one StandardAuditLogPayload (audit_log_callbacks).
func Admin(elem []byte, kind body.Kind, format raw.Format) (Event, error) {
	var id, objectID string
	if err := object(elem, kind, map[string]*string{"id": &id, "object_id": &objectID}); err != nil {
		return Event{}, err
	}
	if objectID == "" {
		return Event{}, &FieldError{Field: "object_id", Msg: "missing: not a StandardAuditLogPayload"}
	}
	eid := "admin:" + id
	if id == "" {
		eid = "admin:sha256:" + sum(elem)
	}
	return Event{Event: raw.Event{Source: raw.SourceAdmin, Format: format, Key: objectID, EventID: eid, Value: elem}}, nil
}
