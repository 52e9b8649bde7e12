package ingest

// Config is the ingest stage's YAML section ("ingest").
type Config struct {
	// Listen is the webhook listener address.
	Listen string `yaml:"listen"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config { return Config{Listen: "127.0.0.1:8080"} }

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error { return nil }
