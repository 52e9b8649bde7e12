package topic

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults for Config.
const (
	DefaultCommitInterval = time.Second
	DefaultMaxOutstanding = 50_000
	DefaultMaxBufferBytes = 64 << 20
	DefaultPartitions     = 4
)

// Config is the Kafka connection shared by every stage.
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
	// CommitInterval is how often the Reader commits watermarks.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// MaxOutstanding is, per partition, how many messages may be handed to a
	// Handler without being Done before the partition is paused.
	MaxOutstanding int `yaml:"max_outstanding"`
	// MaxBufferBytes bounds what the Writer buffers; Produce blocks beyond it
	// until its context ends.
	MaxBufferBytes int `yaml:"max_buffer_bytes"`
}

// NewDefaultConfig returns the defaults for a local broker.
func NewDefaultConfig() Config {
	return Config{
		Brokers:        []string{"127.0.0.1:9092"},
		ClientID:       "auditline",
		Partitions:     DefaultPartitions,
		CommitInterval: DefaultCommitInterval,
		MaxOutstanding: DefaultMaxOutstanding,
		MaxBufferBytes: DefaultMaxBufferBytes,
	}
}

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: at least one broker is required (e.g. 127.0.0.1:9092)"))
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("kafka.brokers: %q has no port (want host:port)", b))
		}
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("kafka.partitions: %d, want at least 1", c.Partitions))
	}
	if c.CommitInterval <= 0 {
		errs = append(errs, fmt.Errorf("kafka.commit_interval: %s, want > 0", c.CommitInterval))
	}
	if c.MaxOutstanding < 1 {
		errs = append(errs, fmt.Errorf("kafka.max_outstanding: %d, want at least 1", c.MaxOutstanding))
	}
	if c.MaxBufferBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("kafka.max_buffer_bytes: %d, want at least 1 MiB", c.MaxBufferBytes))
	}
	return errors.Join(errs...)
}

func (c *Config) clientID() string {
	if c.ClientID == "" {
		return "auditline"
	}
	return c.ClientID
}
