package topic

import (
	"strings"
	"testing"

	"github.com/auditline/auditline/internal/tlsclient"
)

// TestSecurityValidate: the TLS and SASL keys are checked with the rest of
// kafka.*, each problem naming its key.
func TestSecurityValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string // "" = valid
	}{
		{"none", func(c *Config) {}, ""},
		{"scram over tls", func(c *Config) {
			c.TLS = tlsclient.Config{Enabled: true}
			c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}
		}, ""},
		{"scram-256 without tls", func(c *Config) { c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "u", Password: "p"} }, ""},
		{"unknown mechanism", func(c *Config) { c.SASL = SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"} },
			`kafka.sasl.mechanism: "GSSAPI", want SCRAM-SHA-512`},
		{"no password", func(c *Config) { c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u"} },
			"kafka.sasl.username, kafka.sasl.password: both are required"},
		{"credentials without mechanism", func(c *Config) { c.SASL = SASLConfig{Username: "u", Password: "p"} },
			"kafka.sasl.mechanism is empty"},
		{"plain in clear", func(c *Config) { c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"} },
			"PLAIN sends the password in clear"},
		{"ca without tls", func(c *Config) { c.TLS = tlsclient.Config{CAFile: "/x.pem"} }, "kafka.tls.enabled: false"},
		{"missing ca", func(c *Config) { c.TLS = tlsclient.Config{Enabled: true, CAFile: "/nonexistent/ca.pem"} }, "kafka.tls.ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	// A wrong password never appears in an error (it is a secret).
	c := NewDefaultConfig()
	c.SASL = SASLConfig{Mechanism: "NOPE", Username: "u", Password: "hunter2-secret"}
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("Validate = %v", err)
	}
}
