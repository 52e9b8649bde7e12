package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/enrich"
	"github.com/auditline/auditline/ingest"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/privacy/capture"
	"github.com/auditline/auditline/privacy/pseudonym"
	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/store"
)

// Config is the whole YAML file. Each stage owns its section, its defaults and
// its Validate; this type only composes them.
type Config struct {
	Kafka topic.Config `yaml:"kafka"`
	// TopicPrefix names the topics: <prefix>raw.litellm, <prefix>decisions, …
	TopicPrefix string            `yaml:"topic_prefix"`
	Log         LogConfig         `yaml:"log"`
	Ops         OpsConfig         `yaml:"ops"`
	Memory      MemoryConfig      `yaml:"memory"`
	Ingest      ingest.Config     `yaml:"ingest"`
	Enrich      enrich.Config     `yaml:"enrich"`
	Store       store.Config      `yaml:"store"`
	Archive     archive.Config    `yaml:"archive"`
	Dashboard   dashboards.Config `yaml:"dashboard"`
}

// LogConfig selects the structured log output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// OpsConfig is the operations listener: /metrics, /healthz, /readyz.
type OpsConfig struct {
	// Listen address; empty disables it (ingest and dashboard also serve these
	// paths on their own listeners).
	Listen string `yaml:"listen"`
}

// MemoryConfig is the memory budget of a process.
type MemoryConfig struct {
	// StageLimit is the soft limit of the Go runtime's memory
	// (runtime/debug.SetMemoryLimit) for each stage but enrich, in bytes; 0
	// sets none. A process that runs several stages ('auditline all') gets
	// the sum of theirs; a GOMEMLIMIT in the environment takes precedence.
	// The sinks' own bounds (store.batch_bytes, archive.batch.max_bytes:
	// their readers hold at most two batches) keep the live heap well below
	// it; the limit makes the collector return garbage before the heap
	// doubles, instead of letting RSS reach twice the live heap.
	StageLimit int64 `yaml:"stage_limit"`
	// EnrichLimit is enrich's soft limit; 0 (the default) sets none, and
	// then a process running enrich has no limit at all. Enrich's working
	// set is sized by rate × waits (pending requests up to
	// kafka.max_outstanding_bytes per partition, the amendment cache up to
	// enrich.cache_bytes), not by a batch: a limit below it makes the
	// collector run without pause, and a slowed join lets stream time move
	// by the wall-clock rule for idle topics (docs/enrich.md). Set it only
	// above those bounds.
	EnrichLimit int64 `yaml:"enrich_limit"`
}

// DefaultStageLimit is memory.stage_limit's default: with the default bounds
// the archive's peak RSS stays under 256 MB at the benchmark's load, catch-up
// included, and the store's near it (254–266 MB; bench/PROFILE.md, fifth
// pass (memory), and BENCHMARKS.md).
const DefaultStageLimit = 200 << 20

// MemoryLimit returns the soft memory limit for a process that runs the named
// stages (every stage when none is named): the sum of their limits, or 0 for
// none when any of them has none.
func (c *Config) MemoryLimit(stages ...string) int64 {
	if len(stages) == 0 {
		stages = StageNames()
	}
	var sum int64
	for _, name := range stages {
		l := c.Memory.StageLimit
		if name == "enrich" {
			l = c.Memory.EnrichLimit
		}
		if l <= 0 {
			return 0
		}
		sum += l
	}
	return sum
}

// NewDefaultConfig returns every section's defaults. Consumer groups are
// those of the default topic prefix (auditline-enrich, …).
func NewDefaultConfig() Config {
	c := Config{
		Kafka:       topic.NewDefaultConfig(),
		TopicPrefix: raw.DefaultTopics.Prefix,
		Log:         LogConfig{Level: "info", Format: "text"},
		Ops:         OpsConfig{Listen: "127.0.0.1:9464"},
		Memory:      MemoryConfig{StageLimit: DefaultStageLimit},
		Ingest:      ingest.NewDefaultConfig(),
		Enrich:      enrich.NewDefaultConfig(),
		Store:       store.NewDefaultConfig(),
		Archive:     archive.NewDefaultConfig(),
		Dashboard:   dashboards.NewDefaultConfig(),
	}
	c.Enrich.Group, c.Store.Group, c.Archive.Group = "", "", ""
	c.DefaultGroups()
	return c
}

// Load reads the defaults, then the file at path (if path is set; unknown keys
// are errors), then the overrides in environ (os.Environ() in the binary; see
// ApplyEnv), and names the consumer groups left empty after the topic prefix.
// It does not validate: call Validate.
func Load(path string, environ []string) (*Config, error) {
	cfg := NewDefaultConfig()
	// Consumer groups left unset are named after the topic prefix (see
	// DefaultGroups), so two pipelines with different prefixes on one
	// cluster never share a group.
	cfg.Enrich.Group, cfg.Store.Group, cfg.Archive.Group = "", "", ""
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := ApplyEnv(&cfg, environ); err != nil {
		return nil, err
	}
	cfg.DefaultGroups()
	return &cfg, nil
}

// YAML returns c as a config file that Load reads back to c (secrets
// included: write it with mode 0600).
func (c *Config) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFile writes c to path as YAML with mode 0600.
func (c *Config) WriteFile(path string) error {
	b, err := c.YAML()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Capture is the pipeline's one capture policy (enrich.content.policy): the
// records follow it, and so do every copy of a source event outside the raw
// topics (ClickHouse raw_events unless store.raw_events_full, the DLQ) and
// the error texts in them (privacy/capture).
func (c *Config) Capture() capture.Policy { return capture.Policy(c.Enrich.Content.Policy) }

// Pseudonyms is the pipeline's pseudonymisation (enrich.content.pseudonymise),
// nil when off: the records' identity fields, and the identity members of
// every copy of a source event the capture policy governs (raw_events, the
// DLQ), are pseudonymised alike.
func (c *Config) Pseudonyms() *pseudonym.Pseudonymiser {
	return pseudonym.New(c.Enrich.Content.Pseudonymise)
}

// Topics returns the topic names of c.TopicPrefix.
func (c *Config) Topics() raw.Topics { return raw.Topics{Prefix: c.TopicPrefix} }

// Shared is what every stage constructor gets besides its own section.
func (c *Config) Shared() topic.Shared { return topic.Shared{Kafka: c.Kafka, Topics: c.Topics()} }

// DefaultGroups names every consumer group the configuration leaves empty
// after the topic prefix: prefix "auditline." gives auditline-enrich,
// auditline-store and auditline-archive; "eu.prod." gives eu.prod-enrich, ….
// A group shared by two pipelines that read different topics would leave
// one pipeline's partitions unread.
func (c *Config) DefaultGroups() {
	base := strings.TrimSuffix(c.TopicPrefix, ".")
	if base == "" {
		base = "auditline"
	}
	for _, g := range []struct {
		v    *string
		name string
	}{{&c.Enrich.Group, "enrich"}, {&c.Store.Group, "store"}, {&c.Archive.Group, "archive"}} {
		if *g.v == "" {
			*g.v = base + "-" + g.name
		}
	}
}

// Validate checks the shared sections and those of the named stages (every
// stage when none is named), and reports every problem at once, each
// prefixed with its YAML key path.
func (c *Config) Validate(stages ...string) error {
	var errs []error
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.TopicPrefix == "" {
		errs = append(errs, errors.New("topic_prefix: must not be empty (default \"auditline.\")"))
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		errs = append(errs, err)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		errs = append(errs, fmt.Errorf("log.format: %q, want json or text", c.Log.Format))
	}
	for _, m := range []struct {
		key string
		l   int64
	}{{"memory.stage_limit", c.Memory.StageLimit}, {"memory.enrich_limit", c.Memory.EnrichLimit}} {
		if m.l != 0 && m.l < 64<<20 {
			errs = append(errs, fmt.Errorf("%s: %d, want 0 (no limit) or at least 67108864 (64 MiB)", m.key, m.l))
		}
	}
	if len(stages) == 0 {
		stages = StageNames()
	}
	for _, name := range stages {
		st, ok := lookup(name)
		if !ok {
			errs = append(errs, fmt.Errorf("unknown stage %q (want one of %s)", name, strings.Join(StageNames(), ", ")))
			continue
		}
		if err := st.validate(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Logger returns the logger c.Log asks for, writing to w.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log.level: %q, want debug, info, warn or error", s)
	}
	return l, nil
}

// DashboardClickHouse is dashboard.clickhouse with the empty fields inherited
// from store.clickhouse (the address, and with it the TLS settings unless the
// dashboard has its own; the database, and with it the user when the
// dashboard names none).
func (c *Config) DashboardClickHouse() query.Config {
	q := c.Dashboard.ClickHouse
	if len(q.Addr) == 0 {
		q.Addr = c.Store.ClickHouse.Addr
		if !q.TLS.Enabled {
			q.TLS = c.Store.ClickHouse.TLS
		}
	}
	if q.Database == "" {
		q.Database = c.Store.ClickHouse.Database
		if q.Username == "" {
			q.Username, q.Password = c.Store.ClickHouse.Username, c.Store.ClickHouse.Password
		}
	}
	return q
}
