package enrich

import (
	"errors"
	"fmt"
	"time"

	"github.com/auditline/auditline/enrich/fold"
)

// Defaults for Config (docs/enrich.md explains each choice).
const (
	DefaultGroup        = "auditline-enrich"
	DefaultSuccessDelay = time.Second
	DefaultFailureGrace = 10 * time.Second
	DefaultLiteLLMWait  = 60 * time.Second
	DefaultOutcomeWait  = 5 * time.Minute
	DefaultIdleAfter    = 5 * time.Second
	// DefaultWatermarkTimeout is above what a live but slow ingest's
	// watermark can trail the others by: ingest.produce_timeout (5 s) for
	// its oldest payload, as long again after a failed produce, and the
	// produce of the watermark itself.
	DefaultWatermarkTimeout = 30 * time.Second
	DefaultAmendWindow      = time.Hour
	DefaultCacheBytes       = 64 << 20
	DefaultMaxPending       = 50_000 // above what kafka.max_outstanding_bytes (64 MiB) lets pend: backpressure comes first
	DefaultBurstLookback    = 24 * time.Hour
	DefaultTickInterval     = time.Second
)

// Config is the enrich stage's YAML section ("enrich").
type Config struct {
	// Group is the Kafka consumer group.
	Group string `yaml:"group"`
	// SuccessDelay is how long (in stream time) a request whose LiteLLM
	// success arrived still waits for its other events: a gateway event
	// received at about the same moment but read from the other topic, or
	// written a moment later by another ingest instance. 0 emits as soon as
	// stream time reaches the success's receive time.
	SuccessDelay time.Duration `yaml:"success_delay"`
	// FailureGrace is how long (in stream time) a request whose latest LiteLLM
	// event is a failure waits for a fallback or retry success before it is
	// emitted complete with outcome failure or blocked.
	FailureGrace time.Duration `yaml:"failure_grace"`
	// LiteLLMWait is how long (in stream time) a request with only gateway or
	// oversight events waits for its LiteLLM event before it is emitted
	// timed_out.
	LiteLLMWait time.Duration `yaml:"litellm_wait"`
	// OutcomeWait is how long (in stream time) a request that auditline's
	// LiteLLM plugin marked as started (request_started) waits for its
	// LiteLLM outcome before it is emitted with completeness
	// missing_outcome. It must exceed the longest request (a long stream)
	// plus the plugin's delivery delay; a later outcome amends the record.
	OutcomeWait time.Duration `yaml:"outcome_wait"`
	// IdleAfter: a topic that delivered nothing for this long (wall clock) no
	// longer holds back stream time; when both are idle, stream time follows
	// the wall clock minus IdleAfter.
	//
	// With ingest writing watermarks (ingest.watermark_interval), a topic
	// delivers a watermark every interval and never goes idle while ingest
	// runs: IdleAfter then only matters when every ingest is down. A
	// partition with records not read yet is never idle.
	IdleAfter time.Duration `yaml:"idle_after"`
	// WatermarkTimeout drops an ingest instance whose latest watermark
	// trails another instance's, in the same partition, by more than this
	// (it crashed): until then stream time waits for it. Measured in
	// watermark time, so a replay drops it at the same point.
	WatermarkTimeout time.Duration `yaml:"watermark_timeout"`
	// AmendWindow is how long after emission a record can still be amended
	// from memory (and how far back the decisions topic is re-read when a
	// partition is assigned).
	AmendWindow time.Duration `yaml:"amend_window"`
	// CacheBytes bounds, per partition, the memory of recently emitted
	// records kept for amendments; the oldest are dropped first.
	CacheBytes int `yaml:"cache_bytes"`
	// MaxPending bounds, per partition, the requests waiting for their final
	// event; beyond it the oldest is emitted timed_out early. The default
	// is a last resort: pending requests hold their decoded events against
	// kafka.max_outstanding_bytes, which pauses the partition (backpressure,
	// nothing emitted early) well before 50,000 requests.
	MaxPending int `yaml:"max_pending"`
	// BurstLookback is how far back raw.gateway is re-read for
	// sampling_control events when a partition is assigned.
	BurstLookback time.Duration `yaml:"burst_lookback"`
	// TickInterval is how often idle partitions advance stream time.
	TickInterval time.Duration `yaml:"tick_interval"`

	Content  fold.ContentConfig  `yaml:"content"`
	NearMiss fold.NearMissConfig `yaml:"near_miss"`
	Risk     fold.RiskConfig     `yaml:"risk"`
	Sampling fold.SamplingConfig `yaml:"sampling"`
	// Approval: which tiers need approval before action, four eyes,
	// separation of duties (docs/enrich.md, "Approval before action").
	Approval fold.ApprovalConfig `yaml:"approval"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	r := fold.NewDefaultRules()
	return Config{
		Group:            DefaultGroup,
		SuccessDelay:     DefaultSuccessDelay,
		FailureGrace:     DefaultFailureGrace,
		LiteLLMWait:      DefaultLiteLLMWait,
		OutcomeWait:      DefaultOutcomeWait,
		IdleAfter:        DefaultIdleAfter,
		WatermarkTimeout: DefaultWatermarkTimeout,
		AmendWindow:      DefaultAmendWindow,
		CacheBytes:       DefaultCacheBytes,
		MaxPending:       DefaultMaxPending,
		BurstLookback:    DefaultBurstLookback,
		TickInterval:     DefaultTickInterval,
		Content:          r.Content,
		NearMiss:         r.NearMiss,
		Risk:             r.Risk,
		Sampling:         r.Sampling,
		Approval:         r.Approval,
	}
}

// Rules returns the derived-field rules of c.
func (c *Config) Rules() fold.Rules {
	return fold.Rules{Content: c.Content, NearMiss: c.NearMiss, Risk: c.Risk, Sampling: c.Sampling, Approval: c.Approval}
}

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("enrich.group: must not be empty"))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"failure_grace", c.FailureGrace}, {"litellm_wait", c.LiteLLMWait}, {"outcome_wait", c.OutcomeWait}, {"idle_after", c.IdleAfter}, {"watermark_timeout", c.WatermarkTimeout},
		{"amend_window", c.AmendWindow}, {"tick_interval", c.TickInterval},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("enrich.%s: %s, want > 0", d.key, d.v))
		}
	}
	if c.SuccessDelay < 0 {
		errs = append(errs, fmt.Errorf("enrich.success_delay: %s, want >= 0", c.SuccessDelay))
	}
	if c.BurstLookback < 0 {
		errs = append(errs, fmt.Errorf("enrich.burst_lookback: %s, want >= 0", c.BurstLookback))
	}
	if c.AmendWindow > 0 && c.AmendWindow < c.LiteLLMWait {
		errs = append(errs, fmt.Errorf("enrich.amend_window: %s is shorter than enrich.litellm_wait (%s)", c.AmendWindow, c.LiteLLMWait))
	}
	if c.AmendWindow > 0 && c.AmendWindow < c.OutcomeWait {
		errs = append(errs, fmt.Errorf("enrich.amend_window: %s is shorter than enrich.outcome_wait (%s)", c.AmendWindow, c.OutcomeWait))
	}
	if c.CacheBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("enrich.cache_bytes: %d, want at least 1 MiB", c.CacheBytes))
	}
	if c.MaxPending < 1 {
		errs = append(errs, fmt.Errorf("enrich.max_pending: %d, want at least 1", c.MaxPending))
	}
	r := c.Rules()
	if err := r.Validate("enrich."); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
