package stacktest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
)

// Stack is one auditline pipeline's namespace on a set of servers, and the
// processes a test runs in it. Edit Config before the first Start; ConfigFile
// writes it for the child processes.
type Stack struct {
	Name    string // topic prefix Name+".", database Name
	Dir     string // the stack's folder: config, key
	LogDir  string // where process logs go; Dir unless set before the first Start
	Servers Servers
	Config  app.Config
	// Env is the environment of every process the stack starts: this
	// process's, minus AUDITLINE_CONFIG and the shared stack's short forms
	// (AUDITLINE_KAFKA, … would override the config's addresses). Append
	// what a test's processes need (tokens given by env).
	Env []string

	t      TB
	mu     sync.Mutex
	procs  []*Proc
	inproc []*InProcess
	conn   driver.Conn
	bkt    *bucket.Bucket
}

// NewName returns a short unique lowercase name (letters and digits), usable
// as a topic prefix, database or bucket name part.
func NewName() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// New returns a stack named name (NewName() when empty) on srv, with its
// configuration (NewConfig) and a fresh archive signing key. When the test
// ends it stops every process the stack started (see Proc.Stop; an unclean
// stop fails the test), fails the test if any log shows a panic, prints the
// tail of every log if the test failed, and drops the stack's database.
func New(t TB, srv Servers, name string) *Stack {
	t.Helper()
	if name == "" {
		name = NewName()
	}
	dir := t.TempDir()
	s := &Stack{Name: name, Dir: dir, Servers: srv, Config: NewConfig(srv, name, dir), t: t}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "AUDITLINE_KAFKA", "AUDITLINE_CLICKHOUSE", "AUDITLINE_S3", "AUDITLINE_S3_BUCKET", "AUDITLINE_CONFIG":
			continue
		}
		s.Env = append(s.Env, kv)
	}
	priv, err := keys.Generate(nil)
	if err != nil {
		t.Fatalf("archive key: %v", err)
	}
	if err := keys.WriteNew(s.Config.Archive.SigningKeyFile, priv); err != nil {
		t.Fatalf("archive key: %v", err)
	}
	pub, err := keys.MarshalPublic(priv.Public().(ed25519.PublicKey))
	if err == nil {
		err = os.WriteFile(s.PublicKey(), pub, 0o644)
	}
	if err != nil {
		t.Fatalf("archive public key: %v", err)
	}
	t.Cleanup(s.cleanup)
	return s
}

// PublicKey is the path of the archive's public key (PEM), beside the
// signing key.
func (s *Stack) PublicKey() string { return s.Config.Archive.SigningKeyFile + ".pub" }

// Ring returns the archive signing key's public half as a key ring.
func (s *Stack) Ring() *keys.Ring {
	s.t.Helper()
	priv, err := keys.Load(s.Config.Archive.SigningKeyFile)
	if err != nil {
		s.t.Fatalf("archive key: %v", err)
	}
	return keys.NewRing(priv.Public().(ed25519.PublicKey))
}

// ConfigFile writes Config to Dir/auditline.yaml and returns its path.
func (s *Stack) ConfigFile() string {
	s.t.Helper()
	return s.WriteConfig("auditline.yaml", s.Config)
}

// WriteConfig writes c to Dir/file (mode 0600) and returns its path: for a
// process that runs with a variant of the stack's configuration.
func (s *Stack) WriteConfig(file string, c app.Config) string {
	s.t.Helper()
	path := filepath.Join(s.Dir, file)
	if err := c.WriteFile(path); err != nil {
		s.t.Fatalf("write %s: %v", path, err)
	}
	return path
}

// Migrate creates the stack's ClickHouse schema and Kafka topics, as
// 'auditline migrate' does.
func (s *Stack) Migrate() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := app.Migrate(ctx, &s.Config, false, slog.New(slog.DiscardHandler)); err != nil {
		s.t.Fatalf("migrate: %v", err)
	}
}

// Auditline runs the binary with args to completion (stdin empty) and
// returns its combined output.
func (s *Stack) Auditline(args ...string) (string, error) {
	return s.AuditlineIn("", args...)
}

// AuditlineIn is Auditline with stdin.
func (s *Stack) AuditlineIn(stdin string, args ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command(Binary(s.t), args...)
	cmd.Env = s.Env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Must is Auditline, failing the test on an error.
func (s *Stack) Must(args ...string) string {
	s.t.Helper()
	out, err := s.Auditline(args...)
	if err != nil {
		s.t.Fatalf("auditline %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Command returns a process of the stack, not yet started: name labels it
// and its log (Dir/<name>.log), args[0] is the program. Set Restart,
// StopTimeout, Env or Dir before Start.
func (s *Stack) Command(name string, args ...string) *Proc {
	dir := s.LogDir
	if dir == "" {
		dir = s.Dir
	}
	p := &Proc{Name: name, Args: args, Env: s.Env, LogPath: filepath.Join(dir, name+".log"), t: s.t}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p
}

// AuditlineProc returns `auditline args...` as a process of the stack, not
// yet started.
func (s *Stack) AuditlineProc(name string, args ...string) *Proc {
	s.t.Helper()
	return s.Command(name, append([]string{Binary(s.t)}, args...)...)
}

// Start starts `auditline <stage> --config <ConfigFile()>` and returns it.
func (s *Stack) Start(stage string) *Proc {
	s.t.Helper()
	p := s.AuditlineProc(stage, stage, "--config", s.ConfigFile())
	p.Start()
	return p
}

// StartStages starts the named stages (every stage when none is named), each
// as its own process, downstream-first — so that the cleanup, which stops
// processes in the reverse order of starting, stops them upstream-first —
// with Restart set when restart is true. It returns them by stage name.
func (s *Stack) StartStages(restart bool, stages ...string) map[string]*Proc {
	s.t.Helper()
	if len(stages) == 0 {
		stages = app.StageNames()
	}
	path := s.ConfigFile()
	out := map[string]*Proc{}
	for _, st := range app.StageNames() {
		if !slices.Contains(stages, st) {
			continue
		}
		p := s.AuditlineProc(st, st, "--config", path)
		p.Restart = restart
		p.Start()
		out[st] = p
	}
	return out
}

// StopAll stops every process of the stack, upstream-first (the reverse of
// the order they were started in), and fails the test for each unclean stop.
func (s *Stack) StopAll() {
	s.t.Helper()
	s.mu.Lock()
	procs, inproc := slices.Clone(s.procs), slices.Clone(s.inproc)
	s.mu.Unlock()
	for i := len(inproc) - 1; i >= 0; i-- {
		if err := inproc[i].Stop(); err != nil {
			s.t.Errorf("in-process stages: %v", err)
		}
	}
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(); err != nil {
			s.t.Errorf("%v", err)
		}
	}
}

// IngestURL is the base URL of the stack's ingest.
func (s *Stack) IngestURL() string {
	return baseURL(s.Config.Ingest.Listen, s.Config.Ingest.TLS.CertFile != "")
}

// DashboardURL is the base URL of the stack's dashboard.
func (s *Stack) DashboardURL() string {
	return baseURL(s.Config.Dashboard.Listen, s.Config.Dashboard.TLS.CertFile != "")
}

func baseURL(listen string, tls bool) string {
	if tls {
		return "https://" + listen
	}
	return "http://" + listen
}

// WaitReady waits up to two minutes for base/readyz to answer 200 (nil
// client: http.DefaultClient), failing the test with the tail of every log
// otherwise. A process of the stack that has exited fails it at once.
func (s *Stack) WaitReady(base string) {
	s.t.Helper()
	s.WaitReadyClient(nil, base)
}

// WaitReadyClient is WaitReady through client.
func (s *Stack) WaitReadyClient(client Doer, base string) {
	s.t.Helper()
	err := Poll(2*time.Minute, 200*time.Millisecond, func() error {
		s.mu.Lock()
		procs := slices.Clone(s.procs)
		s.mu.Unlock()
		for _, p := range procs {
			if died, err := p.Died(); died {
				return StopPolling(fmt.Errorf("%s exited: %v\n%s", p.Name, err, Tail(p.Log(), 3000)))
			}
		}
		return Ready(client, base)
	})
	if err != nil {
		s.t.Fatalf("%s not ready: %v", base, err)
	}
}

// ClickHouse returns a connection to the stack's database (closed when the
// test ends).
func (s *Stack) ClickHouse() driver.Conn {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Servers.ClickHouse},
			Auth:        clickhouse.Auth{Database: s.Config.Store.ClickHouse.Database, Username: "default"},
			DialTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute})
		if err != nil {
			s.t.Fatalf("clickhouse: %v", err)
		}
		s.conn = conn
	}
	return s.conn
}

// Bucket returns the archive's bucket.
func (s *Stack) Bucket() *bucket.Bucket {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bkt == nil {
		b, err := bucket.New(s.Config.Archive.S3.BucketConfig())
		if err != nil {
			s.t.Fatalf("bucket: %v", err)
		}
		s.bkt = b
	}
	return s.bkt
}

// Archive returns a reader of the stack's archive that trusts its signing
// key.
func (s *Stack) Archive() *Archive {
	s.t.Helper()
	return NewArchive(s.Bucket(), s.Config.Archive.Prefix, s.Ring())
}

// Records reads the latest version of every record in the stack's
// ClickHouse database.
func (s *Stack) Records(ctx context.Context) (map[string]Record, error) {
	return Records(ctx, s.ClickHouse(), s.Config.Store.ClickHouse.Database)
}

func (s *Stack) cleanup() {
	s.StopAll()
	s.mu.Lock()
	procs := slices.Clone(s.procs)
	inproc := slices.Clone(s.inproc)
	s.mu.Unlock()
	type logged struct {
		name string
		b    []byte
	}
	var logs []logged
	for _, p := range procs {
		p.close()
		logs = append(logs, logged{p.Name, p.Log()})
	}
	for _, r := range inproc {
		b, _ := os.ReadFile(r.LogPath)
		logs = append(logs, logged{"in-process stages", b})
	}
	for _, l := range logs {
		if bytes.Contains(l.b, []byte("panic:")) {
			s.t.Errorf("%s logged a panic (see %s)", l.name, s.Dir)
		}
	}
	if s.t.Failed() {
		for _, l := range logs {
			s.t.Logf("%s log (tail):\n%s", l.name, Tail(l.b, 4000))
		}
	}
	db := s.Config.Store.ClickHouse.Database
	if s.Servers.ClickHouse == "" {
		return
	}
	if conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Servers.ClickHouse}, Auth: clickhouse.Auth{Username: "default"},
		DialTimeout: 10 * time.Second}); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
		cancel()
		conn.Close()
	}
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
}
