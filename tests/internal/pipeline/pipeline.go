// Package pipeline runs auditline stages as child processes and reads back
// what they produced — the latest decision record versions in ClickHouse and
// the leaves of the archive — for the suites under tests/ (fault, hostile)
// that check end to end that every accepted request was recorded exactly
// once.
package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
)

// RepoRoot is the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Build compiles cmd/auditline into dir and returns the binary's path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "auditline")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/auditline")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/auditline: %v\n%s", err, out)
	}
	return bin
}

// Say prints a progress line at once, with the time.
func Say(format string, args ...any) {
	fmt.Printf("%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Proc is one auditline stage run as a child process, supervised as a
// service manager with Restart=always would: an exit the test did not cause
// is counted and followed by a restart.
type Proc struct {
	T    testing.TB
	Name string
	Args []string
	Env  []string
	Log  *os.File

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	ours  bool // the current process is being killed or stopped by us
	quit  bool // no more restarts
	kills int
	exits int
}

// Start starts the process (again).
func (p *Proc) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quit {
		return
	}
	fmt.Fprintf(p.Log, "\n=== test: start %s at %s\n", p.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = p.Env
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	if err := cmd.Start(); err != nil {
		p.T.Errorf("start %s: %v", p.Name, err)
		return
	}
	done := make(chan struct{})
	p.cmd, p.done, p.ours = cmd, done, false
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		unexpected := p.cmd == cmd && !p.ours && !p.quit
		if unexpected {
			p.exits++
		}
		p.mu.Unlock()
		close(done)
		if unexpected {
			Say("%s exited on its own (%v); restarting it in 2s", p.Name, err)
			time.Sleep(2 * time.Second)
			p.Start()
		}
	}()
}

// Kill SIGKILLs the process and waits until it is gone.
func (p *Proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.ours = true
	p.kills++
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop ends the process for good: SIGTERM, SIGKILL after a minute.
func (p *Proc) Stop() {
	p.mu.Lock()
	p.quit, p.ours = true, true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Counts returns how often the test killed the process and how often it
// exited on its own.
func (p *Proc) Counts() (kills, exits int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills, p.exits
}

// CHRecord is a record's latest version in ClickHouse and how many rows
// decision_records FINAL (what the views read) shows at that version.
type CHRecord struct {
	Latest       uint32
	RowsAtLatest int
}

// ReadClickHouse returns every record of db's decision_records.
func ReadClickHouse(ctx context.Context, conn clickhouse.Conn, db string) (map[string]CHRecord, error) {
	rows, err := conn.Query(ctx, "SELECT record_id, version, count() FROM `"+db+"`.decision_records FINAL GROUP BY record_id, version")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]CHRecord{}
	for rows.Next() {
		var id string
		var v uint32
		var n uint64
		if err := rows.Scan(&id, &v, &n); err != nil {
			return nil, err
		}
		c, ok := out[id]
		if !ok || v > c.Latest {
			out[id] = CHRecord{Latest: v, RowsAtLatest: int(n)}
		}
	}
	return out, rows.Err()
}

// IDVersion is one record version.
type IDVersion struct {
	ID string
	V  uint32
}

// Archive reads an archive the way an auditor would: the signed manifests
// of each partition's chain (signatures checked), then the batch each names.
// Update reads only manifests it has not read before.
type Archive struct {
	B      *bucket.Bucket
	Lay    layout.Layout
	Ring   *keys.Ring
	seen   map[string]bool
	Leaves map[IDVersion]int // leaves per record version
}

// NewArchive returns a reader of the archive under prefix.
func NewArchive(b *bucket.Bucket, prefix string, ring *keys.Ring) *Archive {
	return &Archive{B: b, Lay: layout.New(prefix), Ring: ring, seen: map[string]bool{}, Leaves: map[IDVersion]int{}}
}

// Update reads the manifests sealed since the last call.
func (a *Archive) Update(ctx context.Context) error {
	var mkeys []string
	err := a.B.List(ctx, a.Lay.ManifestsPrefix(), "", func(in bucket.Info) error {
		if strings.HasSuffix(in.Key, ".manifest") && !a.seen[in.Key] {
			mkeys = append(mkeys, in.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(mkeys)
	for _, k := range mkeys {
		data, _, err := a.B.Get(ctx, k)
		if err != nil {
			return err
		}
		m, _, err := manifest.Open(data, a.Ring)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", k, err)
		}
		obj, _, err := a.B.Get(ctx, m.ObjectKey)
		if err != nil {
			return fmt.Errorf("batch %s: %w", m.ObjectKey, err)
		}
		f, err := batch.Open(bytes.NewReader(obj))
		if err != nil {
			return fmt.Errorf("batch %s: %w", m.ObjectKey, err)
		}
		ids, err := f.Strings(ctx, "record_id")
		if err != nil {
			f.Close()
			return err
		}
		vers, err := f.Uint32s(ctx, "version")
		f.Close()
		if err != nil {
			return err
		}
		if int64(len(ids)) != m.Count {
			return fmt.Errorf("batch %s: %d rows, manifest says %d", m.ObjectKey, len(ids), m.Count)
		}
		for i, id := range ids {
			a.Leaves[IDVersion{id, vers[i]}]++
		}
		a.seen[k] = true
	}
	return nil
}

// Latest returns each archived record's highest version.
func (a *Archive) Latest() map[string]uint32 {
	out := map[string]uint32{}
	for iv := range a.Leaves {
		if iv.V > out[iv.ID] {
			out[iv.ID] = iv.V
		}
	}
	return out
}
