package dashboards

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
)

// Config is the dashboard's YAML section ("dashboard").
type Config struct {
	// Listen is the HTTP(S) listener address.
	Listen string `yaml:"listen"`
	// TLS serves HTTPS when both files are set.
	TLS TLSConfig `yaml:"tls"`
	// CookieSecure marks the session cookie Secure: "auto" (when served over
	// TLS, directly or — from a trusted SSO proxy — per X-Forwarded-Proto),
	// "always" (behind any TLS-terminating proxy) or "never" (plain-HTTP
	// development only).
	CookieSecure string `yaml:"cookie_secure"`
	// Auth is who may log in, with which role and tenants.
	Auth auth.Config `yaml:"auth"`
	// ClickHouse is where the decision records are read. Empty addr and
	// database inherit store.clickhouse. Use a read-only ClickHouse user: the
	// dashboard never writes.
	ClickHouse query.Config `yaml:"clickhouse"`
	// Ingest is where review outcomes and burst switches are posted.
	Ingest oversight.Config `yaml:"ingest"`
	// DefaultRange is the time range a page shows without from/to/range.
	DefaultRange time.Duration `yaml:"default_range"`
	// MaxRange bounds from..to, so one request cannot scan years.
	MaxRange time.Duration `yaml:"max_range"`
	// ArchiveBucket, when set, is shown on a record's page as where it is
	// sealed: bucket[/prefix] (empty: archive.s3.bucket and archive.prefix).
	ArchiveBucket string `yaml:"archive_bucket"`
}

// TLSConfig names the certificate and key files (PEM).
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Defaults.
const (
	DefaultListen       = "127.0.0.1:8090"
	DefaultRange        = 24 * time.Hour
	DefaultMaxRange     = 400 * 24 * time.Hour
	DefaultIngestURL    = "http://127.0.0.1:8080/v1/oversight"
	DefaultPostTimeout  = 10 * time.Second
	DefaultCookieSecure = "auto"
)

// NewDefaultConfig returns the defaults. It has no users: Validate fails until
// auth.users or auth.sso is configured.
func NewDefaultConfig() Config {
	return Config{
		Listen:       DefaultListen,
		CookieSecure: DefaultCookieSecure,
		Auth:         auth.NewDefaultConfig(),
		ClickHouse:   query.Config{Table: query.DefaultTable, Timeout: query.DefaultTimeout},
		Ingest:       oversight.Config{URL: DefaultIngestURL, Timeout: DefaultPostTimeout},
		DefaultRange: DefaultRange,
		MaxRange:     DefaultMaxRange,
	}
}

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("dashboard."+format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q: %v", c.Listen, err)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls: set both cert_file and key_file, or neither")
	}
	switch c.CookieSecure {
	case "auto", "always", "never":
	default:
		add("cookie_secure: %q, want auto, always or never", c.CookieSecure)
	}
	if err := c.Auth.Validate("dashboard.auth"); err != nil {
		errs = append(errs, err)
	}
	ch := c.ClickHouse
	if len(ch.Addr) == 0 {
		ch.Addr = []string{"inherited:0"} // inherits store.clickhouse.addr
	}
	if ch.Database == "" {
		ch.Database = "inherited"
	}
	if err := ch.Validate("dashboard.clickhouse"); err != nil {
		errs = append(errs, err)
	}
	if u, err := url.Parse(c.Ingest.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("ingest.url: %q is not an http(s) URL", c.Ingest.URL)
	}
	if c.Ingest.Token == "" && c.Ingest.TokenFile == "" {
		add("ingest.token: empty: set it (or AUDITLINE_DASHBOARD_INGEST_TOKEN, or ingest.token_file) to a token ingest accepts for oversight")
	}
	if c.Ingest.TokenFile != "" {
		if _, err := os.Stat(c.Ingest.TokenFile); err != nil {
			add("ingest.token_file: %v", err)
		}
	}
	if c.Ingest.Timeout <= 0 {
		add("ingest.timeout: must be positive")
	}
	if c.DefaultRange <= 0 {
		add("default_range: must be positive")
	}
	if c.MaxRange < c.DefaultRange {
		add("max_range: must be at least default_range")
	}
	if c.Auth.Login.HashWait > maxHashWait {
		// A login waiting longer would outlive the server's write timeout:
		// the browser would get a broken connection instead of 503.
		add("auth.login.hash_wait: %s, want at most %s (the dashboard answers within its %s write timeout)", c.Auth.Login.HashWait, maxHashWait, writeTimeout)
	}
	return errors.Join(errs...)
}
