package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// configChecker loads an auditline.yaml with the auditline binary itself:
// `auditline config --config FILE` decodes it strictly (unknown keys and
// wrong types are errors) and prints the effective configuration.
type configChecker struct{ bin string }

// effective returns the effective configuration of the file content, as a
// generic map.
func (c configChecker) effective(content []byte) (map[string]any, error) {
	return c.effectiveEnv(content, nil)
}

// effectiveEnv is effective with environment overrides (AUDITLINE_*).
func (c configChecker) effectiveEnv(content []byte, env map[string]string) (map[string]any, error) {
	dir, err := os.MkdirTemp("", "auditline-config-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "auditline.yaml")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(c.bin, "config", "--config", path)
	// Only PATH: the caller's AUDITLINE_* overrides must not mask a problem.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("auditline config: %v: %s", err, stderr)
	}
	var m map[string]any
	if err := yaml.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("auditline config output: %w", err)
	}
	return m, nil
}

// envNames returns every AUDITLINE_* variable auditline reads: the path of
// each key of the effective configuration (AUDITLINE_<SECTION>_<KEY>), the
// short forms and AUDITLINE_CONFIG.
func envNames(m map[string]any) map[string]bool {
	out := map[string]bool{"AUDITLINE_CONFIG": true, "AUDITLINE_KAFKA": true, "AUDITLINE_CLICKHOUSE": true, "AUDITLINE_S3": true, "AUDITLINE_S3_BUCKET": true}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if mm, ok := v.(map[string]any); ok {
			for k, c := range mm {
				walk(prefix+"_"+strings.ToUpper(k), c)
			}
			return
		}
		out[prefix] = true
	}
	walk("AUDITLINE", m)
	return out
}

// checkEnv reports AUDITLINE_* variables that name no configuration key:
// auditline ignores them, so a misspelt or renamed key would go unnoticed.
func checkEnv(r *report, what string, names []string, known map[string]bool) {
	for _, n := range names {
		if strings.HasPrefix(n, "AUDITLINE_") && !known[n] {
			r.fail("%s: environment variable %s names no configuration key (see `auditline config`)", what, n)
		}
	}
}

// lookup walks a dotted path through nested maps.
func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// secretKeys are config keys that must never be set in a file that ships in
// a ConfigMap, a compose config or /etc (they come from Secrets / env files).
var secretKeys = []string{"store.clickhouse.password", "archive.s3.secret_key", "dashboard.clickhouse.password", "dashboard.ingest.token", "kafka.sasl.password"}

// checkConfig loads content and reports secrets found in it.
func (c configChecker) check(r *report, what string, content []byte) map[string]any {
	m, err := c.effective(content)
	if err != nil {
		r.fail("%s: %v", what, err)
		return nil
	}
	for _, k := range secretKeys {
		if v, _ := lookup(m, k).(string); v != "" {
			r.fail("%s: %s is set in the file; pass it from a secret (environment) instead", what, k)
		}
	}
	return m
}
