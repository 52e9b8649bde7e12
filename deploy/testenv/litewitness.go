package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/auditline/auditline/internal/stacktest/binary"
)

// TorchwoodVersion is the pinned filippo.io/torchwood release whose
// litewitness and witnessctl deploy/local/install.sh builds.
func TorchwoodVersion() string {
	b, _ := os.ReadFile(filepath.Join(binary.RepoRoot(), "deploy", "local", "lib.sh"))
	if m := regexp.MustCompile(`(?m)^TORCHWOOD_VERSION=(v[0-9.]+)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// Litewitness returns the paths of litewitness and witnessctl, the
// independent C2SP tlog-witness the archive's witness tests interoperate
// with (.tools/torchwood-<version>/, or under $AUDITLINE_TOOLS). Gated like
// the servers: skipped when not installed, failed under
// AUDITLINE_REQUIRE_SERVERS=1.
func Litewitness(t testing.TB) (litewitness, witnessctl string) {
	t.Helper()
	tools := os.Getenv("AUDITLINE_TOOLS")
	if tools == "" {
		tools = filepath.Join(binary.RepoRoot(), ".tools")
	}
	dir := filepath.Join(tools, "torchwood-"+TorchwoodVersion())
	lw, wc := filepath.Join(dir, "litewitness"), filepath.Join(dir, "witnessctl")
	ok := true
	for _, p := range []string{lw, wc} {
		st, err := os.Stat(p)
		ok = ok && err == nil && !st.IsDir() && st.Mode()&0o111 != 0
	}
	if ok {
		return lw, wc
	}
	const hint = "install it: deploy/local/install.sh litewitness"
	if os.Getenv("AUDITLINE_REQUIRE_SERVERS") == "1" {
		t.Fatalf("litewitness not found in %s but AUDITLINE_REQUIRE_SERVERS=1: %s", dir, hint)
	}
	t.Skipf("litewitness not found in %s; %s", dir, hint)
	return "", ""
}
