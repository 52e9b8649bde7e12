package dashboards

// Config is the dashboard's YAML section ("dashboard").
type Config struct {
	// Listen is the HTTP listener address.
	Listen string `yaml:"listen"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config { return Config{Listen: "127.0.0.1:8090"} }

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error { return nil }
