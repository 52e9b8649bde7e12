package query

import (
	"errors"
	"time"

	"github.com/auditline/auditline/enrich/record"
)

// AllTenants in Filter.Tenants lifts tenant scoping (a user configured with
// tenants ["*"]).
const AllTenants = "*"

// ErrNoTenant is returned for a Filter that names no tenant: refusing is safer
// than reading everything.
var ErrNoTenant = errors.New("query: no tenant in filter")

// ErrNotFound is returned when a record does not exist or is outside the
// filter's tenants: the two are indistinguishable on purpose.
var ErrNotFound = errors.New("query: record not found")

// Category narrows a list to blocked or nearly blocked records.
type Category string

// Categories.
const (
	AnyCategory Category = ""
	Blocked     Category = "blocked" // outcome = blocked
	NearMiss    Category = "near"    // near-miss flagged, not blocked
	Flagged     Category = "flagged" // either of the above
)

// Review narrows a list by review state.
type Review string

// Review states. Any other non-empty value is a review outcome (approve, flag, …).
const (
	AnyReview Review = ""
	Pending   Review = "pending"  // sampled, no oversight outcome yet
	Reviewed  Review = "reviewed" // any outcome
)

// Filter selects records. The zero value of each field means "any". Times
// are a half-open range [From, To) on the request's start time.
type Filter struct {
	Tenants  []string // required: tenant ids, or AllTenants
	Tenant   string   // one tenant within Tenants (a user's choice)
	From, To time.Time
	Team     string // team alias, else team id
	Alias    string // requested model alias
	Provider string
	Reason   string // near-miss reason
	Tier     string // risk tier
	Category Category
	Sampled  bool // only sampled records
	Review   Review
	Sample   string // sample reason: baseline, burst, always
	// Issue 18: more ways to narrow a list.
	Outcome  string // outcome.status: success, failure, blocked, pending
	Model    string // served model, else requested alias
	User     string // user id or e-mail
	Approval string // approval.status (record.Approval*), or "violation" for both violations
	// Search matches a record id (or a prefix of at least 8 characters), a
	// request key, a user id or e-mail, or a key alias, exactly.
	Search string
	// Access selects the access log (records of access events) instead of
	// requests. Every other read counts requests only.
	Access bool
	// Sort orders a list: SortNewest (default), SortOldest, SortCost,
	// SortDuration. Only Records reads it.
	Sort string
}

// ApprovalViolation as Filter.Approval selects both violations: executed
// without the required approval, and executed after a rejection.
const ApprovalViolation = "violation"

// Count is one row of a breakdown.
type Count struct {
	Key      string
	Total    uint64 // records
	Flagged  uint64 // blocked or near miss
	Blocked  uint64
	NearMiss uint64 // near miss, not blocked
}

// Point is one time bucket of a trend.
type Point struct {
	Start    time.Time
	Blocked  uint64
	NearMiss uint64
	Total    uint64
}

// ReasonPoint is one (bucket, reason) count: a record with two reasons
// counts once under each.
type ReasonPoint struct {
	Start  time.Time
	Reason string
	Count  uint64
}

// NearMissPage is what the near-miss dashboard shows.
type NearMissPage struct {
	Step       time.Duration // bucket width of Trend and Reasons
	Totals     Count
	Trend      []Point       // every bucket of the range, zeros included
	Reasons    []ReasonPoint // non-zero buckets only
	ByTeam     []Count
	ByAlias    []Count
	ByProvider []Count
	ByReason   []Count // Total = occurrences
}

// Row is one record in a list.
type Row struct {
	RecordID     string
	Version      uint32
	Tenant       string
	StartTime    time.Time
	Team         string
	Alias        string
	Provider     string
	Outcome      string
	BlockedBy    string
	NearMiss     bool
	Reasons      []string
	Tier         string
	Sampled      bool
	SampleReason string
	ReviewStatus string
	CostUSD      float64
	DurationMS   int64
}

// Cursor is the keyset position after a row: lists run newest first.
type Cursor struct {
	Start    time.Time
	RecordID string
}

// IsZero reports whether c is the start of a list.
func (c Cursor) IsZero() bool { return c.RecordID == "" }

// List is a page of records.
type List struct {
	Rows []Row
	Next Cursor // zero when this is the last page
}

// Version is one version of a record, for the version history.
type Version struct {
	Version      uint32
	Completeness string
	ReviewStatus string
	Oversight    int
	Partition    int32 // where the version sits in the decisions topic; -1 unknown
	Offset       int64
}

// Detail is one record version in full.
type Detail struct {
	Decision  record.Decision
	Partition int32 // decisions topic partition of this version; -1 unknown
	Offset    int64
	Versions  []Version // newest first
	// Missing lists Decision fields that have no column in the table (a
	// schema older than the record type); the page says so.
	Missing []string
}

// Tier is one risk tier on the sampling dashboard.
type Tier struct {
	Tier     string
	Total    uint64
	Sampled  uint64
	Baseline uint64
	Burst    uint64
	Always   uint64
	Reviewed uint64
	Rate     float64 // sample_rate of the tier's newest sampled record (configured rate)
}

// ReviewPoint is review progress per bucket.
type ReviewPoint struct {
	Start    time.Time
	Sampled  uint64
	Reviewed uint64
}

// Burst is the latest sampling_control event: who switched burst mode, when
// and why.
type Burst struct {
	Known     bool // false: no sampling_control event found
	EventID   string
	On        bool
	By        string
	Role      string
	Rationale string
	At        time.Time
	Tiers     []string
}

// SamplingPage is what the sampling dashboard shows.
type SamplingPage struct {
	Step     time.Duration
	Tiers    []Tier
	Outcomes []Count // Key = outcome, Total = records
	Progress []ReviewPoint
	Queue    []Row // pending, oldest first, at most QueuePerTier per tier
	Burst    Burst
	Switches []Burst // recent burst switches, newest first
}
