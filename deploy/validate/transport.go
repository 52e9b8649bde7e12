package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Transport security (issue 20) as a deployment sees it: every TLS file the
// configuration names must reach the process from a secret mount (a
// Kubernetes Secret volume, a compose secret, a systemd credential), every
// password from a secret (a Secret's key, an env file), and the settings
// must be valid once those files and variables are in place.

// tlsFileKeys are the configuration keys that name TLS files.
var tlsFileKeys = []string{
	"kafka.tls.ca_file", "kafka.tls.cert_file", "kafka.tls.key_file",
	"store.clickhouse.tls.ca_file", "store.clickhouse.tls.cert_file", "store.clickhouse.tls.key_file",
	"dashboard.clickhouse.tls.ca_file", "dashboard.clickhouse.tls.cert_file", "dashboard.clickhouse.tls.key_file",
	"archive.s3.ca_file",
}

// kafkaStages are the processes that need the Kafka SASL password: those
// that talk to Kafka, and the dashboard, whose start validates the kafka
// section like every stage's (internal/app Config.Validate).
var kafkaStages = map[string]bool{"ingest": true, "enrich": true, "store": true, "archive": true, "migrate": true, "all": true, "dashboard": true}

// process is what one auditline process of a deployment gets.
type process struct {
	what  string
	stage string            // ingest, enrich, store, archive, dashboard, migrate
	env   map[string]string // literal environment (AUDITLINE_* overrides)
	// secretEnv are variables whose value comes from a secret (a Secret
	// key, an env file): present, value unknown.
	secretEnv map[string]bool
	// mounts are the folders (or files) mounted from secrets.
	mounts []string
}

func (p process) mounted(path string) bool {
	for _, m := range p.mounts {
		m = strings.TrimSuffix(m, "/")
		if path == m || strings.HasPrefix(path, m+"/") {
			return true
		}
	}
	return false
}

// checkTransport checks one process given the effective configuration of
// its file plus its environment (eff) and the file's content.
func checkTransport(r *report, p process, eff map[string]any, content []byte, cfg configChecker) {
	fail := func(format string, a ...any) { r.fail(p.what+": "+format, a...) }
	str := func(k string) string { s, _ := lookup(eff, k).(string); return s }
	on := func(k string) bool { b, _ := lookup(eff, k).(bool); return b }
	files := map[string]string{} // path → role (ca, cert, key)
	for _, k := range tlsFileKeys {
		f := str(k)
		if f == "" {
			continue
		}
		if !p.mounted(f) {
			fail("%s = %s is not under a secret mount (%s)", k, f, strings.Join(p.mounts, ", "))
		}
		role := "ca"
		if strings.HasSuffix(k, "cert_file") {
			role = "cert"
		} else if strings.HasSuffix(k, "key_file") {
			role = "key"
		}
		if old, ok := files[f]; ok && old != role {
			fail("%s = %s is also used as a %s file", k, f, old)
		}
		files[f] = role
	}
	needSecret := func(env, why string) {
		if !p.secretEnv[env] {
			fail("%s: %s must come from a secret", why, env)
		}
	}
	if str("kafka.sasl.mechanism") != "" && kafkaStages[p.stage] {
		needSecret("AUDITLINE_KAFKA_SASL_PASSWORD", "kafka.sasl.mechanism "+str("kafka.sasl.mechanism"))
	}
	switch p.stage {
	case "store", "migrate":
		if str("store.clickhouse.username") != "" {
			needSecret("AUDITLINE_STORE_CLICKHOUSE_PASSWORD", "store.clickhouse.username "+str("store.clickhouse.username"))
		}
	case "dashboard":
		// The dashboards read as a read-only user, never the store's (issue 18/20).
		du, su := str("dashboard.clickhouse.username"), str("store.clickhouse.username")
		if du == "" || du == su {
			fail("dashboard.clickhouse.username %q: give the dashboard its own read-only ClickHouse user, not the store's (%q)", du, su)
		}
		if p.secretEnv["AUDITLINE_STORE_CLICKHOUSE_PASSWORD"] {
			fail("the dashboard gets AUDITLINE_STORE_CLICKHOUSE_PASSWORD: it must not hold the store's password")
		}
		needSecret("AUDITLINE_DASHBOARD_CLICKHOUSE_PASSWORD", "dashboard.clickhouse.username "+du)
	}
	if len(files) == 0 && !on("kafka.tls.enabled") && !on("store.clickhouse.tls.enabled") && str("kafka.sasl.mechanism") == "" {
		return
	}
	if err := cfg.validateTransport(content, p, files); err != nil {
		fail("%v", err)
	}
}

// validateTransport runs `auditline config --validate` on content with the
// process's environment, each secret variable set to a placeholder and each
// TLS file the configuration names created (a CA, a client certificate and
// its key) under a temporary folder that stands for the secret mounts. It
// reports the problems in the transport settings (kafka.tls, kafka.sasl,
// *.clickhouse.tls, archive.s3); the others (users, signing key, …) belong
// to the deployment's operator.
func (c configChecker) validateTransport(content []byte, p process, files map[string]string) error {
	root, err := os.MkdirTemp("", "auditline-transport-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	moved := func(s string) string {
		for _, m := range p.mounts {
			m = strings.TrimSuffix(m, "/")
			s = strings.ReplaceAll(s, m, filepath.Join(root, m))
		}
		return s
	}
	if err := writeTLSFiles(root, files, moved); err != nil {
		return err
	}
	path := filepath.Join(root, "auditline.yaml")
	if err := os.WriteFile(path, []byte(moved(string(content))), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(c.bin, "config", "--validate", "--config", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range p.env {
		if strings.HasPrefix(k, "AUDITLINE_") && k != "AUDITLINE_CONFIG" {
			cmd.Env = append(cmd.Env, k+"="+moved(v))
		}
	}
	for k := range p.secretEnv {
		cmd.Env = append(cmd.Env, k+"=placeholder-secret-0123456789")
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	_ = cmd.Run() // stdout: the effective configuration; stderr: one problem per line, each starting with its key
	var bad []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		l = strings.TrimSpace(l)
		for _, k := range []string{"kafka.tls.", "kafka.sasl.", "store.clickhouse.tls.", "dashboard.clickhouse.tls.", "archive.s3.ca_file", "archive.s3.secure"} {
			if strings.HasPrefix(l, k) || strings.Contains(l, "] "+k) {
				bad = append(bad, l)
				break
			}
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("auditline config --validate refuses the transport settings:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// writeTLSFiles creates each file (path → role ca, cert or key) under root
// (moved maps a path in the deployment to its place under root): one CA,
// and one client certificate with its key, so that pairs match.
func writeTLSFiles(root string, files map[string]string, moved func(string) string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deploy-check CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	client := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "auditline"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	clientDER, err := x509.CreateCertificate(rand.Reader, client, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pems := map[string][]byte{
		"ca":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"cert": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientDER}),
		"key":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for f, role := range files {
		dst := moved(f)
		if !strings.HasPrefix(dst, root) {
			continue // not under a mount: reported already, and left missing
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(dst, pems[role], 0o600); err != nil {
			return err
		}
	}
	return nil
}
