package topic

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/internal/tlsclient"
)

// Defaults for Config.
const (
	DefaultCommitInterval      = time.Second
	DefaultMaxOutstanding      = 50_000
	DefaultMaxOutstandingBytes = 64 << 20
	DefaultMaxBufferBytes      = 64 << 20
	DefaultPartitions          = 4
	DefaultRawRetention        = 7 * 24 * time.Hour
	DefaultSessionTimeout      = 45 * time.Second
	DefaultHeartbeatInterval   = 3 * time.Second
	DefaultMaxPollRecords      = 10_000
	DefaultFetchMaxBytes       = 50 << 20
	DefaultBatchMaxBytes       = 4 << 20
	DefaultCompression         = "snappy"
)

// Config is the Kafka connection shared by every stage, and every setting of
// the Kafka clients auditline makes: the Writer, the group Reader, the
// Scanner, Follow and the topic admin all take their options from it (one
// place, clientOpts), so no stage tunes a client on its own.
type Config struct {
	// Brokers is the seed list, e.g. ["127.0.0.1:9092"]. YAML: kafka.brokers.
	Brokers []string `yaml:"brokers"`
	// ClientID names this process to the brokers. Empty means "auditline".
	ClientID string `yaml:"client_id"`
	// Partitions is the partition count used when auditline creates its topics.
	// raw.litellm, raw.gateway and decisions always get the same count.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor for created topics; 0 means the broker default.
	ReplicationFactor int `yaml:"replication_factor"`
	// RawRetention is the retention (retention.ms) `auditline migrate` sets
	// on the raw topics and the DLQ, which hold source events whole:
	// prompts, responses, client headers (docs/privacy.md). Default 168h;
	// 0 leaves the broker's default. Enrich re-reads raw events when a late
	// event amends a record no longer in memory: keep it above the longest
	// wait for a late review.
	RawRetention time.Duration `yaml:"raw_retention"`
	// CommitInterval is how often the Reader commits watermarks.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// MaxOutstanding is, per partition, how many messages may be handed to a
	// Handler without being Done before the partition is paused.
	MaxOutstanding int `yaml:"max_outstanding"`
	// MaxOutstandingBytes is, per partition, how many bytes of messages (key,
	// value, headers and ~300 bytes of bookkeeping each; a message the
	// Handler released counts what it kept) may be handed to a Handler
	// without being Done before the partition is paused; it is resumed when
	// both the count and the bytes are back under half. This, not the
	// count, is what bounds a stage's memory for fetched records: the
	// stage slows down (its consumer lag grows) instead of growing. Default
	// 64 MiB; the store and the archive bound their readers lower, by their
	// batch sizes.
	MaxOutstandingBytes int `yaml:"max_outstanding_bytes"`
	// MaxBufferBytes bounds what the Writer buffers; Produce blocks beyond it
	// until its context ends.
	MaxBufferBytes int `yaml:"max_buffer_bytes"`
	// BatchMaxBytes bounds one record batch the Writer sends to a partition
	// (keep it at or below the brokers' message.max.bytes). Default 4 MiB.
	BatchMaxBytes int `yaml:"batch_max_bytes"`
	// Compression is the codec of the record batches the Writer produces:
	// snappy (default), lz4, zstd, gzip or none. Snappy is franz-go's
	// klauspost/s2 encoder: on LiteLLM payloads it compresses as well as
	// LZ4 (8.6× against 8.7× on loadgen's traffic) for a fifth of the CPU
	// (1.3 against 6.5 µs per 5 KB payload, bench/PROFILE.md), and every
	// Kafka client decodes it. zstd compresses a third better for twice
	// LZ4's CPU: the choice for brokers short of disk, not of CPU.
	Compression string `yaml:"compression"`
	// FetchMaxBytes bounds one fetch response of a Reader or Scanner. Default
	// 50 MiB.
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// MaxPollRecords bounds the records a Reader hands out per poll. Default
	// 10,000.
	MaxPollRecords int `yaml:"max_poll_records"`
	// SessionTimeout is the consumer-group session timeout: how long a group
	// waits for a member that stopped heartbeating (a killed process) before
	// its partitions move to another member. The broker bounds it
	// (group.min/max.session.timeout.ms, 6 s to 30 min by default). Default
	// 45 s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// HeartbeatInterval is how often a group member heartbeats; keep it at a
	// third of SessionTimeout or less. Default 3 s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// InstanceID, when set, makes this process a static member (KIP-345) of
	// every consumer group it joins: after a crash and restart it takes its
	// partitions back at once instead of waiting out SessionTimeout, and a
	// clean stop does not leave the group (its partitions wait for it, up to
	// SessionTimeout). Give each process its own stable id (e.g. the pod name
	// of a StatefulSet); two live processes with one id fence each other.
	InstanceID string `yaml:"instance_id"`
	// TLS encrypts the connections to the brokers (and checks their
	// certificates against tls.ca_file, a private CA, or the system roots).
	TLS tlsclient.Config `yaml:"tls"`
	// SASL authenticates this process to the brokers (with TLS: a
	// SASL_SSL listener).
	SASL SASLConfig `yaml:"sasl"`
}

// SASLConfig is the SASL authentication of the Kafka clients (YAML:
// kafka.sasl).
type SASLConfig struct {
	// Mechanism is SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN; empty: no SASL.
	// PLAIN sends the password as is: only with TLS.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password; env AUDITLINE_KAFKA_SASL_PASSWORD keeps it out of the file.
	Password string `yaml:"password" secret:"true"`
}

// mechanism returns the franz-go SASL mechanism, or nil without SASL.
func (s SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "":
		return nil, nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case "PLAIN":
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	}
	return nil, fmt.Errorf("%q, want SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (or empty: no SASL)", s.Mechanism)
}

// Shared is what every stage's constructor gets besides its own section: the
// Kafka connection and the topic names. All stages take it, so that their
// constructors have one shape, New(cfg, shared, settings).
type Shared struct {
	Kafka  Config
	Topics raw.Topics
}

// NewDefaultConfig returns the defaults for a local broker.
func NewDefaultConfig() Config {
	return Config{
		Brokers:             []string{"127.0.0.1:9092"},
		ClientID:            "auditline",
		Partitions:          DefaultPartitions,
		CommitInterval:      DefaultCommitInterval,
		MaxOutstanding:      DefaultMaxOutstanding,
		MaxOutstandingBytes: DefaultMaxOutstandingBytes,
		MaxBufferBytes:      DefaultMaxBufferBytes,
		BatchMaxBytes:       DefaultBatchMaxBytes,
		Compression:         DefaultCompression,
		FetchMaxBytes:       DefaultFetchMaxBytes,
		MaxPollRecords:      DefaultMaxPollRecords,
		SessionTimeout:      DefaultSessionTimeout,
		HeartbeatInterval:   DefaultHeartbeatInterval,
	}
}

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Brokers) == 0 {
		add("kafka.brokers: at least one broker is required (e.g. 127.0.0.1:9092)")
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			add("kafka.brokers: %q has no port (want host:port)", b)
		}
	}
	if c.Partitions < 1 {
		add("kafka.partitions: %d, want at least 1", c.Partitions)
	}
	if c.RawRetention != 0 && (c.RawRetention < time.Hour || c.RawRetention%time.Millisecond != 0) {
		add("kafka.raw_retention: %s, want 0 (the broker's default) or at least 1h in whole milliseconds", c.RawRetention)
	}
	if c.CommitInterval <= 0 {
		add("kafka.commit_interval: %s, want > 0", c.CommitInterval)
	}
	if c.MaxOutstanding < 1 {
		add("kafka.max_outstanding: %d, want at least 1", c.MaxOutstanding)
	}
	if c.MaxOutstandingBytes < 1<<20 {
		add("kafka.max_outstanding_bytes: %d, want at least 1 MiB", c.MaxOutstandingBytes)
	}
	if c.MaxBufferBytes < 1<<20 {
		add("kafka.max_buffer_bytes: %d, want at least 1 MiB", c.MaxBufferBytes)
	}
	if c.BatchMaxBytes < 1<<10 {
		add("kafka.batch_max_bytes: %d, want at least 1 KiB", c.BatchMaxBytes)
	}
	if _, err := codec(c.Compression); err != nil {
		add("kafka.compression: %v", err)
	}
	if c.FetchMaxBytes < 1<<10 {
		add("kafka.fetch_max_bytes: %d, want at least 1 KiB", c.FetchMaxBytes)
	}
	if c.MaxPollRecords < 1 {
		add("kafka.max_poll_records: %d, want at least 1", c.MaxPollRecords)
	}
	if c.SessionTimeout < time.Second {
		add("kafka.session_timeout: %s, want at least 1s (brokers accept 6s to 30m by default)", c.SessionTimeout)
	}
	if err := c.TLS.Validate("kafka.tls."); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.SASL.mechanism(); err != nil {
		add("kafka.sasl.mechanism: %v", err)
	}
	if c.SASL.Mechanism != "" && (c.SASL.Username == "" || c.SASL.Password == "") {
		add("kafka.sasl.username, kafka.sasl.password: both are required with kafka.sasl.mechanism %s (the password may come from AUDITLINE_KAFKA_SASL_PASSWORD)", c.SASL.Mechanism)
	}
	if c.SASL.Mechanism == "" && (c.SASL.Username != "" || c.SASL.Password != "") {
		add("kafka.sasl.username/password are set but kafka.sasl.mechanism is empty: set it to SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
	}
	if c.SASL.Mechanism == "PLAIN" && !c.TLS.Enabled {
		add("kafka.sasl.mechanism PLAIN sends the password in clear: enable kafka.tls (or use SCRAM-SHA-512)")
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout {
		add("kafka.heartbeat_interval: %s, want > 0 and below kafka.session_timeout (%s; a third of it or less)", c.HeartbeatInterval, c.SessionTimeout)
	}
	return errors.Join(errs...)
}

func (c *Config) clientID() string {
	if c.ClientID == "" {
		return "auditline"
	}
	return c.ClientID
}

// or returns v, or def when v is not positive (a Config built by hand, not
// from NewDefaultConfig, still gets sane clients).
func or[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// clientOpts are the options of every client auditline makes: the
// connection, and the fetch sizes (a client that never consumes ignores
// them). Role-specific options (producer, group) are added by the caller.
func (c *Config) clientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.clientID()),
		kgo.FetchMaxBytes(int32(or(c.FetchMaxBytes, DefaultFetchMaxBytes))),
	}
}

// newClient makes a client with opts plus the connection's security (TLS,
// SASL): every client auditline makes goes through here.
func (c *Config) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	tc, err := c.TLS.Load()
	if err != nil {
		return nil, fmt.Errorf("kafka.tls: %w", err)
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	m, err := c.SASL.mechanism()
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl: %w", err)
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return kgo.NewClient(opts...)
}

// producerOpts are clientOpts plus the Writer's.
func (c *Config) producerOpts() []kgo.Opt {
	return append(c.clientOpts(),
		kgo.RequiredAcks(kgo.AllISRAcks()), // also the default; stated because we rely on it
		kgo.MaxBufferedBytes(or(c.MaxBufferBytes, DefaultMaxBufferBytes)),
		kgo.ProducerBatchMaxBytes(int32(or(c.BatchMaxBytes, DefaultBatchMaxBytes))),
		kgo.ProducerBatchCompression(c.codec(), kgo.NoCompression()),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(partitioner{kgo.StickyKeyPartitioner(nil)}),
	)
}

// codec returns the producer's compression codec (Validate has checked it).
func (c *Config) codec() kgo.CompressionCodec {
	k, err := codec(c.Compression)
	if err != nil {
		k, _ = codec(DefaultCompression)
	}
	return k
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%q, want snappy, lz4, zstd, gzip or none (default %s)", name, DefaultCompression)
}

// groupOpts are clientOpts plus a group member's.
func (c *Config) groupOpts(group string) []kgo.Opt {
	opts := append(c.clientOpts(),
		kgo.ConsumerGroup(group),
		kgo.SessionTimeout(or(c.SessionTimeout, DefaultSessionTimeout)),
		kgo.HeartbeatInterval(or(c.HeartbeatInterval, DefaultHeartbeatInterval)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	return opts
}
