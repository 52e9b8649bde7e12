package query_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/internal/tlsclient"
)

// testCA writes a CA certificate (dir/name-ca.pem) and, when server is set, a
// server certificate for 127.0.0.1 signed by it with its key
// (dir/name-server.pem, dir/name-server.key). It returns the CA's path.
func testCA(t *testing.T, dir, name string, server bool) string {
	t.Helper()
	write := func(file, typ string, der []byte) string {
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPath := write(name+"-ca.pem", "CERTIFICATE", caDER)
	if !server {
		return caPath
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, srv, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write(name+"-server.pem", "CERTIFICATE", der)
	write(name+"-server.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	return caPath
}

// TestDashboardTLS: the dashboards' ClickHouse connection
// (dashboard.clickhouse.tls, the shape of store.clickhouse.tls) reads over
// the native protocol with TLS from a ClickHouse 18.16 whose certificate a
// private CA signed, and refuses the server when its certificate does not
// chain to the configured CA (another CA, or the system roots), as well as
// a plaintext connection to the TLS port.
func TestDashboardTLS(t *testing.T) {
	p := testenv.StartPrivate(t, "clickhouse")
	dir := t.TempDir()
	ca := testCA(t, dir, "private", true)
	other := testCA(t, dir, "other", false)
	securePort := testenv.FreePort(t)
	p.ClickHouseConfigD(t, "tls", fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <tcp_port_secure>%d</tcp_port_secure>
  <openSSL><server>
    <certificateFile>%s</certificateFile>
    <privateKeyFile>%s</privateKeyFile>
    <verificationMode>none</verificationMode>
    <loadDefaultCAFile>false</loadDefaultCAFile>
    <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
  </server></openSSL>
</yandex>
`, securePort, filepath.Join(dir, "private-server.pem"), filepath.Join(dir, "private-server.key")))
	secure := fmt.Sprintf("127.0.0.1:%d", securePort)

	db := testenv.Name(t)
	seedtest.Schema(t, p.Addr, db)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		tls  tlsclient.Config
		ok   bool
	}{
		{"TLS, certificate checked against the private CA", tlsclient.Config{Enabled: true, CAFile: ca}, true},
		{"TLS, server name given", tlsclient.Config{Enabled: true, CAFile: ca, ServerName: "localhost"}, true},
		{"TLS, another CA (untrusted server certificate)", tlsclient.Config{Enabled: true, CAFile: other}, false},
		{"TLS, system roots (the private CA is not trusted)", tlsclient.Config{Enabled: true}, false},
		{"TLS, wrong server name", tlsclient.Config{Enabled: true, CAFile: ca, ServerName: "clickhouse.example"}, false},
		{"plaintext to the TLS port", tlsclient.Config{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := query.Config{Addr: []string{secure}, Database: db, Username: "dashboard_ro", Table: query.DefaultTable, Timeout: 10 * time.Second, TLS: tc.tls}
			if err := cfg.Validate("dashboard.clickhouse"); err != nil {
				t.Fatal(err)
			}
			c, err := query.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			err = c.Ping(pctx)
			if (err == nil) != tc.ok {
				t.Fatalf("ping: %v, want ok %v", err, tc.ok)
			}
			t.Logf("ping: %v", err)
		})
	}
	// A CA file that is not there is a configuration error, reported with
	// its key, not a connection failure.
	bad := query.Config{Addr: []string{secure}, Database: db, Table: query.DefaultTable, Timeout: time.Second,
		TLS: tlsclient.Config{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}}
	if err := bad.Validate("dashboard.clickhouse"); err == nil {
		t.Error("a missing tls.ca_file validates")
	} else {
		t.Logf("missing CA: %v", err)
	}
}
