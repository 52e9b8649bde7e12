package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/auditline/auditline/store"
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
	if err != nil || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS `auditline`.`"+store.TableDecisions+"`\n") || strings.Contains(out, "ON CLUSTER") {
		t.Fatalf("one-server dry run: %v\n%.300s", err, out)
	}
	out, err = capture(t, func() error {
		return runMigrate(context.Background(), []string{"--dry-run", "--cluster", "prod", "--server-version", "24.8"})
	})
	if err != nil || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS `auditline`.`decision_records_local` ON CLUSTER `prod`") ||
		!strings.Contains(out, "ENGINE = Distributed(`prod`, `auditline`, `decision_records_local`, cityHash64(record_id))") {
		t.Fatalf("cluster dry run: %v\n%.300s", err, out)
	}
}
