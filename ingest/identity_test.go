package ingest

import (
	"strings"
	"testing"

	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/raw"
)

// Tokens bound to one reviewer.
const (
	tokLee    = "test-token-lee"    // name "lee-cli", reviewer lee
	tokMallet = "test-token-mallet" // name "mallet", reviewer unset: mallet
)

func boundTokens(c *Config) {
	c.Auth.Tokens = append(c.Auth.Tokens,
		auth.Token{Name: "lee-cli", SHA256: auth.Hash(tokLee), Scopes: []auth.Scope{auth.ScopeOversight, auth.ScopeAccess}, Reviewer: "lee"},
		auth.Token{Name: "mallet", SHA256: auth.Hash(tokMallet), Scopes: []auth.Scope{auth.ScopeOversight, auth.ScopeAccess}})
}

// TestReviewerBinding: an oversight event's reviewer and an access event's
// actor must be the reviewer the posting token is bound to (its name unless
// configured; "*" for the dashboards, which authenticate their users). A
// mismatch is 403 reviewer_mismatch naming the field, and the body is kept
// on the DLQ; every accepted event carries the token's name.
func TestReviewerBinding(t *testing.T) {
	fp := &fakeProducer{}
	h := startFake(t, fp, boundTokens)
	review := event(t, "oversight_review.json")   // reviewer lee
	access := event(t, "access_record_view.json") // actor lee
	for _, tc := range []struct {
		name, token, path string
		body              []byte
		code              int
		reason, field     string
	}{
		{"bound to lee, names lee", tokLee, "/v1/oversight", review, 200, "", ""},
		{"bound to lee, access as lee", tokLee, "/v1/access", access, 200, "", ""},
		{"bound to itself, names lee", tokMallet, "/v1/oversight", review, 403, "reviewer_mismatch", "reviewer.id"},
		{"bound to itself, access as lee", tokMallet, "/v1/access", access, 403, "reviewer_mismatch", "actor.id"},
		{"bound to lee, names another", tokLee, "/v1/oversight", []byte(strings.Replace(string(review), `"id": "lee"`, `"id": "rita"`, 1)), 403, "reviewer_mismatch", "reviewer.id"},
		{"any reviewer (dashboard)", tokDash, "/v1/oversight", []byte(strings.Replace(strings.Replace(string(review), `"id": "lee"`, `"id": "rita"`, 1), "dash-5b1e", "dash-5b1d", 1)), 200, "", ""},
		{"its own name", tokMallet, "/v1/oversight", []byte(strings.Replace(strings.Replace(string(review), `"id": "lee"`, `"id": "mallet"`, 1), "dash-5b1e", "dash-5b1f", 1)), 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(fp.recs)
			r := h.post(tc.path, tc.token, tc.body)
			if r.code != tc.code || r.err.Reason != tc.reason || r.err.Field != tc.field {
				t.Fatalf("%d %s, want %d %s field %q", r.code, r.body, tc.code, tc.reason, tc.field)
			}
			got := fp.recs[n:]
			if len(got) != 1 {
				t.Fatalf("%d records produced, want 1 (the event, or the body on the DLQ)", len(got))
			}
			if tc.code == 403 {
				if got[0].Topic != "fake.dlq" || !strings.HasPrefix(raw.Header(got[0], raw.HeaderReason), "reviewer_mismatch") {
					t.Errorf("refused body: topic %s reason %q", got[0].Topic, raw.Header(got[0], raw.HeaderReason))
				}
				if !strings.Contains(r.err.Error, "may post only as reviewer") {
					t.Errorf("reason text: %s", r.err.Error)
				}
				return
			}
			if got[0].Topic != "fake.raw.gateway" || raw.Header(got[0], raw.HeaderSender) == "" {
				t.Errorf("accepted: topic %s sender %q", got[0].Topic, raw.Header(got[0], raw.HeaderSender))
			}
		})
	}
}

// TestEventIDConflict: re-sending an event unchanged is accepted (a retry);
// the same event id with other bytes is 409 event_id_conflict, kept on the
// DLQ.
func TestEventIDConflict(t *testing.T) {
	fp := &fakeProducer{}
	h := startFake(t, fp, nil)
	review := event(t, "oversight_review.json")
	for i := range 2 {
		if r := h.post("/v1/oversight", tokDash, review); r.code != 200 {
			t.Fatalf("send %d: %d %s", i, r.code, r.body)
		}
	}
	changed := []byte(strings.Replace(string(review), `"outcome": "approve"`, `"outcome": "flag"`, 1))
	r := h.post("/v1/oversight", tokDash, changed)
	if r.code != 409 || r.err.Reason != "event_id_conflict" || !r.err.DeadLettered || !strings.Contains(r.err.Error, "dash-5b1e0c7d9a8f4e3b2c1d0e9f8a7b6c5d") {
		t.Fatalf("changed content under the same id: %d %s", r.code, r.body)
	}
	last := fp.recs[len(fp.recs)-1]
	if last.Topic != "fake.dlq" || string(last.Value) != string(changed) {
		t.Errorf("the conflicting body is not on the DLQ: %s %s", last.Topic, last.Value)
	}
	// Another endpoint's event with another id is unaffected.
	if r := h.post("/v1/gateway", tokAll, event(t, "gateway_allow.json")); r.code != 200 {
		t.Fatalf("gateway: %d %s", r.code, r.body)
	}
}

// TestApprovalAndAccessEvents: approval events go in on /v1/gateway (scope
// gateway) as source approval, keyed by request; access events on
// /v1/access (scope access), each keyed by its own id. Both are validated
// against their schemas.
func TestApprovalAndAccessEvents(t *testing.T) {
	fp := &fakeProducer{}
	h := startFake(t, fp, boundTokens)
	for _, tc := range []struct {
		file, path, token string
		src               raw.Source
		key, id           string
	}{
		{"approval_requested.json", "/v1/gateway", tokAll, raw.SourceApproval, "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", "approval:gw-appr-req-0001"},
		{"approval_approved.json", "/v1/gateway", tokAll, raw.SourceApproval, "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", "approval:gw-appr-ok-0001"},
		{"access_record_view.json", "/v1/access", tokDash, raw.SourceAccess, "access:acc-0001", "access:acc-0001"},
	} {
		n := len(fp.recs)
		if r := h.post(tc.path, tc.token, event(t, tc.file)); r.code != 200 || r.ok.Accepted != 1 {
			t.Fatalf("%s: %d %s", tc.file, r.code, r.body)
		}
		rec := fp.recs[n]
		if rec.Topic != "fake.raw.gateway" || string(rec.Key) != tc.key || raw.Header(rec, raw.HeaderSource) != string(tc.src) ||
			raw.Header(rec, raw.HeaderEventID) != tc.id {
			t.Errorf("%s: topic %s key %q source %q id %q", tc.file, rec.Topic, rec.Key, raw.Header(rec, raw.HeaderSource), raw.Header(rec, raw.HeaderEventID))
		}
	}
	for _, tc := range []struct {
		name, path, token, body, reason, field string
		code                                   int
	}{
		{"approved without approver", "/v1/gateway", tokAll,
			`{"schema":"auditline.approval.v1","event_id":"x1","request_key":"k","occurred_at":"2025-11-22T11:00:00Z","gateway":"g","kind":"approved"}`,
			"invalid_event", "approver", 400},
		{"unknown approval kind", "/v1/gateway", tokAll,
			`{"schema":"auditline.approval.v1","event_id":"x2","request_key":"k","occurred_at":"2025-11-22T11:00:00Z","gateway":"g","kind":"maybe","approver":{"id":"lee"}}`,
			"invalid_event", "kind", 400},
		{"access event on the gateway endpoint", "/v1/gateway", tokAll, string(event(t, "access_record_view.json")), "invalid_event", "schema", 400},
		{"access without actor", "/v1/access", tokDash,
			`{"schema":"auditline.access.v1","event_id":"a2","occurred_at":"2025-11-22T11:00:00Z","action":"export"}`, "invalid_event", "actor", 400},
		{"access scope needed", "/v1/access", tokAll + "-nope", string(event(t, "access_record_view.json")), "invalid_token", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.post(tc.path, tc.token, []byte(tc.body))
			if r.code != tc.code || r.err.Reason != tc.reason || r.err.Field != tc.field {
				t.Fatalf("%d %s, want %d %s %q", r.code, r.body, tc.code, tc.reason, tc.field)
			}
		})
	}
}
