package dashboards

import (
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
)

func TestConfigValidate(t *testing.T) {
	user := []auth.UserConfig{{Name: "a", PasswordHash: "$2a$04$" + strings.Repeat("a", 53), Role: "viewer", Tenants: []string{"t"}}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string // each must appear; nil means valid
	}{
		{"defaults need users and a token", func(c *Config) {}, []string{"dashboard.auth.users: no users", "dashboard.ingest.token: empty"}},
		{"valid", func(c *Config) { c.Auth.Users, c.Ingest.Token = user, "t" }, nil},
		{"everything wrong", func(c *Config) {
			c.Auth.Users, c.Ingest.Token = user, "t"
			c.Listen, c.TLS.CertFile, c.CookieSecure = "nohost", "cert.pem", "sometimes"
			c.ClickHouse.Table, c.ClickHouse.Timeout = "x; DROP", 0
			c.Ingest.URL, c.Ingest.Timeout, c.Ingest.TokenFile = "ftp://x", 0, "/nonexistent/token"
			c.DefaultRange, c.MaxRange = 0, -1
			c.Auth.Login.HashWait = 10 * time.Minute
		}, []string{
			"dashboard.listen:", "dashboard.tls: set both", "dashboard.cookie_secure: \"sometimes\"",
			"dashboard.clickhouse.table: \"x; DROP\" is not a plain identifier", "dashboard.clickhouse.timeout: must be positive",
			"dashboard.ingest.url: \"ftp://x\"", "dashboard.ingest.token_file:", "dashboard.ingest.timeout: must be positive",
			"dashboard.default_range: must be positive", "dashboard.max_range:",
			"dashboard.auth.login.hash_wait: 10m0s, want at most 30s",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
}
