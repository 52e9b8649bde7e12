package dashboards

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
)

// Reviews that cannot silently overwrite each other (issue 18):
//
//   - A review names the version it saw. If the record has a newer version
//     when it is posted (another review, a late event), it is refused with
//     409 and the page shows the new version — with the reviewer's outcome
//     and rationale still in the form, and who reviewed it since. (enrich
//     also marks a review that raced past this check as stale: it is kept
//     and shown as conflicting, never applied over the newer one.)
//   - The form's event id is fixed when the page is rendered: submitting it
//     twice is one event; submitting it again with another outcome is a 409
//     from ingest (event_id_conflict), shown as such.
//   - Nobody reviews or approves their own request (separation of duties:
//     the user matches the record's subject, user id or e-mail); an
//     override, and an approval where four eyes apply, needs a second,
//     different reviewer: the same user again is refused. enrich applies the
//     same rules to whatever reaches it, so posting to ingest directly
//     does not get around them.
//   - When ingest does not take the event, nothing claims success and the
//     form comes back with the rationale as typed.
//   - After a post, the record page reloads by itself until the new version
//     with the review is there.

// priorReview is one oversight entry as the review box lists it.
type priorReview struct {
	Reviewer, Kind, Outcome, Effect, Sender string
	Version                                 int64
	At                                      record.Time
}

// priorReviews lists who reviewed d before, and what each entry did.
func priorReviews(d *record.Decision) []priorReview {
	var out []priorReview
	for _, o := range d.Oversight {
		out = append(out, priorReview{Reviewer: o.Reviewer, Kind: o.Kind, Outcome: o.Outcome, Effect: o.Effect,
			Sender: o.Sender, Version: o.RecordVersion, At: o.ReceivedAt})
	}
	return out
}

// ownRequest reports whether user is the person behind the request.
func ownRequest(d *record.Decision, user string) bool {
	for _, s := range []string{d.Identity.Subject, d.Identity.UserID, d.Identity.UserEmail} {
		if s != "" && strings.EqualFold(s, user) {
			return true
		}
	}
	return false
}

// awaitsApproval reports whether the record is held for an approval that is
// not complete and has not run.
func awaitsApproval(a record.Approval) bool {
	return a.Required && a.ExecutedAt == 0 && (a.Status == record.ApprovalPending || a.Status == "")
}

// staleReview says why a review of version d (the version the reviewer saw)
// must not be posted because latest, a newer version, exists; "" when d is
// the latest.
func staleReview(d, latest query.Detail) string {
	if latest.Decision.Version <= d.Decision.Version {
		return ""
	}
	var since []string
	for _, o := range latest.Decision.Oversight {
		if o.RecordVersion >= int64(d.Decision.Version) || o.RecordVersion == 0 {
			since = append(since, fmt.Sprintf("%s (%s, saw v%d)", o.Reviewer, o.Outcome, o.RecordVersion))
		}
	}
	msg := fmt.Sprintf("This record changed since you opened it: you reviewed version %d, the latest is version %d.", d.Decision.Version, latest.Decision.Version)
	if len(since) > 0 {
		msg += " Reviewed since by " + strings.Join(since, ", ") + "."
	}
	return msg + " Nothing was recorded. Check the latest version below, then submit again."
}

// reviewRefusal says why p may not post rf on d (separation of duties, four
// eyes, no approval awaited), with the status to answer; 0 when p may.
func reviewRefusal(rf reviewForm, d *record.Decision, p auth.Principal) (int, string) {
	if ownRequest(d, p.Name) {
		return http.StatusForbidden, "You cannot review or approve a request of your own (separation of duties). Nothing was recorded."
	}
	switch rf.kind() {
	case oversight.KindOverride:
		for _, o := range d.Oversight {
			if o.Kind == oversight.KindOverride && o.Reviewer == p.Name {
				return http.StatusForbidden, "You posted an override of this record already: an override takes effect once a second, different reviewer confirms it (four eyes). Nothing was recorded."
			}
		}
	case oversight.KindApproval:
		a := d.Approval
		switch {
		case !awaitsApproval(a):
			return http.StatusConflict, fmt.Sprintf("This record does not await an approval (approval status %q). Nothing was recorded.", a.Status)
		case slices.Contains(a.Approvers, p.Name):
			return http.StatusForbidden, fmt.Sprintf("You approved this request already: %d distinct approvers are needed (four eyes). Nothing was recorded.", a.Needed)
		}
	}
	return 0, ""
}

// postFailure is the answer when ingest did not take a review.
func postFailure(err error) (int, string) {
	var rej *oversight.RejectedError
	if errors.As(err, &rej) && rej.Status == http.StatusConflict {
		return http.StatusConflict, "This form was already submitted with other content (same event id, a different outcome or rationale): ingest refused the change. Reload the record to see what was recorded, then review it again."
	}
	return http.StatusBadGateway, "Ingest did not accept the review, so nothing was recorded; your text is still below — submit again. (" + err.Error() + ")"
}
