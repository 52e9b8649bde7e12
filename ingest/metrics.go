package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts items (events, bytes, refusals); the log carries only
// decisions and failures that need a human.
type metrics struct {
	requests     *prometheus.CounterVec   // endpoint, code
	accepted     *prometheus.CounterVec   // source
	rejected     *prometheus.CounterVec   // endpoint, reason
	dlq          *prometheus.CounterVec   // endpoint, reason
	nulls        *prometheus.CounterVec   // endpoint
	bodyBytes    *prometheus.CounterVec   // endpoint
	produce      *prometheus.HistogramVec // result
	inflightB    prometheus.Gauge
	inflightR    prometheus.Gauge
	abandoned    prometheus.Gauge
	panics       prometheus.Counter
	requestTimes *prometheus.HistogramVec // endpoint
	watermarks   *prometheus.CounterVec   // result
	watermarkLag *prometheus.GaugeVec     // topic
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_ingest_requests_total",
			Help: "HTTP requests by endpoint and status code."}, []string{"endpoint", "code"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_ingest_events_accepted_total",
			Help: "Source events acknowledged by Kafka on their raw topic, by source."}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_ingest_rejected_total",
			Help: "Requests refused, by endpoint and reason."}, []string{"endpoint", "reason"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_ingest_dlq_records_total",
			Help: "Records acknowledged on the DLQ topic, by endpoint and reason (invalid_json, invalid_event)."}, []string{"endpoint", "reason"}),
		nulls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_ingest_null_elements_total",
			Help: "null elements skipped (LiteLLM queues null when it could not build a payload)."}, []string{"endpoint"}),
		bodyBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_ingest_body_bytes_total",
			Help: "Body bytes read, by endpoint."}, []string{"endpoint"}),
		produce: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "auditline_ingest_produce_seconds",
			Help:    "Time from produce to acknowledgement of all records of one body, by result (ok, error, timeout).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"result"}),
		inflightB: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditline_ingest_inflight_bytes",
			Help: "Bytes of bodies being read or produced (bounded by ingest.max_inflight_bytes)."}),
		inflightR: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditline_ingest_inflight_requests",
			Help: "Write requests being handled."}),
		abandoned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditline_ingest_produces_unfinished",
			Help: "Produces whose request was answered 503 on timeout and that Kafka has not settled yet."}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_ingest_panics_total",
			Help: "Panics recovered in request handling (each a bug; the request got 500)."}),
		requestTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "auditline_ingest_request_seconds",
			Help:    "Time to answer a write request, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"endpoint"}),
		watermarks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_ingest_watermarks_total",
			Help: "Watermark rounds (one record to every partition of raw.litellm and raw.gateway), by result (ok, error)."}, []string{"result"}),
		watermarkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditline_ingest_watermark_lag_seconds",
			Help: "Wall time minus the last watermark acknowledged by Kafka, per topic (how far enrich's stream time trails, at best)."}, []string{"topic"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.accepted, m.rejected, m.dlq, m.nulls, m.bodyBytes,
		m.produce, m.inflightB, m.inflightR, m.abandoned, m.panics, m.requestTimes, m.watermarks, m.watermarkLag} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
