package store

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/ingest/topic"
)

// metrics counts what the store does, per table.
type metrics struct {
	rows          *prometheus.CounterVec
	batches       *prometheus.CounterVec
	insertSeconds *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	retries       *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	landed        *prometheus.CounterVec
	buffered      *prometheus.GaugeVec
	up            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_store_rows_inserted_total", Help: "Rows inserted into ClickHouse.",
		}, []string{"table"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_store_batches_total", Help: "Batches inserted (one INSERT each).",
		}, []string{"table"}),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "auditline_store_batch_seconds", Help: "Time to store a batch, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"table"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_store_insert_errors_total", Help: "Failed INSERT attempts by class (timeout, refused, connection_lost, code_N, or a permanent code name).",
		}, []string{"table", "class"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_store_insert_retries_total", Help: "INSERT attempts repeated after a retryable failure.",
		}, []string{"table"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_store_rejected_total", Help: "Kafka values that could not become rows, stored in rejected_records.",
		}, []string{"table"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_store_replayed_skipped_total", Help: "Messages not inserted again because ClickHouse already holds them (store_progress on one server; on a cluster, the rows each shard holds).",
		}, []string{"table"}),
		landed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditline_store_lost_replies_total", Help: "Failed INSERTs found stored before a retry, and not repeated.",
		}, []string{"table"}),
		buffered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditline_store_buffered_messages", Help: "Messages read but not yet inserted.",
		}, []string{"table"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "auditline_store_clickhouse_up", Help: "1 when the last ClickHouse call succeeded, 0 while inserts are failing.",
		}),
	}
	for _, c := range []prometheus.Collector{m.rows, m.batches, m.insertSeconds, m.errors, m.retries, m.rejected, m.skipped, m.landed, m.buffered, m.up} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// lagCollector reports each Reader's partitions: lag behind the high
// watermark and messages handed out but not yet Done.
type lagCollector struct {
	mu      sync.Mutex
	readers []*topic.Reader
	lag     *prometheus.Desc
	out     *prometheus.Desc
}

func newLagCollector() *lagCollector {
	return &lagCollector{
		lag: prometheus.NewDesc("auditline_store_lag_messages", "Messages behind the partition's high watermark (not yet committed).",
			[]string{"topic", "partition"}, nil),
		out: prometheus.NewDesc("auditline_store_outstanding_messages", "Messages handed to the writer and not yet inserted.",
			[]string{"topic", "partition"}, nil),
	}
}

func (c *lagCollector) add(r *topic.Reader) {
	c.mu.Lock()
	c.readers = append(c.readers, r)
	c.mu.Unlock()
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.lag; ch <- c.out }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	readers := append([]*topic.Reader(nil), c.readers...)
	c.mu.Unlock()
	for _, r := range readers {
		for _, s := range r.Stats() {
			p := strconv.Itoa(int(s.Partition))
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.Lag), s.Topic, p)
			ch <- prometheus.MustNewConstMetric(c.out, prometheus.GaugeValue, float64(s.Outstanding), s.Topic, p)
		}
	}
}
