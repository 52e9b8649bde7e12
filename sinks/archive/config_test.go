package archive

import (
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/privacy/retention"
)

func validConfig() Config {
	c := NewDefaultConfig()
	c.S3.AccessKey, c.S3.SecretKey = "a", "b"
	c.SigningKeyFile = "/keys/archive.key"
	return c
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string // substring of the error; "" means valid
	}{
		{"defaults plus credentials and key", func(*Config) {}, ""},
		{"no signing key", func(c *Config) { c.SigningKeyFile = "" }, "archive.signing_key_file: required"},
		{"no credentials", func(c *Config) { c.S3.SecretKey = "" }, "archive.s3.access_key, archive.s3.secret_key"},
		{"endpoint without port", func(c *Config) { c.S3.Endpoint = "minio" }, "archive.s3.endpoint"},
		{"no bucket", func(c *Config) { c.S3.Bucket = ""; c.Origin = "x" }, "archive.s3.bucket"},
		{"bad mode", func(c *Config) { c.Retention.Mode = "compliance" }, "archive.retention.mode"},
		{"no retention", func(c *Config) { c.Retention.Period = retention.Period{} }, "archive.retention.period"},
		{"zero records", func(c *Config) { c.Batch.MaxRecords = 0 }, "archive.batch.max_records"},
		{"tiny bytes", func(c *Config) { c.Batch.MaxBytes = 10 }, "archive.batch.max_bytes"},
		{"tiny age", func(c *Config) { c.Batch.MaxAge = time.Millisecond }, "archive.batch.max_age"},
		{"small row groups", func(c *Config) { c.Batch.RowGroupBytes = 1 }, "archive.batch.row_group_bytes"},
		{"zstd level", func(c *Config) { c.Batch.CompressionLevel = 40 }, "archive.batch.compression_level"},
		{"origin with space", func(c *Config) { c.Origin = "my archive" }, "archive.origin"},
		{"tsa not a url", func(c *Config) { c.Checkpoint.TSAURL = "tsa.example" }, "archive.checkpoint.tsa_url"},
		{"prefix with slash", func(c *Config) { c.Prefix = "/x" }, "archive.prefix"},
	} {
		c := validConfig()
		tc.mut(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	// Every problem at once.
	var c Config
	err := c.Validate()
	if err == nil || strings.Count(err.Error(), "\n") < 8 {
		t.Fatalf("an empty config reported too little: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	c := NewDefaultConfig()
	if c.Retention.Mode != "COMPLIANCE" || c.Retention.Period != retention.Years(7) {
		t.Fatalf("retention defaults %+v, want COMPLIANCE for 7 years", c.Retention)
	}
	if got := c.OriginName(); got != "auditline/auditline-archive/auditline" {
		t.Fatalf("origin %q", got)
	}
}
