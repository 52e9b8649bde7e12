package archivetest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TSA is a local RFC 3161 time-stamping authority: a throwaway root and TSA
// certificate made with openssl, and an HTTP server whose every reply comes
// from `openssl ts -reply`.
type TSA struct {
	URL    string // POST application/timestamp-query here
	CAFile string // the root certificate (PEM), for -CAfile and tsa.Verify
	Cert   string // the TSA's own certificate (PEM)
	dir    string
}

// NewTSA starts a TSA for the test, or skips the test when openssl is missing
// (fails under AUDITLINE_REQUIRE_SERVERS=1).
func NewTSA(t testing.TB) *TSA {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("AUDITLINE_REQUIRE_SERVERS") == "1" {
			t.Fatal("openssl is required for the RFC 3161 tests")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tsa-ext.cnf", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=critical,timeStamping\n")
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
		"-subj", "/CN=auditline test TSA root", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=auditline test TSA")
	run("x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tsa.crt", "-days", "2", "-extfile", "tsa-ext.cnf")
	write("serial", "01\n")
	write("tsa.cnf", `[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = `+dir+`
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
other_policies = 1.3.6.1.4.1.99999.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`)
	var mu sync.Mutex // openssl ts keeps its serial in one file
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/timestamp-query" {
			http.Error(w, "want POST application/timestamp-query", http.StatusBadRequest)
			return
		}
		q, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if err := os.WriteFile(filepath.Join(dir, "req.tsq"), q, 0o600); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cmd := exec.Command("openssl", "ts", "-reply", "-config", "tsa.cnf", "-queryfile", "req.tsq", "-out", "resp.tsr")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			http.Error(w, string(out), http.StatusInternalServerError)
			return
		}
		resp, err := os.ReadFile(filepath.Join(dir, "resp.tsr"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return &TSA{URL: srv.URL, CAFile: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "tsa.crt"), dir: dir}
}

// OpenSSLVerify runs `openssl ts -verify` on a token over data and returns its
// output and error.
func (s *TSA) OpenSSLVerify(t testing.TB, tsr, data []byte) (string, error) {
	t.Helper()
	d := t.TempDir()
	tp, dp := filepath.Join(d, "x.tsr"), filepath.Join(d, "x.data")
	if err := os.WriteFile(tp, tsr, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "ts", "-verify", "-in", tp, "-data", dp, "-CAfile", s.CAFile, "-untrusted", s.Cert).CombinedOutput()
	return string(out), err
}
