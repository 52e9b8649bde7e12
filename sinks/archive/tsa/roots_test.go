package tsa

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditline/auditline/sinks/archive/archivetest"
)

// TestLoadRoots: a PEM file of certificates is a pool; an empty path is
// nil (no roots configured); a file without a certificate is an error.
func TestLoadRoots(t *testing.T) {
	if p, err := LoadRoots(""); p != nil || err != nil {
		t.Fatalf("empty path: %v %v", p, err)
	}
	ts := archivetest.NewTSA(t)
	dir := t.TempDir()
	if p, err := LoadRoots(ts.CAFile); err != nil || p == nil {
		t.Fatalf("LoadRoots = %v, %v", p, err)
	}
	bad := filepath.Join(dir, "none.pem")
	os.WriteFile(bad, []byte("no certificate here\n"), 0o644)
	if _, err := LoadRoots(bad); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("no certificate: %v", err)
	}
	if _, err := LoadRoots(filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("missing file: no error")
	}
}
