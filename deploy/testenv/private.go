package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditline/auditline/internal/stacktest/binary"
)

// Private is a server of our own, started for one test that needs to stop,
// pause or kill it without disturbing the shared stack other tests use.
type Private struct {
	Name string // kafka, clickhouse, clickhouse26 or minio
	Addr string // host:port of its main protocol
	HTTP string // host:port of a ClickHouse's HTTP interface
	Data string // its data folder (logs in Data/log, pid in Data/run)
	env  []string
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

// StartPrivateClickHouse starts a private ClickHouse of the same kind as the
// enclosing ForEachClickHouse subtest's engine (18.16 or the 26.x engine;
// 18.16 outside ForEachClickHouse). See StartPrivate.
func StartPrivateClickHouse(t testing.TB) *Private {
	t.Helper()
	if e := current(t); e != nil && e.Var == clickHouseModernVar {
		return StartPrivate(t, "clickhouse26")
	}
	return StartPrivate(t, "clickhouse")
}

// StartPrivate starts a private instance of name (kafka, clickhouse, clickhouse26 or minio)
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
		need(t, clickHouseVar)
	case "clickhouse26":
		need(t, clickHouseModernVar)
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
		p.Addr, p.HTTP = fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", http)
	case "clickhouse26":
		port, http := FreePort(t), FreePort(t)
		p.env = append(p.env, fmt.Sprintf("CH26_TCP_PORT=%d", port), fmt.Sprintf("CH26_HTTP_PORT=%d", http))
		p.Addr, p.HTTP = fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", http)
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
	cmd := exec.Command(filepath.Join(binary.RepoRoot(), "deploy", "local", script), p.Name)
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

// Signal sends sig (e.g. "STOP", "CONT", "KILL") to the server process (for
// clickhouse26, the supervisor of deploy/local/chdb_serve.py: its server
// process dies with it, but STOP pauses only the supervisor).
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

// ClickHouseConfigD writes name.xml into the config.d folder of a private
// ClickHouse 18.16 (merged into its generated config.xml at start: extra
// ports, a cluster, MergeTree settings, …), or removes it when xml is empty,
// and restarts the server so that the change takes effect.
func (p *Private) ClickHouseConfigD(t testing.TB, name, xml string) {
	t.Helper()
	if p.Name != "clickhouse" {
		t.Fatalf("ClickHouseConfigD: %s is not a ClickHouse 18.16", p.Name)
	}
	dir := filepath.Join(p.Data, "clickhouse", "config.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".xml")
	if xml == "" {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	} else if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)
	p.Start(t)
}
