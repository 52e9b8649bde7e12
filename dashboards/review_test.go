package dashboards

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/topic"
)

// versioned is a fake store that keeps every version of one record, so that
// a review can name an outdated one.
type versioned struct {
	*fake
	mu       sync.Mutex
	versions []record.Decision // v1, v2, …
}

func (v *versioned) Record(_ context.Context, fl query.Filter, id string, version uint32) (query.Detail, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.versions) == 0 || id != v.versions[0].RecordID || !v.visible(fl, v.versions[0].Identity.Tenant) {
		return query.Detail{}, query.ErrNotFound
	}
	if version == 0 {
		version = uint32(len(v.versions))
	}
	if int(version) > len(v.versions) {
		return query.Detail{}, query.ErrNotFound
	}
	d := query.Detail{Decision: v.versions[version-1], Partition: 1, Offset: int64(100 + version)}
	for i := len(v.versions); i >= 1; i-- {
		d.Versions = append(d.Versions, query.Version{Version: uint32(i)})
	}
	return d, nil
}

// add appends the next version, made from the last by mod.
func (v *versioned) add(mod func(*record.Decision)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.versions[len(v.versions)-1]
	d.Oversight = append([]record.Oversight(nil), d.Oversight...)
	d.Version++
	mod(&d)
	v.versions = append(v.versions, d)
}

func reviewServer(t *testing.T) (*reviewHarness, *versioned) {
	t.Helper()
	f := &fake{records: map[string]query.Detail{}}
	d := record.Decision{SchemaVersion: 1, RecordID: idA, Version: 1, Completeness: record.Complete}
	d.Identity.Tenant, d.Identity.UserEmail = "acme", "pat@acme.example"
	d.Request.RequestKey = "key-acme"
	d.Risk = record.Risk{Tier: "high", Sampled: true, SampleReason: "baseline", SampleRate: 0.5}
	v := &versioned{fake: f, versions: []record.Decision{d}}
	cfg := NewDefaultConfig()
	cfg.Ingest.Token = "t"
	cfg.Auth.Users = []auth.UserConfig{
		{Name: "rita", PasswordHash: hash(t, "rita-pw"), Role: "reviewer", Tenants: []string{"acme"}},
		{Name: "lee", PasswordHash: hash(t, "lee-pw"), Role: "reviewer", Tenants: []string{"acme"}},
		{Name: "pat@acme.example", PasswordHash: hash(t, "pat-pw"), Role: "reviewer", Tenants: []string{"acme"}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, topic.Shared{}, Settings{Registry: prometheus.NewRegistry(),
		Sources: Sources{NearMiss: f, Records: f, Record: v, Sampling: f, Events: f}})
	if err != nil {
		t.Fatal(err)
	}
	return &reviewHarness{srv}, v
}

type reviewHarness struct{ srv *Server }

// reviewer logs a user in and returns a browser and their session's CSRF token.
func (h *reviewHarness) reviewer(t *testing.T, name, pw string) (*browser, string) {
	b := newBrowser(t, h.srv.Handler(), "192.0.2.20:5555", "127.0.0.1:8090")
	if w := b.login(name, pw); w.Code != http.StatusSeeOther {
		t.Fatalf("login %s: %d", name, w.Code)
	}
	return b, field(t, csrfRe, b.do("GET", "/near-miss", nil).Body.String())
}

// TestReviewCannotSilentlyOverwrite: a review of an outdated version is
// refused with 409 and the latest version shown, the reviewer's text kept
// in the form and the reviews since named; the user who is the request's
// subject cannot review it; an override needs a second, different reviewer;
// ingest refusing (or answering 409 for a changed resubmission) keeps the
// rationale in the form; a posted review makes the page reload until the
// new version shows it.
func TestReviewCannotSilentlyOverwrite(t *testing.T) {
	h, v := reviewServer(t)
	rita, rcsrf := h.reviewer(t, "rita", "rita-pw")
	lee, lcsrf := h.reviewer(t, "lee", "lee-pw")

	// Both open v1.
	ritaPage := rita.do("GET", "/records/"+idA, nil).Body.String()
	leePage := lee.do("GET", "/records/"+idA, nil).Body.String()
	ritaEID, leeEID := field(t, eventRe, ritaPage), field(t, eventRe, leePage)

	// Rita reviews v1; the store now has v2 with her review.
	w := rita.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {rcsrf}, "event_id": {ritaEID}, "version": {"1"}, "outcome": {"flag"}, "rationale": {"IBAN in the prompt"}})
	if w.Code != http.StatusSeeOther || !strings.Contains(w.Header().Get("Location"), "posted="+ritaEID) {
		t.Fatalf("rita: %d %s", w.Code, w.Header().Get("Location"))
	}
	// Until the new version is there, the page reloads by itself.
	if p := rita.do("GET", "/records/"+idA+"?posted="+ritaEID, nil).Body.String(); !strings.Contains(p, `http-equiv="refresh"`) || !strings.Contains(p, `id="posted"`) {
		t.Errorf("pending review: no auto-refresh")
	}
	v.add(func(d *record.Decision) {
		d.Completeness = record.Amended
		d.Oversight = append(d.Oversight, record.Oversight{EventID: "oversight:" + ritaEID, Kind: "review", Outcome: "flag", Reviewer: "rita",
			Sender: "dashboard", RecordVersion: 1, ReceivedAt: 1763700000000, Effect: record.OversightApplied})
		d.Risk.ReviewStatus = "flag"
	})
	if p := rita.do("GET", "/records/"+idA+"?posted="+ritaEID, nil).Body.String(); strings.Contains(p, `http-equiv="refresh"`) || !strings.Contains(p, "now part of the record (version 2)") {
		t.Errorf("the review landed: the page should stop reloading and say so")
	}

	// Lee, still on v1, approves: refused, shown v2, his text kept.
	w = lee.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {lcsrf}, "event_id": {leeEID}, "version": {"1"}, "outcome": {"approve"}, "rationale": {"looks fine to me"}})
	body := w.Body.String()
	if w.Code != http.StatusConflict || !strings.Contains(body, "you reviewed version 1, the latest is version 2") ||
		!strings.Contains(body, "Reviewed since by rita (flag, saw v1)") || !strings.Contains(body, ">looks fine to me</textarea>") ||
		!strings.Contains(body, `value="approve" required checked`) || !strings.Contains(body, `name="version" value="2"`) {
		t.Fatalf("stale review: %d\n%s", w.Code, body)
	}
	if strings.Contains(body, leeEID) {
		t.Error("the refused submission's event id is offered again; a new submission needs a new event")
	}
	// The page names who reviewed before.
	if !strings.Contains(body, `id="prior-reviews"`) || !strings.Contains(body, "by <b>rita</b>") {
		t.Errorf("prior reviewers not shown")
	}
	if n := len(v.posted); n != 1 {
		t.Fatalf("%d events posted, want rita's only", n)
	}

	// The request's own subject cannot review it.
	pat, pcsrf := h.reviewer(t, "pat@acme.example", "pat-pw")
	patPage := pat.do("GET", "/records/"+idA, nil).Body.String()
	if !strings.Contains(patPage, `id="self-review"`) || strings.Contains(patPage, `id="review-form"`) {
		t.Errorf("the subject is offered the review form")
	}
	w = pat.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {pcsrf}, "event_id": {ritaEID[:5] + strings.Repeat("1", 32)}, "version": {"2"}, "outcome": {"approve"}, "rationale": {"mine is fine"}})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "separation of duties") {
		t.Fatalf("self-review: %d", w.Code)
	}

	// Four eyes on overrides: rita overrides (v3), then tries again.
	eid := field(t, eventRe, rita.do("GET", "/records/"+idA, nil).Body.String())
	if w := rita.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {rcsrf}, "event_id": {eid}, "version": {"2"}, "outcome": {"override"}, "rationale": {"approved exception, ticket 9"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("override: %d", w.Code)
	}
	if got := v.posted[len(v.posted)-1]; got.Kind != "override" || got.Outcome != "override" || got.Reviewer.ID != "rita" {
		t.Fatalf("override posted as %+v", got)
	}
	v.add(func(d *record.Decision) {
		d.Oversight = append(d.Oversight, record.Oversight{EventID: "oversight:" + eid, Kind: "override", Outcome: "override", Reviewer: "rita",
			RecordVersion: 2, Effect: record.OversightAwaitingSecond})
	})
	eid = field(t, eventRe, rita.do("GET", "/records/"+idA, nil).Body.String())
	w = rita.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {rcsrf}, "event_id": {eid}, "version": {"3"}, "outcome": {"override"}, "rationale": {"again"}})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "four eyes") {
		t.Fatalf("second override by the same reviewer: %d", w.Code)
	}
	// Lee may confirm it.
	leePage = lee.do("GET", "/records/"+idA, nil).Body.String()
	if !strings.Contains(leePage, "waits for a second, different reviewer") {
		t.Errorf("the pending override is not shown as waiting for a second reviewer")
	}
	leeEID = field(t, eventRe, leePage)
	if w := lee.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {lcsrf}, "event_id": {leeEID}, "version": {"3"}, "outcome": {"override"}, "rationale": {"confirmed"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("second reviewer's override: %d", w.Code)
	}

	// Ingest down: nothing claims success, the text stays.
	v.postErr = context.DeadlineExceeded
	eid = field(t, eventRe, lee.do("GET", "/records/"+idA, nil).Body.String())
	w = lee.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {lcsrf}, "event_id": {eid}, "version": {"3"}, "outcome": {"escalate"}, "rationale": {"needs legal <b>now</b>"}})
	body = w.Body.String()
	if w.Code != http.StatusBadGateway || !strings.Contains(body, "nothing was recorded") || !strings.Contains(body, ">needs legal &lt;b&gt;now&lt;/b&gt;</textarea>") ||
		!strings.Contains(body, `value="`+eid+`"`) {
		t.Fatalf("ingest down: %d\n%s", w.Code, body)
	}
	// Resubmitted with another outcome under the same event id: ingest's 409.
	v.postErr = &oversight.RejectedError{Status: http.StatusConflict, Body: `{"reason":"event_id_conflict"}`}
	w = lee.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {lcsrf}, "event_id": {eid}, "version": {"3"}, "outcome": {"flag"}, "rationale": {"changed my mind"}})
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "already submitted with other content") || !strings.Contains(w.Body.String(), ">changed my mind</textarea>") {
		t.Fatalf("changed resubmission: %d", w.Code)
	}
}

// TestReviewKindsAndOutcomes: every outcome the review form offers posts
// the oversight kind it stands for; the approval form posts kind approval,
// only while an approval is awaited, never twice by one approver.
func TestReviewKindsAndOutcomes(t *testing.T) {
	h, v := reviewServer(t)
	rita, csrf := h.reviewer(t, "rita", "rita-pw")
	for outcome, kind := range map[string]string{"approve": "review", "flag": "review", "reject": "review", "escalate": "escalation", "override": "override"} {
		eid := field(t, eventRe, rita.do("GET", "/records/"+idA, nil).Body.String())
		if w := rita.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {csrf}, "event_id": {eid}, "version": {"1"}, "outcome": {outcome}, "rationale": {"r"}}); w.Code != http.StatusSeeOther {
			t.Fatalf("%s: %d", outcome, w.Code)
		}
		if got := v.posted[len(v.posted)-1]; got.Kind != kind || got.Outcome != outcome {
			t.Errorf("outcome %s posted as kind %s outcome %s, want kind %s", outcome, got.Kind, got.Outcome, kind)
		}
	}
	// No approval awaited: an approval is refused.
	eid := field(t, eventRe, rita.do("GET", "/records/"+idA, nil).Body.String())
	if w := rita.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {csrf}, "event_id": {eid}, "version": {"1"}, "kind": {"approval"}, "outcome": {"approve"}, "rationale": {"r"}}); w.Code != http.StatusConflict {
		t.Fatalf("approval of a record that awaits none: %d", w.Code)
	}
	// Held for two approvers.
	v.add(func(d *record.Decision) {
		d.Approval = record.Approval{Required: true, RequiredBy: "gateway", Needed: 2, Status: record.ApprovalPending}
	})
	page := rita.do("GET", "/records/"+idA, nil).Body.String()
	if !strings.Contains(page, `id="approval-form"`) || !strings.Contains(page, "awaiting_approval") {
		t.Fatal("no approval form on a record awaiting approval")
	}
	eid = field(t, eventRe, page)
	if w := rita.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {csrf}, "event_id": {eid}, "version": {"2"}, "kind": {"approval"}, "outcome": {"approve"}, "rationale": {"clinician request"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("approval: %d", w.Code)
	}
	if got := v.posted[len(v.posted)-1]; got.Kind != "approval" || got.Outcome != "approve" || got.DecisionRef == nil {
		t.Errorf("approval posted as %+v", got)
	}
	v.add(func(d *record.Decision) { d.Approval.Approvers = []string{"rita"} })
	page = rita.do("GET", "/records/"+idA, nil).Body.String()
	if strings.Contains(page, `id="approval-form"`) || !strings.Contains(page, "another reviewer must approve") {
		t.Errorf("rita is offered to approve a second time")
	}
	eid = field(t, eventRe, page)
	w := rita.do("POST", "/records/"+idA+"/review", url.Values{"csrf": {csrf}, "event_id": {eid}, "version": {"3"}, "kind": {"approval"}, "outcome": {"approve"}, "rationale": {"again"}})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "four eyes") {
		t.Fatalf("second approval by the same approver: %d", w.Code)
	}
	for name, form := range map[string]url.Values{
		"approval with a review outcome": {"kind": {"approval"}, "outcome": {"flag"}},
		"unknown kind":                   {"kind": {"delete"}, "outcome": {"approve"}},
	} {
		form.Set("csrf", csrf)
		form.Set("event_id", eid)
		form.Set("version", "3")
		form.Set("rationale", "r")
		if w := rita.do("POST", "/records/"+idA+"/review", form); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
}
