package store

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/auditline/auditline/internal/tlsclient"
	"github.com/auditline/auditline/ledger"
)

// Defaults for Config, named so that docs and tests can refer to them.
const (
	DefaultDatabase      = "auditline"
	DefaultGroup         = "auditline-store"
	DefaultBatchRows     = 10_000
	DefaultBatchBytes    = 20 << 20
	DefaultLinger        = time.Second
	DefaultRetryMin      = 200 * time.Millisecond
	DefaultRetryMax      = 30 * time.Second
	DefaultInsertTimeout = 60 * time.Second
	DefaultRawBodyMax    = 1 << 20
)

// Config is the store stage's YAML section ("store").
type Config struct {
	ClickHouse ClickHouseConfig `yaml:"clickhouse"`
	// Group is the Kafka consumer group of the decisions reader. Each raw
	// topic is read by its own group, "<group>-<topic without prefix>" (e.g.
	// auditline-store-raw.litellm), so a backlog on one never delays another.
	Group string `yaml:"group"`
	// RawEvents turns on the raw_events table: every source event from the raw
	// topics and the DLQ, with its original bytes (see RawBodyMax).
	RawEvents bool `yaml:"raw_events"`
	// RawEventsFull stores the original bytes of every source event in
	// raw_events — prompts, responses, client headers: personal data kept in
	// a second place (docs/privacy.md). Off by default: bodies follow the
	// capture policy (enrich.content.policy), so under hash raw_events keeps
	// every other member and only the SHA-256 of content.
	RawEventsFull bool `yaml:"raw_events_full"`
	// RawEventsTTL, when set, makes ClickHouse delete raw_events rows this
	// long after their received_at (a table TTL, set by `auditline migrate`;
	// ClickHouse 22.2+). 0 keeps them for good. decision_records has no TTL:
	// records are the audit trail.
	RawEventsTTL time.Duration `yaml:"raw_events_ttl"`
	// RawBodyMax is the largest original body stored inline in raw_events; a
	// larger one keeps its SHA-256, size and Kafka position (a pointer that
	// `auditline` tools and the archive resolve) and an empty body. 0 keeps
	// every body.
	RawBodyMax int `yaml:"raw_body_max"`
	// BatchRows is the most rows one INSERT carries, and the alignment of
	// batch boundaries: a batch never spans two windows of BatchRows offsets
	// ([k·n, (k+1)·n)), so a replay cuts the same batches.
	BatchRows int `yaml:"batch_rows"`
	// BatchBytes cuts a batch early once its messages reach this many bytes.
	// It also bounds what each of the store's readers holds: a partition is
	// paused once 1.25 × BatchBytes of its messages are not yet inserted
	// (or at kafka.max_outstanding_bytes, when lower), so the store holds
	// about the batch being inserted and a quarter of the next per
	// partition it reads. Every INSERT costs ClickHouse 18.16 a fixed
	// ~0.5 CPU-s whatever its size (a part of ~500 files for
	// decision_records' columns: bench/PROFILE.md, issue 17 sixth pass), so
	// the bytes go to the batch, not to reading ahead.
	BatchBytes int `yaml:"batch_bytes"`
	// Linger is how long a partial batch waits for more messages before it is
	// inserted anyway: with the INSERT's own time, what the store adds to a
	// record's webhook → queryable latency (a batch's first message waits
	// all of it). A shorter linger makes more INSERTs, each a fixed cost to
	// ClickHouse 18.16 (BatchBytes).
	Linger time.Duration `yaml:"linger"`
	// RetryMin and RetryMax bound the exponential backoff (with jitter) between
	// attempts of a failed insert. Retries never stop while the stage runs:
	// a batch is either inserted or left uncommitted for the next run.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// InsertTimeout bounds one INSERT attempt (a hung server counts as down).
	InsertTimeout time.Duration `yaml:"insert_timeout"`
	// Ledger is the live completeness ledger of the LiteLLM plugin's emitter
	// sequences (package ledger): checked every ledger.interval, reported as
	// auditline_ledger_* metrics and an ERROR line per gap older than
	// ledger.alarm_after.
	Ledger ledger.Config `yaml:"ledger"`
}

// ClickHouseConfig is how to reach ClickHouse (native protocol: the HTTP
// protocol of clickhouse-go does not work with 18.16).
type ClickHouseConfig struct {
	Addr     []string `yaml:"addr"` // host:port of the native protocol; env AUDITLINE_CLICKHOUSE
	Database string   `yaml:"database"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password" secret:"true"`
	// DialTimeout bounds connecting; 0 means 5 s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// TLS: the native protocol over TLS (the servers' tcp_port_secure,
	// 9440 by default), the server's certificate checked against
	// tls.ca_file (a private CA) or the system roots.
	TLS tlsclient.Config `yaml:"tls"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{
		ClickHouse: ClickHouseConfig{
			Addr:        []string{"127.0.0.1:9000"},
			Database:    DefaultDatabase,
			Username:    "default",
			DialTimeout: 5 * time.Second,
		},
		Group:         DefaultGroup,
		RawEvents:     true,
		RawBodyMax:    DefaultRawBodyMax,
		BatchRows:     DefaultBatchRows,
		BatchBytes:    DefaultBatchBytes,
		Linger:        DefaultLinger,
		RetryMin:      DefaultRetryMin,
		RetryMax:      DefaultRetryMax,
		InsertTimeout: DefaultInsertTimeout,
		Ledger:        ledger.NewDefaultConfig(),
	}
}

var (
	identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostPort   = regexp.MustCompile(`^[^:\s]+:[0-9]+$`)
)

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.ClickHouse.Addr) == 0 {
		add("store.clickhouse.addr: at least one host:port is required (the native protocol, e.g. 127.0.0.1:9000)")
	}
	for _, a := range c.ClickHouse.Addr {
		if !hostPort.MatchString(a) {
			add("store.clickhouse.addr: %q is not host:port", a)
		}
	}
	if !identifier.MatchString(c.ClickHouse.Database) {
		add("store.clickhouse.database: %q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", c.ClickHouse.Database)
	}
	if err := c.ClickHouse.TLS.Validate("store.clickhouse.tls."); err != nil {
		errs = append(errs, err)
	}
	if c.ClickHouse.DialTimeout < 0 {
		add("store.clickhouse.dial_timeout: %s, want >= 0", c.ClickHouse.DialTimeout)
	}
	if c.Group == "" {
		add("store.group: must not be empty (default %q)", DefaultGroup)
	}
	if c.RawEventsTTL < 0 || c.RawEventsTTL%time.Second != 0 {
		add("store.raw_events_ttl: %s, want whole seconds >= 0 (0 keeps raw events for good)", c.RawEventsTTL)
	}
	if c.RawBodyMax < 0 {
		add("store.raw_body_max: %d, want >= 0 (0 keeps every body)", c.RawBodyMax)
	}
	// 1,048,576 is ClickHouse's max_insert_block_size: a larger INSERT is
	// split into several blocks and stops being atomic.
	if c.BatchRows < 1 || c.BatchRows > 1<<20 {
		add("store.batch_rows: %d, want 1 to 1048576 (one INSERT block)", c.BatchRows)
	}
	if c.BatchBytes < 1<<10 {
		add("store.batch_bytes: %d, want at least 1024", c.BatchBytes)
	}
	if c.Linger <= 0 {
		add("store.linger: %s, want > 0", c.Linger)
	}
	if c.RetryMin <= 0 {
		add("store.retry_min: %s, want > 0", c.RetryMin)
	}
	if c.RetryMax < c.RetryMin {
		add("store.retry_max: %s, want >= store.retry_min (%s)", c.RetryMax, c.RetryMin)
	}
	if c.InsertTimeout <= 0 {
		add("store.insert_timeout: %s, want > 0", c.InsertTimeout)
	}
	if err := c.Ledger.Validate("store.ledger."); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
