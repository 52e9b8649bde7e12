package dashboards

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/chart"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich/record"
)

// View models: what each page shows, built by pure functions from what the
// page's reads returned (query types), the URL's view and the user. No
// function here reads a clock, a request or a source, so each is tested with
// data written by hand (models_test.go), and an export of a page (CSV, JSON)
// can reuse the model the HTML page renders. Charts are kept as their specs
// (chart.Columns, chart.Bars) and drawn by the template ({{.Trend.SVG}}), so
// a model's numbers and links can be checked without parsing SVG.
//
// A page is: a handler in pages.go (parse the view, read, build the model,
// render), a model here, a template in web/templates. A filter is one entry
// in urlFilters (view.go), a field in view and in query.Filter.

// basePage is what the layout needs.
type basePage struct {
	Title   string
	Nav     string // active nav entry
	User    string
	Role    string
	Tenants []string
	CSRF    string
	View    view
	Path    string
	Ranges  []string
	Flash   string
	Elapsed time.Duration // ClickHouse time for this page
	// Refresh, when set, reloads the page after this many seconds (a meta
	// refresh: the pages have no JavaScript).
	Refresh int
	// The filter form's dropdowns: the values in scope (empty without an
	// AnalystReader: free text then) and the fixed lists.
	Options          query.Options
	Sorts            []struct{ Value, Label string }
	ApprovalStatuses []string
	ReviewStates     []string
}

// ---- near-miss dashboard ----

type nearMissPage struct {
	basePage
	Data       query.NearMissPage
	Latest     []query.Row // the newest flagged records
	LatestAll  string      // link to all of them
	Trend      chart.Columns
	ByReasonTS chart.Columns
	Breakdowns []breakdown
	Rate       string
}

type breakdown struct {
	Title, Key string
	Chart      chart.Bars
	Rows       []query.Count
	Hrefs      []string
}

// flaggedSeries are the two series of the near-miss charts.
var flaggedSeries = []chart.Series{{Name: "blocked", Color: chart.Palette[0]}, {Name: "nearly blocked", Color: chart.Palette[1]}}

func nearMissModel(b basePage, v view, data query.NearMissPage, latest []query.Row) nearMissPage {
	step := data.Step
	return nearMissPage{
		basePage: b, Data: data, Rate: pct(data.Totals.Flagged, data.Totals.Total),
		Latest: latest, LatestAll: v.Href("/records", "category", string(query.Flagged)),
		Trend: chart.Columns{Label: "Blocked and nearly blocked requests per " + step.String(), Series: flaggedSeries,
			Cols: trendColumns(v, data.Trend, step)},
		ByReasonTS: reasonsChart(v, data),
		Breakdowns: []breakdown{
			flaggedBreakdown(v, "By team", "team", data.ByTeam), flaggedBreakdown(v, "By model alias", "alias", data.ByAlias),
			flaggedBreakdown(v, "By provider", "provider", data.ByProvider), flaggedBreakdown(v, "By reason", "reason", data.ByReason),
		},
	}
}

// bucketSpan is a bucket's title: its start and end.
func bucketSpan(t time.Time, step time.Duration) string {
	return t.Format("2006-01-02 15:04") + " – " + t.Add(step).Format("15:04") + " UTC"
}

// bucketRange is a bucket's from and to parameters.
func bucketRange(t time.Time, step time.Duration) (from, to string) {
	return t.Format(time.RFC3339), t.Add(step).Format(time.RFC3339)
}

// trendColumns: blocked and nearly blocked per bucket, each bar linking to
// its records.
func trendColumns(v view, trend []query.Point, step time.Duration) []chart.Column {
	cols := make([]chart.Column, 0, len(trend))
	for _, pt := range trend {
		from, to := bucketRange(pt.Start, step)
		cols = append(cols, chart.Column{
			Label: bucketLabel(pt.Start, step), Title: bucketSpan(pt.Start, step),
			Values: []float64{float64(pt.Blocked), float64(pt.NearMiss)},
			Hrefs: []string{
				v.Href("/records", "from", from, "to", to, "category", string(query.Blocked)),
				v.Href("/records", "from", from, "to", to, "category", string(query.NearMiss)),
			},
		})
	}
	return cols
}

// reasonsChart: one series per reason (most frequent first), one column per
// bucket of the trend.
func reasonsChart(v view, data query.NearMissPage) chart.Columns {
	step := data.Step
	var reasons []string
	for _, c := range data.ByReason {
		reasons = append(reasons, c.Key)
	}
	idx := map[int64]int{}
	cols := make([]chart.Column, len(data.Trend))
	for i, pt := range data.Trend {
		idx[pt.Start.Unix()] = i
		from, to := bucketRange(pt.Start, step)
		cols[i] = chart.Column{Label: bucketLabel(pt.Start, step), Title: bucketSpan(pt.Start, step), Values: make([]float64, len(reasons)), Hrefs: make([]string, len(reasons))}
		for j, reason := range reasons {
			cols[i].Hrefs[j] = v.Href("/records", "from", from, "to", to, "reason", reason, "category", string(query.Flagged))
		}
	}
	for _, rp := range data.Reasons {
		i, ok := idx[rp.Start.Unix()]
		j := slices.Index(reasons, rp.Reason)
		if ok && j >= 0 {
			cols[i].Values[j] = float64(rp.Count)
		}
	}
	series := make([]chart.Series, len(reasons))
	for j, reason := range reasons {
		series[j] = chart.Series{Name: reasonLabel(reason)}
	}
	return chart.Columns{Label: "Near-miss reasons per " + step.String(), Series: series, Cols: cols, Height: 200}
}

// flaggedBreakdown is one breakdown panel: a bar per row, linking to the
// flagged records of that key (filter parameter key).
func flaggedBreakdown(v view, title, key string, rows []query.Count) breakdown {
	bd := breakdown{Title: title, Key: key, Rows: rows}
	bars := make([]chart.Bar, 0, len(rows))
	for _, c := range rows {
		href := v.Href("/records", key, c.Key, "category", string(query.Flagged))
		bd.Hrefs = append(bd.Hrefs, href)
		label := c.Key
		note := fmt.Sprintf("%s of %s (%s)", chart.Short(float64(c.Flagged)), chart.Short(float64(c.Total)), pct(c.Flagged, c.Total))
		if key == "reason" {
			label, note = reasonLabel(c.Key), chart.Short(float64(c.Total))+" records"
		}
		bars = append(bars, chart.Bar{Label: label, Values: []float64{float64(c.Blocked), float64(c.NearMiss)}, Href: href, Note: note})
	}
	bd.Chart = chart.Bars{Label: "Near misses " + strings.ToLower(title), Series: flaggedSeries, Bars: bars}
	return bd
}

func bucketLabel(t time.Time, step time.Duration) string {
	switch {
	case step >= 24*time.Hour:
		return t.Format("Jan 02")
	case step >= time.Hour:
		return t.Format("Jan 02 15:04")
	}
	return t.Format("15:04")
}

func pct(a, b uint64) string {
	if b == 0 {
		return "–"
	}
	return strconv.FormatFloat(100*float64(a)/float64(b), 'f', 1, 64) + "%"
}

// reasonLabels names the near-miss reasons enrich emits; unknown reasons show
// as they are.
var reasonLabels = map[string]string{
	"guardrail_intervened":      "guardrail intervened",
	"guardrail_failed":          "guardrail failed",
	"policy_block":              "policy block",
	"policy_review":             "policy review",
	"budget_over_threshold":     "budget near limit",
	"budget_denied":             "budget denied",
	"budget_exceeded":           "budget exceeded",
	"rate_limited":              "rate limited",
	"fallback_after_429":        "fallback after 429",
	"fallback_after_5xx":        "fallback after 5xx",
	"fallback":                  "fallback",
	"retries":                   "retries",
	"retried":                   "retried",
	"risk_score_near_threshold": "risk score near threshold",
	"blocked":                   "blocked",
}

func reasonLabel(r string) string {
	if l, ok := reasonLabels[r]; ok {
		return l
	}
	return strings.ReplaceAll(r, "_", " ")
}

// ---- record list ----

type recordsPage struct {
	basePage
	List  query.List
	Next  string // link to the next page, "" on the last
	Limit int
	Chips []chip
	// Total counts the records matching (-1: unknown); ExportCSV and
	// ExportJSON download them.
	Total                 int64
	ExportCSV, ExportJSON string
}

// chip is a filter in force, with the link that removes it.
type chip struct{ Label, Remove string }

func recordsModel(b basePage, v view, l query.List, limit int) recordsPage {
	p := recordsPage{basePage: b, List: l, Limit: limit, Chips: chips(v, "/records"), Total: -1}
	if !l.Next.IsZero() {
		p.Next = v.Href("/records", "cursor", strconv.FormatInt(l.Next.Start.Unix(), 10)+"."+l.Next.RecordID)
	}
	return p
}

// chips lists the filters of v in force, in urlFilters order, then
// "sampled"; each removes itself from path's URL.
func chips(v view, path string) []chip {
	var out []chip
	for _, uf := range urlFilters {
		val := *uf.field(&v)
		if val == "" {
			continue
		}
		if uf.show != nil {
			val = uf.show(val)
		}
		out = append(out, chip{Label: uf.label + ": " + val, Remove: v.Href(path, uf.key, "")})
	}
	if v.Sampled {
		out = append(out, chip{Label: "sampled", Remove: v.Href(path, "sampled", "")})
	}
	return out
}

// ---- one record ----

type recordPage struct {
	basePage
	D         query.Detail
	Dec       *record.Decision
	JSON      string
	Version   uint32
	Latest    bool
	CanReview bool
	EventID   string
	Outcomes  []string
	Posted    string
	Bucket    string
	ProveCmd  string
	ProofURL  string
	// The review and approval boxes (review.go).
	Form         reviewForm // a refused submission, kept for the reviewer
	FormError    string
	Prior        []priorReview
	Self         bool // the user is the request's subject: no review
	CanApprove   bool // an approval is awaited that this user may give
	ApprovalNote string
	LatestHref   string // set when this is not the latest version
}

// recordIn is what the record page needs besides the record.
type recordIn struct {
	ID        string         // the record id asked for
	User      auth.Principal // who is looking
	CanReview bool           // the user may post a review
	EventID   string         // id of the review form's event
	Bucket    string         // archive bucket named on the page
	Proofs    bool           // the dashboard can fetch inclusion proofs
	Posted    string         // event id of a review just posted (?posted=), already validated
	Form      reviewForm     // a refused submission to show again
	FormError string         // why it was refused
}

func recordModel(b basePage, d query.Detail, in recordIn) (recordPage, error) {
	js, err := json.MarshalIndent(&d.Decision, "", "  ")
	if err != nil {
		return recordPage{}, fmt.Errorf("encode the record: %w", err)
	}
	dec := &d.Decision
	p := recordPage{
		basePage: b, D: d, Dec: dec, JSON: string(js), Version: dec.Version,
		Latest:    len(d.Versions) > 0 && d.Versions[0].Version == dec.Version,
		CanReview: in.CanReview, EventID: in.EventID, Outcomes: reviewOutcomes, Bucket: in.Bucket,
		ProveCmd: fmt.Sprintf("auditline prove --version %d %s", dec.Version, in.ID),
		Form:     in.Form, FormError: in.FormError, Prior: priorReviews(dec), Self: ownRequest(dec, in.User.Name),
	}
	if in.Proofs {
		p.ProofURL = fmt.Sprintf("/records/%s/proof?v=%d", in.ID, dec.Version)
	}
	if !p.Latest && len(d.Versions) > 0 {
		p.LatestHref = "/records/" + in.ID
	}
	if a := dec.Approval; awaitsApproval(a) && !p.Self {
		if slices.Contains(a.Approvers, in.User.Name) {
			p.ApprovalNote = fmt.Sprintf("You approved already; %d distinct approvers are needed (four eyes): another reviewer must approve.", a.Needed)
		} else {
			p.CanApprove = in.CanReview && p.Latest
		}
	}
	if in.Posted != "" {
		p.Posted = in.Posted
		for _, o := range dec.Oversight {
			// enrich names an oversight entry by ingest's event id
			// ("oversight:<id>"); older stand-ins used the bare id.
			if o.EventID == in.Posted || o.EventID == "oversight:"+in.Posted {
				p.Posted = ""
				p.Flash = "Your review is now part of the record (version " + strconv.FormatUint(uint64(dec.Version), 10) + ")."
			}
		}
		if p.Posted != "" {
			p.Refresh = 3 // until the new version shows it
		}
	}
	return p, nil
}

// ---- sampling dashboard ----

type samplingPage struct {
	basePage
	Return    string // this page's URL, to come back to after a switch
	Data      query.SamplingPage
	Progress  chart.Columns
	TierChart chart.Bars
	Reviewed  uint64
	Sampled   uint64
	Done      string
	CanBurst  bool
	BurstNote string
	EventID   string
	TierNames []string
	// Review throughput: reviews per reviewer, the oldest pending record
	// and how long it has waited.
	Reviewers     []query.Count
	OldestPending time.Time
	OldestAge     string
	// BurstTruth says what burst sampling really did in the range: records
	// sampled in burst, whoever (or whatever) switched it.
	BurstSampled uint64
	BurstTruth   string
}

// reviewSeries are the two series of the review-progress charts.
var reviewSeries = []chart.Series{{Name: "reviewed", Color: chart.Palette[3]}, {Name: "pending", Color: chart.Palette[5]}}

// burstNeedsAll explains why an admin limited to some tenants cannot switch.
const burstNeedsAll = "Burst mode applies to every tenant, so switching it needs an admin whose tenants are \"*\"."

// samplingIn is what the sampling page needs besides the data.
type samplingIn struct {
	Principal auth.Principal
	Return    string // the page's own URL
	EventID   string // id of the burst form's event
	// Stats is review throughput (zero without an AnalystReader); Now
	// dates the oldest pending item.
	Stats query.ReviewStats
	Now   time.Time
}

func samplingModel(b basePage, v view, data query.SamplingPage, in samplingIn) samplingPage {
	p := samplingPage{basePage: b, Data: data, Return: in.Return, EventID: in.EventID}
	tbars := make([]chart.Bar, 0, len(data.Tiers))
	for _, t := range data.Tiers {
		p.Reviewed += t.Reviewed
		p.Sampled += t.Sampled
		p.TierNames = append(p.TierNames, t.Tier)
		label := t.Tier
		if label == "" {
			label = "(none)"
		}
		tbars = append(tbars, chart.Bar{Label: label, Values: []float64{float64(t.Reviewed), float64(t.Sampled - min(t.Reviewed, t.Sampled))},
			Href: v.Href("/records", "tier", t.Tier, "sampled", "1", "review", string(query.Pending)),
			Note: fmt.Sprintf("%d of %d reviewed", t.Reviewed, t.Sampled)})
	}
	p.Done = pct(p.Reviewed, p.Sampled)
	p.TierChart = chart.Bars{Label: "Review progress per risk tier", Series: reviewSeries, Bars: tbars, Width: 520}
	cols := make([]chart.Column, 0, len(data.Progress))
	for _, pt := range data.Progress {
		from, to := bucketRange(pt.Start, data.Step)
		cols = append(cols, chart.Column{Label: bucketLabel(pt.Start, data.Step), Title: pt.Start.Format("2006-01-02 15:04 UTC"),
			Values: []float64{float64(pt.Reviewed), float64(pt.Sampled - min(pt.Reviewed, pt.Sampled))},
			Hrefs: []string{v.Href("/records", "from", from, "to", to, "sampled", "1", "review", string(query.Reviewed)),
				v.Href("/records", "from", from, "to", to, "sampled", "1", "review", string(query.Pending))}})
	}
	p.Progress = chart.Columns{Label: "Sampled records per " + data.Step.String() + ": reviewed and pending", Series: reviewSeries, Cols: cols, Height: 200}
	p.Reviewers, p.OldestPending = in.Stats.Reviewers, in.Stats.OldestPending
	if !p.OldestPending.IsZero() && !in.Now.IsZero() {
		p.OldestAge = age(in.Now.Sub(p.OldestPending))
	}
	for _, t := range data.Tiers {
		p.BurstSampled += t.Burst
	}
	p.BurstTruth = burstTruth(data.Burst, p.BurstSampled)
	admin := in.Principal.Can(auth.Admin)
	p.CanBurst = admin && in.Principal.EveryTenant()
	if admin && !in.Principal.EveryTenant() {
		p.BurstNote = burstNeedsAll
	}
	return p
}

// burstTruth says what the burst state shown means for the records of the
// range: enrich also switches burst sampling on by itself (automatic burst,
// when near misses and failures spike), which no oversight event records —
// so "off, never switched" next to records sampled in burst would be false.
func burstTruth(b query.Burst, sampled uint64) string {
	switch {
	case sampled == 0 && !b.Known:
		return "No record in this range was sampled in burst, and no one has switched burst mode."
	case sampled == 0:
		return "No record in this range was sampled in burst."
	case !b.Known:
		return fmt.Sprintf("%d records in this range were sampled in burst by enrich's automatic burst mode (near misses or failures spiked); no one switched it by hand.", sampled)
	case !b.On:
		return fmt.Sprintf("Burst is off now, but %d records in this range were sampled in burst — while it was on, or by enrich's automatic burst mode.", sampled)
	}
	return fmt.Sprintf("%d records in this range were sampled in burst.", sampled)
}

// age is a duration as a reader wants it: "3 d 4 h", "5 h 12 min", "40 min".
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0 min"
	case d >= 24*time.Hour:
		return fmt.Sprintf("%d d %d h", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%d min", int(d/time.Minute))
}
