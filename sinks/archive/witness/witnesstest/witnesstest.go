// Package witnesstest runs C2SP tlog witnesses for tests: the independent
// litewitness (filippo.io/torchwood, built by deploy/local/install.sh) as a
// real process with its own ssh-agent and SQLite database, and auditline's
// own witness.Server.
package witnesstest

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/sinks/archive/witness"
)

// Litewitness is a running litewitness process.
type Litewitness struct {
	Witness witness.Witness // name, cosignature key and URL
	t       testing.TB
	bin     string
	args    []string
	mu      sync.Mutex
	cmd     *exec.Cmd
	logf    string
	env     []string
}

func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// StartLitewitness starts litewitness named name, trusting the given logs
// (their origins and signed-note verifier keys, added with witnessctl), on a
// free loopback port. Its key is a fresh Ed25519 key in a dedicated
// ssh-agent, as its README prescribes. It is stopped when the test ends.
func StartLitewitness(t testing.TB, name string, logs ...witness.Log) *Litewitness {
	t.Helper()
	lw, wc := testenv.Litewitness(t)
	for _, tool := range []string{"ssh-agent", "ssh-keygen", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("AUDITLINE_REQUIRE_SERVERS") == "1" {
				t.Fatalf("%s is required to run litewitness (apt-get install openssh-client)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	dir, err := os.MkdirTemp("", "litewitness-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock") // short: unix socket paths are limited to ~100 bytes
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	env := []string{"SSH_AUTH_SOCK=" + sock}
	keyFile := filepath.Join(dir, "witness")
	run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "litewitness", "-f", keyFile)
	run(t, env, "ssh-add", "-q", keyFile)
	pubLine, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatal(err)
	}
	pub := sshPub.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
	db := filepath.Join(dir, "litewitness.db")
	for _, l := range logs {
		run(t, nil, wc, "add-log", "-db", db, "-origin", l.Origin)
		for _, k := range l.Keys {
			run(t, nil, wc, "add-key", "-db", db, "-origin", l.Origin, "-key", k)
		}
	}
	plain, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	w, err := witness.ParseWitness(plain, fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	l := &Litewitness{Witness: w, t: t, bin: lw, env: env, logf: filepath.Join(dir, "litewitness.log"),
		args: []string{"-name", name, "-db", db, "-ssh-agent", sock, "-key", ssh.FingerprintSHA256(sshPub), "-listen", fmt.Sprintf("127.0.0.1:%d", port)}}
	l.Start()
	t.Cleanup(l.Stop)
	return l
}

// Start starts the process (again) and waits until it answers.
func (l *Litewitness) Start() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd != nil {
		return
	}
	f, err := os.OpenFile(l.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command(l.bin, l.args...)
	cmd.Env = append(os.Environ(), l.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("litewitness: %v", err)
	}
	f.Close()
	l.cmd = cmd
	addr := strings.TrimPrefix(l.Witness.URL, "http://")
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if i > 200 {
			l.t.Fatalf("litewitness did not listen on %s:\n%s", addr, l.Log())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop stops the process (SIGTERM, then SIGKILL after 5 s).
func (l *Litewitness) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd == nil {
		return
	}
	l.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { l.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		l.cmd.Process.Kill()
		<-done
	}
	l.cmd = nil
}

// Log returns the process's log so far.
func (l *Litewitness) Log() string {
	b, _ := os.ReadFile(l.logf)
	return string(b)
}

// Server is an auditline witness.Server on an httptest listener.
type Server struct {
	Witness witness.Witness
	Server  *witness.Server
	HTTP    *httptest.Server
}

// StartServer runs an auditline witness with a fresh key and state directory.
func StartServer(t testing.TB, name string, logs ...witness.Log) *Server {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := witness.NewServer(witness.Config{Name: name, Key: key, Dir: t.TempDir(), Logs: logs}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	w, err := witness.ParseWitness(srv.VerifierKey(), hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &Server{Witness: w, Server: srv, HTTP: hs}
}
