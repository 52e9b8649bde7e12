package enrich

// Config is the enrich stage's YAML section ("enrich").
type Config struct {
	// Group is the Kafka consumer group.
	Group string `yaml:"group"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config { return Config{Group: "auditline-enrich"} }

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error { return nil }
