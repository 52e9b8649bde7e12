package dashboards

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
)

// The forms the dashboards accept, and the oversight events they become:
// pure functions of the posted values, the record read from the store and
// the user. A malformed value is a *badRequest whose text is the 400's.

var eventIDPattern = regexp.MustCompile(`^dash-[0-9a-f]{32}$`)

// maxRationale bounds a rationale, in bytes.
const maxRationale = 10000

// reviewForm is a review posted from a record page.
type reviewForm struct {
	Kind      string // "" or "review" (the review box), "approval" (the approval box)
	Outcome   string // one of reviewOutcomes (review) or approve/reject (approval)
	Rationale string
	EventID   string
	Version   uint32 // the version reviewed
}

// reviewOutcomes are the outcomes a reviewer may record, and reviewKinds
// the oversight kind each posts: an escalation is kind escalation, an
// override kind override (it takes effect once a second reviewer posts it
// too); approve, flag and reject are reviews.
var (
	reviewOutcomes = []string{"approve", "flag", "reject", "escalate", "override"}
	reviewKinds    = map[string]string{"approve": oversight.KindReview, "flag": oversight.KindReview, "reject": oversight.KindReview,
		"escalate": oversight.KindEscalation, "override": oversight.KindOverride}
)

func parseReviewForm(f url.Values) (reviewForm, error) {
	rf := reviewForm{Kind: f.Get("kind"), Outcome: f.Get("outcome"), Rationale: strings.TrimSpace(f.Get("rationale")), EventID: f.Get("event_id")}
	vn, verr := strconv.ParseUint(f.Get("version"), 10, 32)
	switch rf.Kind {
	case "", oversight.KindReview:
		if !slices.Contains(reviewOutcomes, rf.Outcome) {
			return reviewForm{}, bad("outcome: want approve, flag, reject, escalate or override")
		}
	case oversight.KindApproval:
		if rf.Outcome != "approve" && rf.Outcome != "reject" {
			return reviewForm{}, bad("outcome: an approval is approve or reject")
		}
	default:
		return reviewForm{}, bad("kind: want review or approval")
	}
	if err := checkRationale(rf.Rationale, rf.EventID, "rationale: required — say why, in a sentence an auditor will understand", "record"); err != nil {
		return reviewForm{}, err
	}
	if verr != nil || vn == 0 {
		return reviewForm{}, bad("version: malformed")
	}
	rf.Version = uint32(vn)
	return rf, nil
}

// kind is the oversight kind rf posts.
func (rf reviewForm) kind() string {
	if rf.Kind == oversight.KindApproval {
		return oversight.KindApproval
	}
	if k := reviewKinds[rf.Outcome]; k != "" {
		return k
	}
	return oversight.KindReview
}

// checkRationale checks the fields every oversight form has; missing is
// the message for an empty rationale, reload names what to reload.
func checkRationale(rationale, eventID, missing, reload string) error {
	switch {
	case rationale == "":
		return bad("%s", missing)
	case len(rationale) > maxRationale:
		return bad("rationale: at most %d bytes", maxRationale)
	case !eventIDPattern.MatchString(eventID):
		return bad("event_id: malformed; reload the %s and submit again", reload)
	}
	return nil
}

// reviewEvent is the oversight event of a review of d by p. Everything it
// says about the record comes from d (read from the store with p's
// tenants), never from the form.
func reviewEvent(rf reviewForm, d query.Detail, p auth.Principal, now time.Time) oversight.Event {
	ev := oversight.Event{
		Schema: oversight.Schema, EventID: rf.EventID, Kind: rf.kind(),
		RequestKey: d.Decision.Request.RequestKey, RecordID: d.Decision.RecordID, RecordVersion: d.Decision.Version,
		Outcome:   rf.Outcome,
		Reviewer:  oversight.Reviewer{ID: p.Name, Role: p.Role.String(), Tenant: d.Decision.Identity.Tenant},
		Rationale: rf.Rationale, OccurredAt: now.UTC(),
	}
	if d.Partition >= 0 && d.Offset >= 0 {
		ev.DecisionRef = &oversight.DecisionRef{Partition: d.Partition, Offset: d.Offset}
	}
	return ev
}

// burstForm switches burst sampling, for some tiers or (none) all.
type burstForm struct {
	On        bool
	Rationale string
	EventID   string
	Tiers     []string
}

func parseBurstForm(f url.Values) (burstForm, error) {
	var bf burstForm
	switch f.Get("burst") {
	case "on":
		bf.On = true
	case "off":
	default:
		return burstForm{}, bad("burst: want on or off")
	}
	bf.Rationale, bf.EventID = strings.TrimSpace(f.Get("rationale")), f.Get("event_id")
	if err := checkRationale(bf.Rationale, bf.EventID, "rationale: required — say why burst mode changes", "page"); err != nil {
		return burstForm{}, err
	}
	for _, t := range f["tier"] {
		if !words.MatchString(t) {
			return burstForm{}, bad("tier: malformed")
		}
		bf.Tiers = append(bf.Tiers, t)
	}
	return bf, nil
}

// burstEvent is the sampling_control event of bf by p.
func burstEvent(bf burstForm, p auth.Principal, now time.Time) oversight.Event {
	return oversight.Event{
		Schema: oversight.Schema, EventID: bf.EventID, Kind: oversight.KindSamplingControl,
		Reviewer:  oversight.Reviewer{ID: p.Name, Role: p.Role.String()},
		Rationale: bf.Rationale, OccurredAt: now.UTC(),
		Sampling: &oversight.Sampling{Burst: bf.On, Tiers: bf.Tiers},
	}
}

// postForm returns the request's posted form values, parsed on first use
// as r.PostFormValue parses them (a parse error leaves them empty, and the
// form is then refused for its first missing field).
func postForm(r *http.Request) url.Values {
	if r.PostForm == nil {
		_ = r.ParseMultipartForm(32 << 20)
	}
	return r.PostForm
}
