package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// capture runs f with os.Stdout redirected and returns what it printed.
func capture(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	ferr := f()
	os.Stdout = stdout
	w.Close()
	return <-done, ferr
}

func TestMigrateDryRun(t *testing.T) {
	t.Setenv("AUDITLINE_CONFIG", "")
	out, err := capture(t, func() error {
		return runMigrate(context.Background(), []string{"--dry-run", "--server-version", "24.8"})
	})
	if err != nil || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS `auditline`.`decision_records`\n") || strings.Contains(out, "ON CLUSTER") {
		t.Fatalf("one-server dry run: %v\n%.300s", err, out)
	}
	out, err = capture(t, func() error {
		return runMigrate(context.Background(), []string{"--dry-run", "--cluster", "prod", "--server-version", "24.8"})
	})
	if err != nil || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS `auditline`.`decision_records_local` ON CLUSTER `prod`") ||
		!strings.Contains(out, "ENGINE = Distributed(`prod`, `auditline`, `decision_records_local`, cityHash64(record_id))") {
		t.Fatalf("cluster dry run: %v\n%.300s", err, out)
	}
	if err := runMigrate(context.Background(), []string{"--cluster", "prod"}); err == nil || !strings.Contains(err.Error(), "--dry-run") {
		t.Fatalf("--cluster without --dry-run: %v", err)
	}
}

// TestDefaultGroups: consumer groups left unset follow the topic prefix;
// set ones are kept.
func TestDefaultGroups(t *testing.T) {
	t.Setenv("AUDITLINE_CONFIG", "")
	for _, tc := range []struct{ yaml, enrich, store, archive string }{
		{"", "auditline-enrich", "auditline-store", "auditline-archive"},
		{"topic_prefix: eu.prod.\n", "eu.prod-enrich", "eu.prod-store", "eu.prod-archive"},
		{"topic_prefix: eu.\nstore:\n  group: mine\n", "eu-enrich", "mine", "eu-archive"},
	} {
		path := t.TempDir() + "/c.yaml"
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Enrich.Group != tc.enrich || cfg.Store.Group != tc.store || cfg.Archive.Group != tc.archive {
			t.Errorf("%q: groups %s %s %s, want %s %s %s", tc.yaml, cfg.Enrich.Group, cfg.Store.Group, cfg.Archive.Group, tc.enrich, tc.store, tc.archive)
		}
	}
}
