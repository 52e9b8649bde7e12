// Package testenv gives integration tests the addresses of the real servers that
// deploy/local/start.sh runs (it writes them to .data/env), and a unique
// namespace per test so that tests sharing one broker, one ClickHouse and one
// MinIO never see each other's data.
//
// ClickHouse tests run on every engine (ForEachClickHouse: 18.16 and 26.x).
//
// When a server's variable is unset the test is skipped with the command that
// starts it — unless AUDITLINE_REQUIRE_SERVERS=1 (set by .ci/run), in which case
// the test fails: in CI a skipped integration test is a failed one.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const startHint = "start the local stack: deploy/local/start.sh && source .data/env"

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv("AUDITLINE_REQUIRE_SERVERS") == "1" {
		t.Fatalf("%s is not set but AUDITLINE_REQUIRE_SERVERS=1: %s", name, startHint)
	}
	t.Skipf("%s not set; %s", name, startHint)
	return ""
}

// Kafka returns the broker seed list of the real broker.
func Kafka(t testing.TB) []string {
	t.Helper()
	return strings.Split(need(t, "AUDITLINE_KAFKA"), ",")
}

// ClickHouse returns host:port of the real ClickHouse native protocol: the
// engine of the enclosing ForEachClickHouse subtest, else AUDITLINE_CLICKHOUSE.
func ClickHouse(t testing.TB) string {
	t.Helper()
	if e := current(t); e != nil {
		return e.Addr
	}
	return need(t, clickHouseVar)
}

// S3Endpoint is an S3 server with credentials.
type S3Endpoint struct {
	Endpoint  string // host:port
	Secure    bool
	AccessKey string
	SecretKey string
	Bucket    string // the Object Lock bucket start.sh created
}

// S3 returns the real S3 server (MinIO) from AUDITLINE_S3 =
// http://ACCESS:SECRET@host:port.
func S3(t testing.TB) S3Endpoint {
	t.Helper()
	u, err := url.Parse(need(t, "AUDITLINE_S3"))
	if err != nil || u.User == nil {
		t.Fatalf("AUDITLINE_S3 must look like http://ACCESS:SECRET@host:port: %v", err)
	}
	secret, _ := u.User.Password()
	return S3Endpoint{
		Endpoint:  u.Host,
		Secure:    u.Scheme == "https",
		AccessKey: u.User.Username(),
		SecretKey: secret,
		Bucket:    os.Getenv("AUDITLINE_S3_BUCKET"),
	}
}

// Name returns a short unique lowercase name for this test run (letters and
// digits only), usable as a topic prefix, database or bucket name part.
func Name(t testing.TB) string {
	t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// Chromium returns the path of a Chromium binary for browser tests: $CHROMIUM
// when set, else chromium on $PATH (deploy/local/install.sh chromium). Gated
// like the servers: skipped when absent, failed under AUDITLINE_REQUIRE_SERVERS=1.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const hint = "install it: deploy/local/install.sh chromium (or set CHROMIUM)"
	if os.Getenv("AUDITLINE_REQUIRE_SERVERS") == "1" {
		t.Fatalf("chromium not found but AUDITLINE_REQUIRE_SERVERS=1: %s", hint)
	}
	t.Skipf("chromium not found; %s", hint)
	return ""
}
