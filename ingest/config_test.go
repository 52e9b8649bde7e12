package ingest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/auditline/auditline/ingest/auth"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

func loadYAML(t *testing.T, name string) (Config, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "config", name))
	if err != nil {
		t.Fatal(err)
	}
	c := NewDefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err = dec.Decode(&c)
	return c, err
}

func TestConfigFiles(t *testing.T) {
	c, err := loadYAML(t, "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("good.yaml: %v", err)
	}
	if len(c.Auth.Tokens) != 3 || c.Auth.Tokens[2].Scopes[0] != auth.ScopeOversight || c.MaxEvents != 2048 ||
		c.ProduceTimeout != 3*time.Second || c.MaxEventBytes != DefaultMaxEventBytes || !c.Auth.QueryToken {
		t.Errorf("good.yaml decoded to %+v", c)
	}

	c, err = loadYAML(t, "bad_scope_and_limits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, want := range []string{
		"ingest.listen: empty",
		"ingest.auth.tokens[0].sha256: want 64 hex digits",
		`ingest.auth.tokens[0].scopes: unknown scope "admin"`,
		"ingest.max_events: 0, want at least 1",
		"ingest.max_inflight_bytes: 1024 is below max_body_bytes",
		"ingest.produce_timeout: 0s, want > 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad_scope_and_limits.yaml: %v\nwant it to contain %q", err, want)
		}
	}

	if _, err := loadYAML(t, "bad_unknown_key.yaml"); err == nil || !strings.Contains(err.Error(), "max_body_size") {
		t.Errorf("unknown key: %v", err)
	}
}

// TestErrorResponses pins the answers senders see, as golden JSON (run with
// -update to rewrite after a deliberate change).
func TestErrorResponses(t *testing.T) {
	h := startFake(t, &fakeProducer{}, func(c *Config) { c.MaxEvents = 2 })
	cases := []struct {
		name, path, token, ctype string
		body                     string
	}{
		{"missing token", "/v1/litellm", "", "application/json", `[]`},
		{"wrong scope", "/v1/gateway", tokDash, "application/json", `[]`},
		{"bad content type", "/v1/litellm", tokAll, "text/csv", `a,b`},
		{"invalid json", "/v1/litellm", tokAll, "application/json", "[{\"id\": \"a\"},\n {\"id\": nope}]"},
		{"too many events", "/v1/litellm", tokAll, "application/json", `[{}, {}, {}]`},
		{"gateway invalid event", "/v1/gateway", tokAll, "application/json", `{"schema": "auditline.gateway.v1", "event_id": "e1", "request_key": "k", "occurred_at": "2025-11-22T10:00:00Z", "gateway": "g", "policy": {"id": "p", "decision": "deny"}}`},
		{"litellm partly unusable", "/v1/litellm", tokAll, "application/json", `[{"id": "a", "trace_id": "t", "status": "success"}, null]`},
		{"litellm element not an object", "/v1/litellm", tokAll, "application/json", `[{"id": "a", "trace_id": "t", "status": "success"}, "x"]`},
	}
	got := map[string]any{}
	for _, c := range cases {
		r := h.post(c.path, c.token, []byte(c.body), "Content-Type", c.ctype)
		var v any
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("%s: %v %q", c.name, err, r.body)
		}
		got[c.name] = map[string]any{"status": r.code, "body": v}
	}
	out, _ := json.MarshalIndent(got, "", "  ")
	out = append(out, '\n')
	path := filepath.Join("testdata", "golden", "responses.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestErrorResponses -update)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("responses differ from %s (rerun with -update if deliberate):\n%s", path, out)
	}
}

// TestTLS serves HTTPS from cert_file/key_file.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)

	h := startFake(t, &fakeProducer{}, func(c *Config) { c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile} })
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := strings.Replace(h.url, "http://", "https://", 1)
	req, _ := http.NewRequest("POST", url+"/v1/litellm", bytes.NewReader(example(t, "01_success_plain_openai.json")))
	req.Header.Set("Authorization", "Bearer "+tokAll)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("https: %d tls=%v", resp.StatusCode, resp.TLS != nil)
	}
}
