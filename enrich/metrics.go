package enrich

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts items; the log only tells of events (start, stop, switches,
// failures).
type metrics struct {
	events      *prometheus.CounterVec // by source and result
	decisions   *prometheus.CounterVec // by completeness
	dlq         *prometheus.CounterVec // by reason
	early       prometheus.Counter
	watermarks  *prometheus.CounterVec // by result
	pending     *prometheus.GaugeVec   // by partition
	cacheBytes  *prometheus.GaugeVec
	cacheSize   *prometheus.GaugeVec
	streamLag   *prometheus.GaugeVec
	burst       *prometheus.GaugeVec
	produceSecs prometheus.Histogram
	fetches     *prometheus.CounterVec // amendment fetches by kind and result
	alerts      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_enrich_events_total",
			Help: "Source events read, by source and what became of them (new, joined, duplicate, amend, late, dlq, control).",
		}, []string{"source", "result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_enrich_decisions_total",
			Help: "Decision versions emitted (acknowledged by Kafka), by completeness.",
		}, []string{"completeness"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_enrich_dlq_total",
			Help: "Source events sent to the DLQ topic, by reason.",
		}, []string{"reason"}),
		early: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditline_enrich_early_timeouts_total",
			Help: "Requests emitted timed_out before their wait because enrich.max_pending was reached, or because an input partition paused by backpressure held stream time still.",
		}),
		watermarks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_enrich_watermarks_total",
			Help: "Ingest watermark records read (not events), by result (ok, malformed).",
		}, []string{"result"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditline_enrich_pending_requests",
			Help: "Requests waiting for their final event (in flight), per partition.",
		}, []string{"partition"}),
		cacheBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditline_enrich_cache_bytes",
			Help: "Estimated bytes of recently emitted records kept for amendments, per partition.",
		}, []string{"partition"}),
		cacheSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditline_enrich_cache_records",
			Help: "Recently emitted records kept for amendments, per partition.",
		}, []string{"partition"}),
		streamLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditline_enrich_stream_lag_seconds",
			Help: "Wall clock minus stream time, per partition.",
		}, []string{"partition"}),
		burst: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditline_enrich_auto_burst",
			Help: "1 while automatic burst sampling is on, per partition.",
		}, []string{"partition"}),
		produceSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "auditline_enrich_produce_seconds",
			Help:    "Time for Kafka to acknowledge one flush of decisions and DLQ records.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_enrich_amend_fetches_total",
			Help: "Reads of Kafka to amend a record no longer in memory, by what was read and the result.",
		}, []string{"kind", "result"}),
		alerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditline_enrich_budget_alerts_total",
			Help: "Budget alerts read from raw.alerts into the alert table.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.decisions, m.dlq, m.early, m.watermarks, m.pending, m.cacheBytes, m.cacheSize,
			m.streamLag, m.burst, m.produceSecs, m.fetches, m.alerts)
	}
	return m
}

func (m *metrics) forget(p int32) {
	l := strconv.Itoa(int(p))
	for _, g := range []*prometheus.GaugeVec{m.pending, m.cacheBytes, m.cacheSize, m.streamLag, m.burst} {
		g.DeleteLabelValues(l)
	}
}
