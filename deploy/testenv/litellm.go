package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/auditline/auditline/internal/stacktest/binary"
)

// LiteLLMVersion is the pinned LiteLLM proxy release: $LITELLM_VERSION, else
// the one deploy/local/lib.sh pins.
func LiteLLMVersion() string {
	if v := os.Getenv("LITELLM_VERSION"); v != "" {
		return v
	}
	b, _ := os.ReadFile(filepath.Join(binary.RepoRoot(), "deploy", "local", "lib.sh"))
	if m := regexp.MustCompile(`LITELLM_VERSION=\$\{LITELLM_VERSION:-([0-9.]+)\}`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// LiteLLM returns the path of the pinned LiteLLM proxy that
// deploy/litellm/install.sh installs (.tools/litellm-<version>/bin/litellm,
// or under $AUDITLINE_TOOLS). Gated like the servers: skipped when it is not
// installed, failed under AUDITLINE_REQUIRE_SERVERS=1.
func LiteLLM(t testing.TB) string {
	t.Helper()
	tools := os.Getenv("AUDITLINE_TOOLS")
	if tools == "" {
		tools = filepath.Join(binary.RepoRoot(), ".tools")
	}
	p := filepath.Join(tools, "litellm-"+LiteLLMVersion(), "bin", "litellm")
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p
	}
	const hint = "install it: deploy/litellm/install.sh"
	if os.Getenv("AUDITLINE_REQUIRE_SERVERS") == "1" {
		t.Fatalf("LiteLLM proxy %s not found but AUDITLINE_REQUIRE_SERVERS=1: %s", p, hint)
	}
	t.Skipf("LiteLLM proxy %s not found; %s", p, hint)
	return ""
}
