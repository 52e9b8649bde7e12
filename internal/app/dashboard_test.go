package app

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/internal/tlsclient"
)

func TestDashboardConfig(t *testing.T) {
	cfg, err := Load("testdata/dashboard.yaml", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.ClickHouse.Addr = []string{"ch:9000"}
	if err := cfg.Validate("dashboard"); err != nil {
		t.Fatalf("the example config is invalid: %v", err)
	}
	ch := cfg.DashboardClickHouse()
	// Empty addr and database inherit store.clickhouse; the dashboard's own
	// (read-only) user is kept.
	if strings.Join(ch.Addr, ",") != "ch:9000" || ch.Database != "auditline" || ch.Username != "dashboard_ro" {
		t.Fatalf("inherited clickhouse config: %+v", ch)
	}
	// TLS comes with the inherited address (a dashboard.clickhouse.tls of
	// its own wins); with its own address the dashboard uses only its own.
	cfg.Store.ClickHouse.TLS = tlsclient.Config{Enabled: true, CAFile: "/etc/auditline/tls/ca.pem"}
	if ch := cfg.DashboardClickHouse(); ch.TLS != cfg.Store.ClickHouse.TLS {
		t.Errorf("inherited address without store.clickhouse.tls: %+v", ch.TLS)
	}
	own := tlsclient.Config{Enabled: true, CAFile: "/etc/auditline/tls/dashboard-ca.pem"}
	cfg.Dashboard.ClickHouse.TLS = own
	if ch := cfg.DashboardClickHouse(); ch.TLS != own {
		t.Errorf("dashboard.clickhouse.tls replaced by the store's: %+v", ch.TLS)
	}
	cfg.Dashboard.ClickHouse.TLS = tlsclient.Config{}
	cfg.Dashboard.ClickHouse.Addr = []string{"replica:9000"}
	if ch := cfg.DashboardClickHouse(); ch.TLS.Enabled {
		t.Errorf("own address, yet the store's TLS: %+v", ch.TLS)
	}
	cfg.Dashboard.ClickHouse.Addr, cfg.Store.ClickHouse.TLS = nil, tlsclient.Config{}
	// The proof link works wherever 'auditline prove' would: the archive
	// section's bucket; without one the page shows the command only.
	if p, err := newArchiveProver(cfg); err != nil || p == nil {
		t.Fatalf("archive bucket configured (defaults), no prover: %v", err)
	}
	cfg.Archive.S3.Endpoint = ""
	if p, err := newArchiveProver(cfg); err != nil || p != nil {
		t.Fatalf("no archive bucket, yet a prover: %v %v", p, err)
	}
	t.Setenv("AUDITLINE_DASHBOARD_INGEST_TOKEN", "from-env")
	cfg, err = Load("testdata/dashboard.yaml", os.Environ())
	if err != nil || cfg.Dashboard.Ingest.Token != "from-env" {
		t.Fatalf("env override of the ingest token: %q %v", cfg.Dashboard.Ingest.Token, err)
	}
}

// TestDashboardStage runs the stage as main does, serving the ops endpoints
// on its own listener, and stops it.
func TestDashboardStage(t *testing.T) {
	cfg, err := Load("testdata/dashboard.yaml", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg.Dashboard.Listen = addr
	cfg.Store.ClickHouse.Addr = []string{"127.0.0.1:1"} // nothing there: /readyz must say so
	reg := prometheus.NewRegistry()
	ops := newOps(reg, func(context.Context) error { return nil })
	st, err := buildDashboard(cfg, Settings{Registry: reg, Handle: ops.mount})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	// Until the stage listens: a deadline, not a count of tries (50 tries
	// of 50 ms can end before a loaded box has started it).
	var resp *http.Response
	for deadline := time.Now().Add(time.Minute); ; {
		if resp, err = http.Get("http://" + addr + "/healthz"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if err := st.(readier).Ready(rctx); err == nil {
		t.Fatal("ready with no ClickHouse")
	}
	resp, err = http.Get("http://" + addr + "/near-miss")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/login" {
		t.Fatalf("an anonymous visit ended at %s", resp.Request.URL)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the stage did not stop")
	}
}
