package tsa_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/tsa"
)

func roots(t *testing.T, path string) *x509.CertPool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// TestOpenSSLTSA stamps data with a local `openssl ts` TSA, checks the token
// with our verifier and with `openssl ts -verify`, and checks that a token
// does not verify for other data.
func TestOpenSSLTSA(t *testing.T) {
	srv := archivetest.NewTSA(t)
	data := []byte("checkpoint bytes\n")
	c := &tsa.Client{URL: srv.URL}
	tok, err := c.Stamp(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tsa.Verify(tok, data, roots(t, srv.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Chained || time.Since(got.Time) > time.Minute || !strings.Contains(got.Signer, "auditline test TSA") {
		t.Fatalf("token = %+v", got)
	}
	if out, err := srv.OpenSSLVerify(t, tok, data); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	if _, err := tsa.Verify(tok, []byte("other data"), nil); err == nil {
		t.Fatal("a token verified for other data")
	}
	if out, err := srv.OpenSSLVerify(t, tok, []byte("other data")); err == nil {
		t.Fatalf("openssl verified a token for other data:\n%s", out)
	}
	// A root that did not issue the TSA certificate is refused.
	other := archivetest.NewTSA(t)
	if _, err := tsa.Verify(tok, data, roots(t, other.CAFile)); err == nil {
		t.Fatal("token chained to an unrelated root")
	}
	// Garbage is an error, not a panic.
	for _, bad := range [][]byte{nil, {0x30}, tok[:len(tok)/2]} {
		if _, err := tsa.Verify(bad, data, nil); err == nil {
			t.Fatalf("Verify accepted %d garbage bytes", len(bad))
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, tsr []byte) {
		tsa.Verify(tsr, []byte("x"), nil) // must not panic
	})
}
