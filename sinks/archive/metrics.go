package archive

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/ingest/topic"
)

type metrics struct {
	batches      prometheus.Counter
	records      prometheus.Counter
	bytes        prometheus.Counter
	skipped      prometheus.Counter
	gaps         prometheus.Counter
	adopted      prometheus.Counter
	decodeErrors prometheus.Counter
	retries      prometheus.Counter
	checkpoints  prometheus.Counter
	tsaErrors    prometheus.Counter
	upload       *prometheus.HistogramVec
	seal         prometheus.Histogram
	open         prometheus.Gauge
	// The global log and its witnesses.
	checkpointErrors prometheus.Counter
	logSize          prometheus.Gauge
	cosigned         *prometheus.CounterVec
	witnessErrors    *prometheus.CounterVec
	witnessSize      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batches:      prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_batches_sealed_total", Help: "Batches sealed: Parquet object and signed manifest written under Object Lock."}),
		records:      prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_records_sealed_total", Help: "Records in sealed batches."}),
		bytes:        prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_bytes_uploaded_total", Help: "Bytes of Parquet batch objects uploaded."}),
		skipped:      prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_skipped_total", Help: "Records re-read after a restart that an existing manifest already seals (skipped, not archived twice)."}),
		gaps:         prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_offset_gaps_total", Help: "Offsets of the decisions topic that held no record when read (transaction markers, or records deleted by retention before they were archived)."}),
		adopted:      prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_adopted_total", Help: "Batch objects found already uploaded (a crash between upload and manifest) whose content matched and was sealed."}),
		decodeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_decode_errors_total", Help: "Records archived with archive_error set (value not a decision record)."}),
		retries:      prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_upload_retries_total", Help: "Retried S3 operations."}),
		checkpoints:  prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_checkpoints_total", Help: "Signed checkpoints written."}),
		tsaErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_tsa_errors_total", Help: "Checkpoints whose RFC 3161 time-stamp could not be obtained or stored."}),
		upload: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "auditline_archive_upload_seconds", Help: "Latency of one successful S3 put, by object kind.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"object"}),
		seal: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "auditline_archive_seal_seconds", Help: "Time to seal one batch: Parquet encoding, Merkle root, uploads and signing.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditline_archive_open_records", Help: "Records read but not yet sealed, over all partitions."}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_archive_checkpoint_errors_total",
			Help: "Checkpoint rounds that failed; a refusal to extend the global log (a sealed batch missing or altered) is logged at error level."}),
		logSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "auditline_archive_log_size", Help: "Leaves in the global log as of the latest checkpoint this process wrote."}),
		cosigned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_archive_cosignatures_total",
			Help: "Checkpoints cosigned by a witness and stored, by witness name."}, []string{"witness"}),
		witnessErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_archive_witness_errors_total",
			Help: "Failed submissions to a witness (unreachable, refused, or a witness whose view contradicts the bucket), by witness name."}, []string{"witness"}),
		witnessSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditline_archive_witness_log_size",
			Help: "Log size of the latest checkpoint each witness cosigned; compare with auditline_archive_log_size."}, []string{"witness"}),
	}
	for _, c := range []prometheus.Collector{m.batches, m.records, m.bytes, m.skipped, m.gaps, m.adopted, m.decodeErrors, m.retries, m.checkpoints, m.tsaErrors, m.upload, m.seal, m.open,
		m.checkpointErrors, m.logSize, m.cosigned, m.witnessErrors, m.witnessSize} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// lagCollector reports the consumer lag per partition from the Reader.
type lagCollector struct {
	desc  *prometheus.Desc
	stats func() []topic.PartitionStats
}

func newLagCollector(stats func() []topic.PartitionStats) *lagCollector {
	return &lagCollector{
		desc:  prometheus.NewDesc("auditline_archive_lag_records", "Records on the decisions topic not yet sealed and committed, per partition.", []string{"partition"}, nil),
		stats: stats,
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.Lag), strconv.Itoa(int(s.Partition)))
	}
}
