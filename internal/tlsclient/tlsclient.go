// Package tlsclient is the client side of TLS for every server auditline
// connects to (Kafka, ClickHouse, S3): one YAML shape, one loader, so each
// connection is configured and checked the same way.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config is a client's TLS section (YAML: <server>.tls).
type Config struct {
	// Enabled turns TLS on. The other keys require it.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of the roots the server's certificate must chain
	// to (a private CA); empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key (PEM), for
	// servers that require one (mutual TLS); both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate must carry; empty: the
	// host of the address dialled.
	ServerName string `yaml:"server_name"`
}

// Validate reports every problem, each prefixed with prefix (the YAML path,
// e.g. "kafka.tls.").
func (c Config) Validate(prefix string) error {
	var errs []error
	if !c.Enabled {
		if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" {
			errs = append(errs, fmt.Errorf("%senabled: false, but %sca_file/cert_file/key_file/server_name are set: set %senabled: true", prefix, prefix, prefix))
		}
		return errors.Join(errs...)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%scert_file, %skey_file: give both or neither", prefix, prefix))
	}
	if _, err := c.Load(); err != nil {
		errs = append(errs, fmt.Errorf("%s%w", prefix, err))
	}
	return errors.Join(errs...)
}

// Load returns the tls.Config (TLS 1.2 or later), or nil when TLS is off.
func (c Config) Load() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
