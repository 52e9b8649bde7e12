package tlsclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a self-signed CA and a server certificate for 127.0.0.1
// signed by it; it returns the CA's PEM path and the server's key pair.
func writeCA(t *testing.T, dir string) (string, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	caFile, srvCert := writeCA(t, dir)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvCert}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(c Config) error {
		tc, err := c.Load()
		if err != nil {
			return err
		}
		conn, err := tls.Dial("tcp", l.Addr().String(), tc)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(Config{Enabled: true, CAFile: caFile}); err != nil {
		t.Errorf("private CA: %v", err)
	}
	if err := dial(Config{Enabled: true}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("system roots accepted a private CA's certificate: %v", err)
	}
	if err := dial(Config{Enabled: true, CAFile: caFile, ServerName: "other.example"}); err == nil {
		t.Errorf("a certificate for another name was accepted")
	}
	if tc, err := (Config{}).Load(); tc != nil || err != nil {
		t.Errorf("disabled: %v %v", tc, err)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	caFile, _ := writeCA(t, dir)
	notPEM := filepath.Join(dir, "x.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o644)
	for _, tc := range []struct {
		c    Config
		want string // "" = valid
	}{
		{Config{}, ""},
		{Config{Enabled: true}, ""},
		{Config{Enabled: true, CAFile: caFile}, ""},
		{Config{CAFile: caFile}, "kafka.tls.enabled: false, but"},
		{Config{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}, "kafka.tls.ca_file: open"},
		{Config{Enabled: true, CAFile: notPEM}, "holds no PEM certificate"},
		{Config{Enabled: true, CertFile: caFile}, "kafka.tls.cert_file, kafka.tls.key_file: give both or neither"},
	} {
		err := tc.c.Validate("kafka.tls.")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}
