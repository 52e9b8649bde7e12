// Package oversight proves human oversight end to end on the real servers
// (issue 18), with every stage its own `auditline` process: approval before
// action through ingest → enrich → ClickHouse → the archive (a request
// executed before its approval is flagged, one executed after is clean,
// judged on ingest's receive times), and every other approval kind
// (rejected, escalation, override by two reviewers, approval and rejection
// from the dashboard's approval form) and review outcome (approve, flag,
// reject, escalate, override); the dashboard refusing a reviewer's
// review of their own request and a second override by the same reviewer
// (four eyes), refusing a review of an outdated version (409) while enrich
// marks a review that raced past that check as stale; a token that claims
// another reviewer refused by ingest, as is an event id re-used with other
// content (409); and the access log — logins, failed logins, record views,
// exports and proof downloads — sealed in the archive as records of their
// own.
package oversight

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	dauth "github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
)

// Tokens: the gateway (approval events, LiteLLM payloads), the dashboards
// (any reviewer: it authenticates its users), and lee's own review tool.
const (
	tokGateway   = "oversight-gateway-token"
	tokDashboard = "oversight-dashboard-token"
	tokLee       = "oversight-lee-token"
)

func TestOversightPipeline(t *testing.T) { testenv.ForEachClickHouse(t, testOversightPipeline) }

func testOversightPipeline(t *testing.T) {
	s := stacktest.New(t, stacktest.Shared(t), "")
	c := &s.Config
	c.Ingest.Auth.Tokens = []auth.Token{
		{Name: "gateway", SHA256: auth.Hash(tokGateway), Scopes: []auth.Scope{auth.ScopeLiteLLM, auth.ScopeGateway}},
		{Name: "dashboard", SHA256: auth.Hash(tokDashboard), Scopes: []auth.Scope{auth.ScopeOversight, auth.ScopeAccess}, Reviewer: auth.AnyReviewer},
		{Name: "lee-cli", SHA256: auth.Hash(tokLee), Scopes: []auth.Scope{auth.ScopeOversight}, Reviewer: "lee"},
	}
	c.Enrich.LiteLLMWait = 10 * time.Second
	c.Enrich.AmendWindow = time.Hour
	c.Dashboard.Ingest.Token = tokDashboard
	users := []dauth.UserConfig{}
	for _, u := range []string{"lee", "rita", "pat"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, dauth.UserConfig{Name: u, PasswordHash: string(h), Role: "reviewer", Tenants: []string{"*"}})
	}
	c.Dashboard.Auth.Users = users
	c.Dashboard.CookieSecure = "never"
	s.Migrate()
	s.StartStages(false, "archive", "store", "enrich", "ingest", "dashboard")
	ingestURL, dashURL := s.IngestURL(), s.DashboardURL()
	s.WaitReady(ingestURL)
	s.WaitReady(dashURL)
	ctx := context.Background()
	conn := s.ClickHouse()
	db := c.Store.ClickHouse.Database

	post := func(path, token string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ingestURL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	mustPost := func(path, token string, body []byte) {
		t.Helper()
		if code, b := post(path, token, body); code != 200 {
			t.Fatalf("POST %s: %d %s", path, code, b)
		}
		time.Sleep(20 * time.Millisecond) // the receive times order the events
	}
	approval := func(key, id, kind, approver string) []byte {
		ev := map[string]any{"schema": "auditline.approval.v1", "event_id": id, "request_key": key, "gateway": "acme-gw", "kind": kind,
			"occurred_at": time.Now().UTC().Format(time.RFC3339Nano)}
		if approver != "" {
			ev["approver"] = map[string]string{"id": approver, "role": "reviewer"}
		} else {
			ev["subject"] = map[string]string{"id": "pat", "tenant": "acme"}
		}
		b, _ := json.Marshal(ev)
		return b
	}
	example, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "ingest/testdata/examples/01_success_plain_openai.json"))
	if err != nil {
		t.Fatal(err)
	}
	litellm := func(key string) []byte {
		return bytes.ReplaceAll(example, []byte("b980db26-9512-45cc-b1da-c511a363b83f"), []byte(key))
	}

	// --- approval before action: clean and flagged.
	clean, flagged := s.Name+"-clean", s.Name+"-flagged"
	mustPost("/v1/gateway", tokGateway, approval(clean, "c-req", "approval_requested", ""))
	mustPost("/v1/gateway", tokGateway, approval(clean, "c-ok", "approved", "lee"))
	mustPost("/v1/litellm", tokGateway, litellm(clean))
	mustPost("/v1/gateway", tokGateway, approval(flagged, "f-req", "approval_requested", ""))
	mustPost("/v1/litellm", tokGateway, litellm(flagged))
	mustPost("/v1/gateway", tokGateway, approval(flagged, "f-ok", "approved", "lee")) // after it ran

	cleanID, flaggedID := record.ID(clean), record.ID(flagged)
	latest := func(id string) (d record.Decision, err error) {
		rows, err := conn.Query(ctx, "SELECT version, approval_status, approval_approvers, approval_rejected_by, near_miss_reasons, review_status,"+
			" `oversight.kind`, `oversight.outcome`, `oversight.reviewer`, `oversight.effect`, `oversight.sender`,"+
			" `approval_decisions.kind`, `approval_decisions.approver`, `approval_decisions.note` FROM `"+db+"`.decision_records"+
			" WHERE record_id = ? ORDER BY version DESC LIMIT 1", id)
		if err != nil {
			return d, err
		}
		defer rows.Close()
		if !rows.Next() {
			return d, fmt.Errorf("no record %s yet", id)
		}
		var kinds, outcomes, reviewers, effects, senders, dkinds, approvers, notes []string
		if err := rows.Scan(&d.Version, &d.Approval.Status, &d.Approval.Approvers, &d.Approval.RejectedBy, &d.NearMiss.Reasons, &d.Risk.ReviewStatus,
			&kinds, &outcomes, &reviewers, &effects, &senders, &dkinds, &approvers, &notes); err != nil {
			return d, err
		}
		for i := range reviewers {
			d.Oversight = append(d.Oversight, record.Oversight{Kind: kinds[i], Outcome: outcomes[i], Reviewer: reviewers[i], Effect: effects[i], Sender: senders[i]})
		}
		for i := range notes {
			d.Approval.Decisions = append(d.Approval.Decisions, record.ApprovalDecision{Kind: dkinds[i], Approver: approvers[i], Note: notes[i]})
		}
		return d, rows.Err()
	}
	waitRecord := func(id, what string, ok func(record.Decision) bool) record.Decision {
		t.Helper()
		var d record.Decision
		stacktest.WaitFor(t, what, 5*time.Minute, func() error {
			var err error
			if d, err = latest(id); err != nil {
				return err
			}
			if !ok(d) {
				return fmt.Errorf("record %s v%d: approval %s, reviews %+v", id, d.Version, d.Approval.Status, d.Oversight)
			}
			return nil
		})
		return d
	}
	d := waitRecord(cleanID, "the request approved before it ran", func(d record.Decision) bool {
		return d.Approval.Status == record.ApprovalExecutedAfter
	})
	if !slices.Equal(d.Approval.Approvers, []string{"lee"}) || slices.Contains(d.NearMiss.Reasons, "executed_without_approval") {
		t.Errorf("clean record: approvers %v, reasons %v", d.Approval.Approvers, d.NearMiss.Reasons)
	}
	d = waitRecord(flaggedID, "the request that ran before its approval", func(d record.Decision) bool {
		return d.Approval.Status == record.ApprovalExecutedWithout && len(d.Approval.Decisions) == 1
	})
	if !slices.Contains(d.NearMiss.Reasons, "executed_without_approval") || d.Approval.Decisions[0].Note != "after_execution" {
		t.Errorf("flagged record: reasons %v, decision note %q", d.NearMiss.Reasons, d.Approval.Decisions[0].Note)
	}

	// --- bound identity: lee's token cannot speak for rita.
	review := func(key, id, reviewer string, version uint32, outcome string) []byte {
		b, _ := json.Marshal(map[string]any{"schema": "auditline.oversight.v1", "event_id": id, "kind": "review", "request_key": key,
			"record_version": version, "outcome": outcome, "reviewer": map[string]string{"id": reviewer, "role": "reviewer"},
			"rationale": "checked", "occurred_at": time.Now().UTC().Format(time.RFC3339Nano)})
		return b
	}
	if code, body := post("/v1/oversight", tokLee, review(clean, "forged-1", "rita", d.Version, "approve")); code != 403 || !strings.Contains(body, "reviewer_mismatch") {
		t.Errorf("lee's token naming rita: %d %s", code, body)
	}

	// --- the dashboard: separation of duties, four eyes, stale reviews.
	lee, rita, pat := login(t, dashURL, "lee"), login(t, dashURL, "rita"), login(t, dashURL, "pat")
	if code, body := pat.review(flaggedID, "override", "my own request is fine"); code != 403 || !strings.Contains(body, "separation of duties") {
		t.Errorf("the subject reviewing their own request: %d", code)
	}
	if code, _ := lee.review(flaggedID, "override", "emergency change, ticket 77"); code != 303 {
		t.Fatalf("lee's override: %d", code)
	}
	waitRecord(flaggedID, "lee's override", func(d record.Decision) bool {
		return len(d.Oversight) == 1 && d.Oversight[0].Effect == record.OversightAwaitingSecond && d.Oversight[0].Sender == "dashboard"
	})
	if code, body := lee.review(flaggedID, "override", "again"); code != 403 || !strings.Contains(body, "four eyes") {
		t.Errorf("a second override by the same reviewer: %d", code)
	}
	if code, _ := rita.review(flaggedID, "override", "confirmed: ticket 77 approved by the CISO"); code != 303 {
		t.Fatalf("rita's override: %d", code)
	}
	waitRecord(flaggedID, "the override confirmed by a second reviewer", func(d record.Decision) bool {
		return d.Risk.ReviewStatus == "override" && len(d.Oversight) == 2 && d.Oversight[1].Effect == record.OversightApplied
	})

	// Stale: both open the clean record; rita reviews; lee's review of the
	// version he saw is refused with 409 and the newer version.
	leeForm, ritaForm := lee.open(cleanID), rita.open(cleanID)
	if code, _ := rita.submit(cleanID, ritaForm, "flag", "prompt contains an IBAN"); code != 303 {
		t.Fatalf("rita's review: %d", code)
	}
	v := waitRecord(cleanID, "rita's review", func(d record.Decision) bool { return d.Risk.ReviewStatus == "flag" }).Version
	code, body := lee.submit(cleanID, leeForm, "approve", "fine")
	if code != 409 || !strings.Contains(body, fmt.Sprintf("the latest is version %d", v)) || !strings.Contains(body, ">fine</textarea>") {
		t.Fatalf("lee's review of the outdated version: %d", code)
	}
	// A review that raced past the dashboard (posted to ingest naming the
	// version before rita's review) is kept, marked stale, and changes nothing.
	mustPost("/v1/oversight", tokLee, review(clean, "raced-1", "lee", v-1, "approve"))
	d = waitRecord(cleanID, "the raced review", func(d record.Decision) bool { return len(d.Oversight) == 2 })
	if d.Oversight[1].Effect != record.OversightStale || d.Risk.ReviewStatus != "flag" || d.Oversight[1].Sender != "lee-cli" {
		t.Errorf("raced review: %+v, status %q", d.Oversight[1], d.Risk.ReviewStatus)
	}

	// --- every approval kind from the gateway: rejected (then run anyway),
	// escalation (never an approval) and override (four eyes); a request
	// still waiting.
	rejected, escalated, waiting, declined := s.Name+"-rejected", s.Name+"-escalated", s.Name+"-waiting", s.Name+"-declined"
	mustPost("/v1/gateway", tokGateway, approval(rejected, "r-req", "approval_requested", ""))
	mustPost("/v1/gateway", tokGateway, approval(rejected, "r-no", "rejected", "lee"))
	mustPost("/v1/litellm", tokGateway, litellm(rejected))
	mustPost("/v1/gateway", tokGateway, approval(escalated, "e-req", "approval_requested", ""))
	mustPost("/v1/gateway", tokGateway, approval(escalated, "e-esc", "escalation", "lee"))
	mustPost("/v1/gateway", tokGateway, approval(escalated, "e-o1", "override", "lee"))
	mustPost("/v1/gateway", tokGateway, approval(escalated, "e-o2", "override", "rita"))
	mustPost("/v1/litellm", tokGateway, litellm(escalated))
	mustPost("/v1/gateway", tokGateway, approval(waiting, "w-req", "approval_requested", ""))
	mustPost("/v1/gateway", tokGateway, approval(declined, "d-req", "approval_requested", ""))
	rejectedID, escalatedID, waitingID, declinedID := record.ID(rejected), record.ID(escalated), record.ID(waiting), record.ID(declined)
	d = waitRecord(rejectedID, "a request run after its rejection", func(d record.Decision) bool {
		return d.Approval.Status == record.ApprovalExecutedRejected
	})
	if !slices.Contains(d.NearMiss.Reasons, "executed_after_rejection") || !slices.Equal(d.Approval.RejectedBy, []string{"lee"}) {
		t.Errorf("run after rejection: reasons %v, rejected by %v", d.NearMiss.Reasons, d.Approval.RejectedBy)
	}
	d = waitRecord(escalatedID, "an escalated request overridden by two reviewers before it ran", func(d record.Decision) bool {
		return d.Approval.Status == record.ApprovalExecutedAfter
	})
	if got := decisions(d); !slices.Equal(got, []string{"escalation/lee/escalation", "override/lee/awaiting_second_reviewer", "override/rita/"}) ||
		!slices.Equal(d.Approval.Approvers, []string{"lee", "rita"}) || slices.Contains(d.NearMiss.Reasons, "executed_without_approval") {
		t.Errorf("escalated then overridden: decisions %v, approvers %v, reasons %v", got, d.Approval.Approvers, d.NearMiss.Reasons)
	}

	// The dashboard's approval form: one request approved, one rejected,
	// each by kind approval (the subject may not decide their own).
	waitRecord(waitingID, "a request awaiting approval", func(d record.Decision) bool { return d.Approval.Status == record.ApprovalPending })
	waitRecord(declinedID, "another request awaiting approval", func(d record.Decision) bool { return d.Approval.Status == record.ApprovalPending })
	if code, body := pat.decide(waitingID, "approve", "my own request"); code != 403 || !strings.Contains(body, "separation of duties") {
		t.Errorf("the subject approving their own request: %d", code)
	}
	if code, _ := rita.decide(waitingID, "approve", "clinician request, ticket 4711"); code != 303 {
		t.Fatalf("rita's approval: %d", code)
	}
	if code, _ := lee.decide(declinedID, "reject", "no business reason given"); code != 303 {
		t.Fatalf("lee's rejection: %d", code)
	}
	d = waitRecord(waitingID, "the approval from the dashboard", func(d record.Decision) bool { return d.Approval.Status == record.ApprovalApproved })
	if len(d.Oversight) != 1 || d.Oversight[0].Kind != "approval" || d.Oversight[0].Outcome != "approve" || d.Oversight[0].Effect != record.OversightApplied ||
		!slices.Equal(d.Approval.Approvers, []string{"rita"}) {
		t.Errorf("approved from the dashboard: %+v, approvers %v", d.Oversight, d.Approval.Approvers)
	}
	d = waitRecord(declinedID, "the rejection from the dashboard", func(d record.Decision) bool { return d.Approval.Status == record.ApprovalRejected })
	if len(d.Oversight) != 1 || d.Oversight[0].Kind != "approval" || d.Oversight[0].Outcome != "reject" || !slices.Equal(d.Approval.RejectedBy, []string{"lee"}) {
		t.Errorf("rejected from the dashboard: %+v, rejected by %v", d.Oversight, d.Approval.RejectedBy)
	}

	// Review outcomes not seen above: reject (kind review) and escalate
	// (kind escalation), each waited for before the next names the new
	// version.
	if code, _ := rita.review(rejectedID, "reject", "should never have run"); code != 303 {
		t.Fatalf("rita's reject: %d", code)
	}
	waitRecord(rejectedID, "rita's reject", func(d record.Decision) bool { return d.Risk.ReviewStatus == "reject" })
	if code, _ := lee.review(rejectedID, "escalate", "to the DPO"); code != 303 {
		t.Fatalf("lee's escalation: %d", code)
	}
	d = waitRecord(rejectedID, "lee's escalation", func(d record.Decision) bool { return d.Risk.ReviewStatus == "escalate" })
	if got := entries(d); !slices.Equal(got, []string{"review/reject/rita/applied", "escalation/escalate/lee/applied"}) {
		t.Errorf("reject then escalate: %v", got)
	}
	if code, _ := rita.review(escalatedID, "approve", "override justified, ticket 78"); code != 303 {
		t.Fatalf("rita's approve: %d", code)
	}
	d = waitRecord(escalatedID, "rita's approve", func(d record.Decision) bool { return d.Risk.ReviewStatus == "approve" })
	if got := entries(d); !slices.Equal(got, []string{"review/approve/rita/applied"}) {
		t.Errorf("approve: %v", got)
	}

	// --- the same event id with other content is refused by ingest (409);
	// the unchanged event again is accepted (a retry).
	again := review(clean, "raced-1", "lee", v-1, "flag")
	if code, body := post("/v1/oversight", tokLee, again); code != 409 || !strings.Contains(body, "event_id_conflict") {
		t.Errorf("a changed oversight event under a used id: %d %s", code, body)
	}
	if code, body := post("/v1/gateway", tokGateway, approval(clean, "c-ok", "rejected", "lee")); code != 409 || !strings.Contains(body, "event_id_conflict") {
		t.Errorf("a changed approval event under a used id: %d %s", code, body)
	}

	// --- the access log, in ClickHouse and sealed in the archive.
	type access struct{ action, actor, target string }
	want := []access{{"login", "lee", ""}, {"record_view", "lee", cleanID}, {"login_failed", "mallory", ""},
		{"export", "lee", ""}, {"proof_download", "lee", cleanID}}
	login(t, dashURL, "mallory") // a failed login is logged too
	if code, body := lee.do("GET", "/export?format=csv&range=7d", nil); code != 200 || !strings.HasPrefix(body, "record_id,") {
		t.Errorf("lee's export: %d %.200s", code, body)
	}
	stacktest.WaitFor(t, "the clean record's proof", 5*time.Minute, func() error {
		code, body := lee.do("GET", "/records/"+cleanID+"/proof", nil)
		if code != 200 {
			return fmt.Errorf("proof: %d %.200s", code, body)
		}
		return nil
	})
	stacktest.WaitFor(t, "access records in ClickHouse", 5*time.Minute, func() error {
		rows, err := conn.Query(ctx, "SELECT access_action, access_actor, access_target FROM `"+db+"`.decision_records WHERE access_action != ''")
		if err != nil {
			return err
		}
		defer rows.Close()
		var got []access
		for rows.Next() {
			var a access
			if err := rows.Scan(&a.action, &a.actor, &a.target); err != nil {
				return err
			}
			got = append(got, a)
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				return fmt.Errorf("%+v not among %d access records", w, len(got))
			}
		}
		return nil
	})
	stacktest.WaitFor(t, "approval facts and access records sealed in the archive", 5*time.Minute, func() error {
		recs, err := archived(ctx, s)
		if err != nil {
			return err
		}
		var sawClean, sawFlagged bool
		var got []access
		sealed := map[string]bool{} // record id + approval status (+ reason)
		for _, r := range recs {
			sealed[r.RecordID+" "+r.Approval.Status] = true
			for _, reason := range r.NearMiss.Reasons {
				sealed[r.RecordID+" "+r.Approval.Status+" "+reason] = true
			}
			switch {
			case r.RecordID == cleanID && r.Approval.Status == record.ApprovalExecutedAfter:
				sawClean = true
			case r.RecordID == flaggedID && r.Approval.Status == record.ApprovalExecutedWithout && slices.Contains(r.NearMiss.Reasons, "executed_without_approval"):
				sawFlagged = true
			case r.Access.Action != "":
				got = append(got, access{r.Access.Action, r.Access.Actor, r.Access.Target})
				if r.Access.Sender != "dashboard" {
					return fmt.Errorf("access record %s sealed with sender %q", r.RecordID, r.Access.Sender)
				}
			}
		}
		if !sawClean || !sawFlagged {
			return fmt.Errorf("archived approval facts: clean %v flagged %v (%d records)", sawClean, sawFlagged, len(recs))
		}
		for _, w := range []string{
			rejectedID + " " + record.ApprovalExecutedRejected + " executed_after_rejection",
			escalatedID + " " + record.ApprovalExecutedAfter,
			waitingID + " " + record.ApprovalPending, waitingID + " " + record.ApprovalApproved,
			declinedID + " " + record.ApprovalRejected,
		} {
			if !sealed[w] {
				return fmt.Errorf("no archived version with %q (%d records)", w, len(recs))
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				return fmt.Errorf("%+v not among %d archived access records", w, len(got))
			}
		}
		return nil
	})
}

// archived reads every record sealed in the stack's archive (manifests
// checked against the signing key), from each row's canonical bytes.
func archived(ctx context.Context, s *stacktest.Stack) ([]record.Decision, error) {
	b, lay := s.Bucket(), layout.New(s.Config.Archive.Prefix)
	var keys []string
	if err := b.List(ctx, lay.ManifestsPrefix(), "", func(in bucket.Info) error {
		if strings.HasSuffix(in.Key, ".manifest") {
			keys = append(keys, in.Key)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var out []record.Decision
	for _, k := range keys {
		data, _, err := b.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		m, _, err := manifest.Open(data, s.Ring())
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", k, err)
		}
		obj, _, err := b.Get(ctx, m.ObjectKey)
		if err != nil {
			return nil, err
		}
		f, err := batch.Open(bytes.NewReader(obj))
		if err != nil {
			return nil, err
		}
		canon, err := f.Binaries(ctx, batch.ColCanonical)
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, c := range canon {
			var d record.Decision
			if err := json.Unmarshal(c, &d); err != nil {
				return nil, fmt.Errorf("%s: %w", m.ObjectKey, err)
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// user is a browser session on the dashboard.
type user struct {
	t    *testing.T
	base string
	hc   *http.Client
}

var (
	csrfRe  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	eventRe = regexp.MustCompile(`name="event_id" value="([^"]+)"`)
	verRe   = regexp.MustCompile(`name="version" value="(\d+)"`)
)

func (u *user) do(method, path string, form url.Values) (int, string) {
	u.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func find(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in the page:\n%.2000s", re, page)
	}
	return m[1]
}

// login logs name in with its password (name-pw); for an unknown name the
// login fails, as it should.
func login(t *testing.T, base, name string) *user {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u := &user{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	_, page := u.do("GET", "/login", nil)
	code, _ := u.do("POST", "/login", url.Values{"user": {name}, "password": {name + "-pw"}, "csrf": {find(t, csrfRe, page)}})
	if want := map[bool]int{true: 303, false: 401}[name != "mallory"]; code != want {
		t.Fatalf("login %s: %d, want %d", name, code, want)
	}
	return u
}

// form is a review form as a page rendered it.
type form struct{ csrf, event, version string }

func (u *user) open(id string) form {
	u.t.Helper()
	code, page := u.do("GET", "/records/"+id, nil)
	if code != 200 {
		u.t.Fatalf("record %s: %d", id, code)
	}
	f := form{csrf: find(u.t, csrfRe, page), event: "dash-" + strings.Repeat("0", 31) + "1", version: "1"}
	// A user who may not review (the request's subject) gets no form; they
	// post one made by hand, as an attacker would.
	if m := eventRe.FindStringSubmatch(page); m != nil {
		f.event = m[1]
	}
	if m := verRe.FindStringSubmatch(page); m != nil {
		f.version = m[1]
	} else if m := regexp.MustCompile(`version (\d+)`).FindStringSubmatch(page); m != nil {
		f.version = m[1]
	}
	return f
}

func (u *user) submit(id string, f form, outcome, rationale string) (int, string) {
	u.t.Helper()
	return u.do("POST", "/records/"+id+"/review", url.Values{"csrf": {f.csrf}, "event_id": {f.event}, "version": {f.version},
		"outcome": {outcome}, "rationale": {rationale}})
}

// decide opens the latest version and submits an approval decision
// (kind approval) for it.
func (u *user) decide(id, outcome, reason string) (int, string) {
	u.t.Helper()
	f := u.open(id)
	return u.do("POST", "/records/"+id+"/review", url.Values{"csrf": {f.csrf}, "event_id": {f.event}, "version": {f.version},
		"kind": {"approval"}, "outcome": {outcome}, "rationale": {reason}})
}

// decisions lists a record's approval decisions as kind/approver/note.
func decisions(d record.Decision) []string {
	var out []string
	for _, dec := range d.Approval.Decisions {
		out = append(out, dec.Kind+"/"+dec.Approver+"/"+dec.Note)
	}
	return out
}

// entries lists a record's oversight entries as kind/outcome/reviewer/effect.
func entries(d record.Decision) []string {
	var out []string
	for _, o := range d.Oversight {
		out = append(out, o.Kind+"/"+o.Outcome+"/"+o.Reviewer+"/"+o.Effect)
	}
	return out
}

// review opens the latest version and submits a review of it.
func (u *user) review(id, outcome, rationale string) (int, string) {
	u.t.Helper()
	return u.submit(id, u.open(id), outcome, rationale)
}
