package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config.
const (
	DefaultInterval   = time.Minute
	DefaultAlarmAfter = 15 * time.Minute
	DefaultWindow     = 7 * 24 * time.Hour
)

// Config is the live ledger's YAML section (store.ledger): the store stage
// checks ClickHouse for sequence gaps every Interval.
type Config struct {
	// Interval between checks; 0 turns the live ledger off (the views and
	// `auditline gaps` still work).
	Interval time.Duration `yaml:"interval"`
	// AlarmAfter: a gap known for longer than this is an alarm (metric
	// auditline_ledger_alarm, an ERROR log line). A gap shorter than that may
	// still fill: the plugin re-sends after an outage, and a request waits up
	// to enrich.outcome_wait before its record exists. Keep it longer than
	// both.
	AlarmAfter time.Duration `yaml:"alarm_after"`
	// Window limits each check to records first received within it (0: all
	// history; every check then reads every record).
	Window time.Duration `yaml:"window"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{Interval: DefaultInterval, AlarmAfter: DefaultAlarmAfter, Window: DefaultWindow}
}

// Validate reports every problem, prefixed with its YAML key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("%sinterval: %s, want >= 0 (0 turns the live ledger off)", prefix, c.Interval))
	}
	if c.Interval > 0 && c.AlarmAfter <= 0 {
		errs = append(errs, fmt.Errorf("%salarm_after: %s, want > 0", prefix, c.AlarmAfter))
	}
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("%swindow: %s, want >= 0 (0: all history)", prefix, c.Window))
	}
	if c.Window > 0 && c.Window < c.AlarmAfter {
		errs = append(errs, fmt.Errorf("%swindow: %s is shorter than alarm_after (%s)", prefix, c.Window, c.AlarmAfter))
	}
	return errors.Join(errs...)
}

// Monitor is the live ledger: metrics and alarm log lines from ClickHouse.
type Monitor struct {
	cfg  Config
	conn driver.Conn
	db   string
	log  *slog.Logger
	now  func() time.Time

	emitters  prometheus.Gauge
	missing   *prometheus.GaugeVec
	gaps      *prometheus.GaugeVec
	oldest    *prometheus.GaugeVec
	highest   *prometheus.GaugeVec
	alarm     prometheus.Gauge
	lastCheck prometheus.Gauge
	errors    prometheus.Counter

	alarmed map[gapKey]time.Time // gaps already reported as alarms
}

type gapKey struct {
	emitter string
	first   int64
}

// NewMonitor registers the ledger metrics on reg.
func NewMonitor(cfg Config, conn driver.Conn, db string, reg prometheus.Registerer, log *slog.Logger) (*Monitor, error) {
	if log == nil {
		log = slog.Default()
	}
	m := &Monitor{cfg: cfg, conn: conn, db: db, log: log, now: time.Now, alarmed: map[gapKey]time.Time{},
		emitters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditline_ledger_emitters",
			Help: "Emitters of the LiteLLM plugin with records in the ledger window."}),
		missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditline_ledger_missing_events",
			Help: "Sequence numbers no record accounts for, per emitter (lost or not yet arrived)."}, []string{"emitter"}),
		gaps: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditline_ledger_gaps",
			Help: "Runs of missing sequence numbers, per emitter."}, []string{"emitter"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditline_ledger_oldest_gap_seconds",
			Help: "How long the oldest gap of the emitter has been known (0: none)."}, []string{"emitter"}),
		highest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditline_ledger_highest_sequence",
			Help: "Highest sequence number recorded, per emitter."}, []string{"emitter"}),
		alarm: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditline_ledger_alarm",
			Help: "Gaps known for longer than store.ledger.alarm_after (0: none)."}),
		lastCheck: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditline_ledger_last_check_timestamp_seconds",
			Help: "When the ledger was last checked successfully."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_ledger_check_errors_total",
			Help: "Ledger checks that failed (ClickHouse unreachable, ...)."}),
	}
	for _, c := range []prometheus.Collector{m.emitters, m.missing, m.gaps, m.oldest, m.highest, m.alarm, m.lastCheck, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ledger metrics: %w", err)
		}
	}
	return m, nil
}

// Run checks every cfg.Interval until ctx ends. It never fails: a check that
// cannot read ClickHouse is counted and logged, and the next one tries again.
func (m *Monitor) Run(ctx context.Context) {
	if m.cfg.Interval <= 0 {
		return
	}
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if err := m.Check(ctx); err != nil && ctx.Err() == nil {
			m.errors.Inc()
			m.log.Warn("ledger check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check reads the ledger once and updates the metrics; it logs an alarm for
// each gap that has just become older than AlarmAfter, and a note when an
// alarmed gap fills.
func (m *Monitor) Check(ctx context.Context) error {
	now := m.now()
	var since time.Time
	if m.cfg.Window > 0 {
		since = now.Add(-m.cfg.Window)
	}
	ctx, cancel := context.WithTimeout(ctx, max(m.cfg.Interval, time.Minute))
	defer cancel()
	b, err := Read(ctx, m.conn, m.db, since, "")
	if err != nil {
		return err
	}
	es := b.Within()
	m.missing.Reset()
	m.gaps.Reset()
	m.oldest.Reset()
	m.highest.Reset()
	m.emitters.Set(float64(len(es)))
	alarms := 0
	open := map[gapKey]bool{}
	for _, e := range es {
		m.missing.WithLabelValues(e.ID).Set(float64(e.Missing()))
		m.gaps.WithLabelValues(e.ID).Set(float64(len(e.Gaps)))
		m.highest.WithLabelValues(e.ID).Set(float64(e.Last))
		age := 0.0
		for _, g := range e.Gaps {
			k := gapKey{e.ID, g.First}
			open[k] = true
			if g.Since.IsZero() {
				continue
			}
			a := now.Sub(g.Since)
			age = max(age, a.Seconds())
			if a < m.cfg.AlarmAfter {
				continue
			}
			alarms++
			if _, done := m.alarmed[k]; !done {
				m.alarmed[k] = now
				m.log.Error("sequence gap: events of the LiteLLM plugin never reached auditline",
					"emitter", e.ID, "missing", g.Range.String(), "count", g.Len(), "known_since", g.Since.Format(time.RFC3339),
					"alarm_after", m.cfg.AlarmAfter, "runbook", "docs/litellm.md#runbook-sequence-gaps")
			}
		}
		m.oldest.WithLabelValues(e.ID).Set(age)
	}
	for k, at := range m.alarmed {
		if !open[k] {
			delete(m.alarmed, k)
			m.log.Info("sequence gap filled", "emitter", k.emitter, "first", k.first, "alarmed_for", now.Sub(at).Round(time.Second))
		}
	}
	m.alarm.Set(float64(alarms))
	m.lastCheck.Set(float64(now.Unix()))
	return nil
}

// SetClock replaces the monitor's clock (tests).
func SetClock(m *Monitor, now func() time.Time) { m.now = now }
