// Package binary builds cmd/auditline once per source state for every test
// that runs the binary, and is the only place in test code that does. It is
// a package of its own, importing nothing of auditline, so that tests inside
// the stage packages (which internal/stacktest imports through internal/app)
// can use it too; everything else gets the binary from internal/stacktest.
package binary

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// module is this repository's module path.
const module = "github.com/auditline/auditline"

// RepoRoot is the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// TB is what Auditline needs of a test; testing.TB satisfies it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Auditline returns the path of the auditline binary of this checkout: the
// file $AUDITLINE_BIN names, else one built from the current sources (see
// Build). It fails t when the build fails.
func Auditline(t TB) string {
	t.Helper()
	if p := os.Getenv("AUDITLINE_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() { binPath, binErr = Build() })
	if binErr != nil {
		t.Fatalf("%v", binErr)
	}
	return binPath
}

// Build builds cmd/auditline into a cache folder keyed by a hash of
// every source file it is built from (the module's Go and embedded files,
// go.mod, go.sum, the Go version), and returns the binary's path. A build for
// the same sources is reused, also by other test packages running at the
// same time (they wait on a file lock while one of them builds). Cache
// entries unused for a day are removed.
func Build() (string, error) {
	root := RepoRoot()
	key, err := sourceHash(root)
	if err != nil {
		return "", fmt.Errorf("auditline binary: %w", err)
	}
	cache := filepath.Join(os.TempDir(), "auditline-bin")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	bin := filepath.Join(cache, key, "auditline")
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		now := time.Now()
		_ = os.Chtimes(filepath.Dir(bin), now, now)
		return bin, nil
	}
	prune(cache, 24*time.Hour)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp := bin + ".partial"
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/auditline")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/auditline: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// sourceHash hashes what the binary is built from. External modules are
// pinned by go.sum, so the module's own files, go.mod and go.sum say it all.
func sourceHash(root string) (string, error) {
	list := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if eq .Module.Path "`+module+`"}}{{.Dir}}{{range .GoFiles}}|{{.}}{{end}}{{range .CgoFiles}}|{{.}}{{end}}{{range .EmbedFiles}}|{{.}}{{end}}{{end}}{{end}}`,
		"./cmd/auditline")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("go list ./cmd/auditline: %v\n%s", err, stderr)
	}
	files := []string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		for _, f := range parts[1:] {
			files = append(files, filepath.Join(parts[0], f))
		}
	}
	sort.Strings(files)
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, os.Getenv("GOFLAGS"))
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		fh, err := os.Open(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", rel)
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// prune removes cache entries not used for age.
func prune(cache string, age time.Duration) {
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			os.RemoveAll(filepath.Join(cache, e.Name()))
		}
	}
}
