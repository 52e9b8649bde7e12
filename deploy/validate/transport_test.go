package main

import (
	"strings"
	"testing"
)

// TestCheckTransport: each way a deployment can get transport security
// wrong is reported (the rendered chart, compose file and systemd units are
// checked by main with the real auditline binary).
func TestCheckTransport(t *testing.T) {
	eff := func(dashUser string) map[string]any {
		return map[string]any{
			"kafka": map[string]any{
				"tls":  map[string]any{"enabled": true, "ca_file": "/etc/auditline/tls/ca.pem", "key_file": "/etc/auditline/tls/client.key", "cert_file": "/etc/auditline/tls/client.pem"},
				"sasl": map[string]any{"mechanism": "SCRAM-SHA-512", "username": "auditline"},
			},
			"store":     map[string]any{"clickhouse": map[string]any{"username": "auditline", "tls": map[string]any{"enabled": true, "ca_file": "/etc/auditline/tls/ca.pem"}}},
			"dashboard": map[string]any{"clickhouse": map[string]any{"username": dashUser}},
		}
	}
	good := func(stage string, secrets ...string) process {
		p := process{what: stage, stage: stage, env: map[string]string{}, secretEnv: map[string]bool{}, mounts: []string{"/etc/auditline/tls"}}
		for _, s := range secrets {
			p.secretEnv[s] = true
		}
		return p
	}
	for _, tc := range []struct {
		name string
		p    process
		dash string
		want string // "" = no problem
	}{
		{"store, all in place", good("store", "AUDITLINE_KAFKA_SASL_PASSWORD", "AUDITLINE_STORE_CLICKHOUSE_PASSWORD"), "dashboard_ro", ""},
		{"no TLS mount", func() process {
			p := good("store", "AUDITLINE_KAFKA_SASL_PASSWORD", "AUDITLINE_STORE_CLICKHOUSE_PASSWORD")
			p.mounts = nil
			return p
		}(), "dashboard_ro", "kafka.tls.ca_file = /etc/auditline/tls/ca.pem is not under a secret mount"},
		{"no SASL password", good("enrich"), "dashboard_ro", "AUDITLINE_KAFKA_SASL_PASSWORD must come from a secret"},
		{"no ClickHouse password", good("migrate", "AUDITLINE_KAFKA_SASL_PASSWORD"), "dashboard_ro", "AUDITLINE_STORE_CLICKHOUSE_PASSWORD must come from a secret"},
		{"dashboard as the store's user", good("dashboard", "AUDITLINE_KAFKA_SASL_PASSWORD", "AUDITLINE_DASHBOARD_CLICKHOUSE_PASSWORD"), "auditline", "its own read-only ClickHouse user"},
		{"dashboard without a user", good("dashboard", "AUDITLINE_KAFKA_SASL_PASSWORD", "AUDITLINE_DASHBOARD_CLICKHOUSE_PASSWORD"), "", "its own read-only ClickHouse user"},
		{"dashboard with the store's password", good("dashboard", "AUDITLINE_KAFKA_SASL_PASSWORD", "AUDITLINE_DASHBOARD_CLICKHOUSE_PASSWORD", "AUDITLINE_STORE_CLICKHOUSE_PASSWORD"), "dashboard_ro", "must not hold the store's password"},
		{"dashboard without its password", good("dashboard", "AUDITLINE_KAFKA_SASL_PASSWORD"), "dashboard_ro", "AUDITLINE_DASHBOARD_CLICKHOUSE_PASSWORD must come from a secret"},
	} {
		r := &report{}
		checkTransport(r, tc.p, eff(tc.dash), nil, configChecker{bin: "/bin/true"})
		got := strings.Join(r.problems, "\n")
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: problems %q, want %q", tc.name, got, tc.want)
		}
	}
}
