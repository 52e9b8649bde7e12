package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/auditline/auditline/ingest/auth"
)

// Defaults for Config.
const (
	DefaultListen           = "127.0.0.1:8080"
	DefaultMaxBodyBytes     = 32 << 20  // 512 LiteLLM payloads of ~5 KB are ~2.5 MB; room for large prompts
	DefaultMaxEvents        = 10_000    // LiteLLM sends at most DEFAULT_BATCH_SIZE (512) per body
	DefaultMaxEventBytes    = 1_000_000 // below Kafka's default message.max.bytes (1 MiB)
	DefaultMaxInflightBytes = 256 << 20
	DefaultProduceTimeout   = 5 * time.Second
	DefaultRetryAfter       = time.Second
	DefaultReadTimeout      = time.Minute
	DefaultShutdownTimeout  = 30 * time.Second
	// DefaultWatermarkInterval: enrich's stream time trails the wall clock
	// by about this much plus the produce time (docs/ingest.md "Watermarks").
	DefaultWatermarkInterval = 250 * time.Millisecond
	// Bounds of watermark_interval (when not 0).
	minWatermarkInterval = 50 * time.Millisecond
	maxWatermarkInterval = 5 * time.Second
)

// Config is the ingest stage's YAML section ("ingest").
type Config struct {
	// Listen is the webhook listener address (host:port). It also serves
	// /metrics, /healthz and /readyz.
	Listen string `yaml:"listen"`
	// TLS serves HTTPS when both files are set.
	TLS TLSConfig `yaml:"tls"`
	// Auth: tokens, scopes and the optional body signature.
	Auth auth.Config `yaml:"auth"`
	// MaxBodyBytes is the largest body accepted (413 beyond).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxEvents is the largest number of events in one body (413 beyond).
	MaxEvents int `yaml:"max_events"`
	// MaxEventBytes is the largest single event (413 beyond, naming the
	// element). Keep it below the brokers' message.max.bytes. Bodies sent to
	// the DLQ are cut into parts of this size.
	MaxEventBytes int `yaml:"max_event_bytes"`
	// MaxInflightBytes bounds the bytes of all bodies being read or produced
	// at once. A request that would pass it gets 503 + Retry-After at once,
	// before its body is read: memory stays bounded when Kafka is slow.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// ProduceTimeout bounds the wait for Kafka's acknowledgement. Past it the
	// sender gets 503 + Retry-After (LiteLLM drops a batch whose POST times
	// out, so answering fast beats waiting).
	ProduceTimeout time.Duration `yaml:"produce_timeout"`
	// RetryAfter is the Retry-After sent with every 503.
	RetryAfter time.Duration `yaml:"retry_after"`
	// ReadTimeout bounds reading one request, body included.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// ShutdownTimeout bounds the graceful shutdown: finishing in-flight
	// requests and waiting for their acknowledgements.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// CreateTopics creates missing topics at start (as 'auditline migrate'
	// does); existing topics are never changed.
	CreateTopics bool `yaml:"create_topics"`
	// WatermarkInterval is how often this process writes a watermark to
	// every partition of raw.litellm and raw.gateway: "every event I
	// received before W is acknowledged" (raw.Watermark). enrich's stream
	// time follows the watermarks, so a success is emitted success_delay
	// after it was received instead of waiting for a quiet topic to count
	// as idle. 0 writes none (enrich then falls back to enrich.idle_after);
	// otherwise 50ms to 5s.
	WatermarkInterval time.Duration `yaml:"watermark_interval"`
}

// TLSConfig names the certificate and key files (PEM).
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// NewDefaultConfig returns the defaults. Auth has no tokens: they must be
// configured (Validate says so).
func NewDefaultConfig() Config {
	return Config{
		Listen:           DefaultListen,
		MaxBodyBytes:     DefaultMaxBodyBytes,
		MaxEvents:        DefaultMaxEvents,
		MaxEventBytes:    DefaultMaxEventBytes,
		MaxInflightBytes: DefaultMaxInflightBytes,
		ProduceTimeout:   DefaultProduceTimeout,
		RetryAfter:       DefaultRetryAfter,
		ReadTimeout:      DefaultReadTimeout,
		ShutdownTimeout:  DefaultShutdownTimeout,
		CreateTopics:     true,

		WatermarkInterval: DefaultWatermarkInterval,
	}
}

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ingest."+format, args...)) }
	if c.Listen == "" {
		add("listen: empty (want host:port, e.g. %s)", DefaultListen)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls: set both cert_file and key_file, or neither")
	}
	if err := c.Auth.Validate("ingest.auth"); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes < 1024 {
		add("max_body_bytes: %d, want at least 1024", c.MaxBodyBytes)
	}
	if c.MaxEvents < 1 {
		add("max_events: %d, want at least 1", c.MaxEvents)
	}
	if c.MaxEventBytes < 1024 {
		add("max_event_bytes: %d, want at least 1024", c.MaxEventBytes)
	}
	if c.MaxInflightBytes < c.MaxBodyBytes {
		add("max_inflight_bytes: %d is below max_body_bytes (%d): the largest body could never be accepted", c.MaxInflightBytes, c.MaxBodyBytes)
	}
	if c.ProduceTimeout <= 0 {
		add("produce_timeout: %s, want > 0", c.ProduceTimeout)
	}
	if c.RetryAfter < time.Second {
		add("retry_after: %s, want at least 1s (Retry-After counts whole seconds)", c.RetryAfter)
	}
	if c.ReadTimeout <= 0 {
		add("read_timeout: %s, want > 0", c.ReadTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		add("shutdown_timeout: %s, want > 0", c.ShutdownTimeout)
	}
	if w := c.WatermarkInterval; w != 0 && (w < minWatermarkInterval || w > maxWatermarkInterval) {
		add("watermark_interval: %s, want 0 (no watermarks) or %s to %s", w, minWatermarkInterval, maxWatermarkInterval)
	}
	return errors.Join(errs...)
}
