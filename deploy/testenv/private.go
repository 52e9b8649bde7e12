package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Private is a server of our own, started for one test that needs to stop,
// pause or kill it without disturbing the shared stack other tests use.
type Private struct {
	Name string // kafka, clickhouse or minio
	Addr string // host:port of its main protocol
	Data string // its data folder (logs in Data/log, pid in Data/run)
	env  []string
}

// repoRoot finds the repository root from this source file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartPrivate starts a private instance of name (kafka, clickhouse or minio)
// with deploy/local/start.sh on free ports and a temporary data folder, and
// stops it when the test ends. It needs the same tools the shared stack needs,
// so it is gated like the shared servers: skipped (or failed in CI) unless the
// shared server of that kind is configured.
func StartPrivate(t testing.TB, name string) *Private {
	t.Helper()
	switch name {
	case "kafka":
		Kafka(t)
	case "clickhouse":
		ClickHouse(t)
	case "minio":
		S3(t)
	default:
		t.Fatalf("StartPrivate: unknown server %q", name)
	}
	data := t.TempDir()
	p := &Private{Name: name, Data: data}
	p.env = append(os.Environ(), "AUDITLINE_DATA="+data)
	switch name {
	case "kafka":
		port, ctl := FreePort(t), FreePort(t)
		p.env = append(p.env, fmt.Sprintf("KAFKA_PORT=%d", port), fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", ctl), "KAFKA_HEAP=384m")
		p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	case "clickhouse":
		port, http := FreePort(t), FreePort(t)
		p.env = append(p.env, fmt.Sprintf("CH_TCP_PORT=%d", port), fmt.Sprintf("CH_HTTP_PORT=%d", http))
		p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	case "minio":
		port := FreePort(t)
		p.env = append(p.env, fmt.Sprintf("MINIO_PORT=%d", port))
		p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	p.Start(t)
	t.Cleanup(func() { p.Stop(t) })
	return p
}

func (p *Private) script(t testing.TB, script string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(), "deploy", "local", script), p.Name)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, p.Name, err, out)
	}
}

// Start (re)starts the server and waits until it is healthy.
func (p *Private) Start(t testing.TB) { t.Helper(); p.script(t, "start.sh") }

// Stop stops the server gracefully (data is kept; Start brings it back).
func (p *Private) Stop(t testing.TB) { t.Helper(); p.script(t, "stop.sh") }

// Signal sends sig (e.g. "STOP", "CONT", "KILL") to the server process.
func (p *Private) Signal(t testing.TB, sig string) {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(p.Data, "run", p.Name+".pid"))
	if err != nil {
		t.Fatalf("%s pid: %v", p.Name, err)
	}
	if out, err := exec.Command("kill", "-"+sig, strings.TrimSpace(string(pid))).CombinedOutput(); err != nil {
		t.Fatalf("kill -%s %s: %v %s", sig, p.Name, err, out)
	}
}
