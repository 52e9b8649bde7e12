//go:build litellm

package litellm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/ledger"
	"github.com/auditline/auditline/store"
)

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// Gate modes: how the gate between the plugin and ingest answers.
const (
	pass    int32 = iota // forward to ingest
	fail503              // answer 503 at once
	hang                 // never answer (the plugin's send timeout fires)
)

// gate is a reverse proxy between the plugin and ingest that can answer 503
// or hang instead of forwarding.
type gate struct {
	URL  string
	mode atomic.Int32
	hits [3]atomic.Int64
	srv  *http.Server
}

func newGate(t *testing.T, ingest string) *gate {
	t.Helper()
	u, err := url.Parse(ingest)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	g := &gate{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.URL = "http://" + ln.Addr().String()
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := g.mode.Load()
		g.hits[m].Add(1)
		switch m {
		case fail503:
			http.Error(w, "gate: 503 for the test", http.StatusServiceUnavailable)
		case hang:
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Minute):
			}
		default:
			rp.ServeHTTP(w, r)
		}
	})}
	go func() { _ = g.srv.Serve(ln) }()
	t.Cleanup(func() { _ = g.srv.Close() })
	return g
}

func (g *gate) set(m int32) { g.mode.Store(m) }

// proxy is a LiteLLM proxy of the suite.
type proxy struct {
	*stacktest.LiteLLM
	name string
	t    *testing.T
}

func (p *proxy) spoolDir() string { return filepath.Join(p.Data, "litellm-spool") }

// emitters returns the emitter id of every spool slot of the proxy.
func (p *proxy) emitters() map[string]bool {
	out := map[string]bool{}
	dirs, _ := filepath.Glob(filepath.Join(p.spoolDir(), "slot-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "emitter.json"))
		if err != nil {
			continue
		}
		var e struct{ Emitter string }
		if json.Unmarshal(b, &e) == nil && e.Emitter != "" {
			out[e.Emitter] = true
		}
	}
	return out
}

func (p *proxy) mainPid() int {
	b, err := os.ReadFile(filepath.Join(p.Data, "run", "litellm.pid"))
	if err != nil {
		p.t.Fatalf("%s: pid file: %v", p.name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		p.t.Fatalf("%s: pid file %q", p.name, b)
	}
	return pid
}

// slotPid is the pid of the worker holding spool slot n (slots.py writes it
// into the slot's lock file).
func (p *proxy) slotPid(n int) int {
	b, err := os.ReadFile(filepath.Join(p.spoolDir(), fmt.Sprintf("slot-%d", n), "lock"))
	if err != nil {
		p.t.Fatalf("%s: slot %d lock: %v", p.name, n, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		p.t.Fatalf("%s: slot %d lock holds %q", p.name, n, b)
	}
	return pid
}

// killTree SIGKILLs pid and every process descending from it, and waits
// until they are gone.
func killTree(t *testing.T, pid int) {
	t.Helper()
	pids := append(descendants(pid), pid)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	err := stacktest.Poll(30*time.Second, 100*time.Millisecond, func() error {
		for _, p := range pids {
			if alive(p) {
				return fmt.Errorf("pid %d still alive", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// a zombie (state Z) is dead for our purpose
	if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}

func descendants(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 {
			pp, _ := strconv.Atoi(f[1])
			parent[p] = pp
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

// kill SIGKILLs the whole proxy (the main process and its workers).
func (p *proxy) kill() { killTree(p.t, p.mainPid()) }

// restart starts the proxy again on the same data folder and spool, with
// env added to (and overriding) its environment.
func (p *proxy) restart(env ...string) {
	p.t.Helper()
	start := time.Now()
	// The pid file names the killed process, which may linger as a zombie
	// nobody reaps (start.sh would take it for a live proxy).
	_ = os.Remove(filepath.Join(p.Data, "run", "litellm.pid"))
	cmd := exec.Command(filepath.Join(stacktest.RepoRoot(), "deploy", "litellm", "start.sh"), "litellm")
	cmd.Env = append(append([]string{}, p.Env...), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s: start.sh litellm: %v\n%s\nlog:\n%s", p.name, err, out, stacktest.Tail(p.Log(), 4000))
	}
	stacktest.Say("%s restarted on its spool in %s", p.name, time.Since(start).Round(time.Second))
	// No request here: a restarted worker that serves nothing must leave no
	// number behind that no record accounts for (the plugin announces its
	// gateway_config with the first event that runs under it).
}

// reply is what one client request got.
type reply struct {
	status int
	callID string
	err    error
	start  time.Time
}

type client struct{ hc *http.Client }

func newClient(conc int) *client {
	return &client{hc: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}}
}

func (c *client) chat(ctx context.Context, p *proxy, prompt string) reply {
	b, _ := json.Marshal(map[string]any{"model": "chat-a", "messages": []map[string]string{{"role": "user", "content": prompt}}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+p.Master)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return reply{status: resp.StatusCode, callID: resp.Header.Get("x-litellm-call-id"), err: err}
}

// load sends n requests (n == 0: until ctx ends) with conc at once, each
// with its own prompt (no cache hits), and returns every reply.
func load(ctx context.Context, p *proxy, label string, n, conc int) []reply {
	c := newClient(conc)
	var mu sync.Mutex
	var out []reply
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1)
				if n > 0 && i > int64(n) {
					return
				}
				t0 := time.Now()
				r := c.chat(ctx, p, fmt.Sprintf("%s %s request %d", p.name, label, i))
				r.start = t0
				if r.err != nil && ctx.Err() != nil && n == 0 {
					r.err = nil // cancelled by the end of the load, not sent
					r.status = -1
				}
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// tally splits replies into the call ids answered 200 and counts the rest.
func tally(rs []reply) (ok []string, failed int) {
	for _, r := range rs {
		switch {
		case r.status == -1:
		case r.err == nil && r.status == 200 && r.callID != "":
			ok = append(ok, r.callID)
		default:
			failed++
		}
	}
	return ok, failed
}

// rec is a record's latest version in ClickHouse.
type rec struct {
	Completeness, Emitter string
}

// records reads every record's latest version by call id.
func records(ctx context.Context, st *stacktest.Stack) (map[string]rec, error) {
	q := "SELECT argMax(call_id, version), argMax(completeness, version), argMax(emitter_id, version) FROM `" +
		st.Config.Store.ClickHouse.Database + "`." + store.TableDecisions + " GROUP BY record_id"
	rows, err := st.ClickHouse().Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]rec{}
	for rows.Next() {
		var id string
		var r rec
		if err := rows.Scan(&id, &r.Completeness, &r.Emitter); err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, rows.Err()
}

// missing returns the call ids of ids without a record.
func missing(ids []string, got map[string]rec) []string {
	var out []string
	for _, id := range ids {
		if _, ok := got[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// waitRecords waits until every call id has a record and returns them all.
func waitRecords(t *testing.T, st *stacktest.Stack, ids []string, within time.Duration) map[string]rec {
	t.Helper()
	var got map[string]rec
	err := stacktest.Poll(within, 2*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		if got, err = records(ctx, st); err != nil {
			return err
		}
		if m := missing(ids, got); len(m) > 0 {
			return fmt.Errorf("%d of %d requests have no record (first: %s)", len(m), len(ids), m[0])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after %s: %v", within, err)
	}
	return got
}

// coverage reads the ledger from ClickHouse: every emitter's coverage, by id.
func coverage(t *testing.T, st *stacktest.Stack) map[string]ledger.Emitter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := ledger.Read(ctx, st.ClickHouse(), st.Config.Store.ClickHouse.Database, time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ledger.Emitter{}
	for _, e := range b.Emitters() {
		out[e.ID] = e
	}
	return out
}

// gapsOf sums the missing numbers of the proxy's emitters and describes them.
func gapsOf(t *testing.T, st *stacktest.Stack, p *proxy) (int64, string) {
	t.Helper()
	cov := coverage(t, st)
	var n int64
	var parts []string
	for id := range p.emitters() {
		e, ok := cov[id]
		if !ok {
			parts = append(parts, "emitter "+id+": no record")
			continue
		}
		n += e.Missing()
		parts = append(parts, "emitter "+id+": "+e.Summary())
	}
	return n, strings.Join(parts, "; ")
}

// metric reads one sample of the plugin's Prometheus text (the first series
// whose name and labels contain every part of match).
func metric(t *testing.T, url string, match ...string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("plugin metrics %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
next:
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, m := range match {
			if !strings.Contains(line, m) {
				continue next
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	t.Fatalf("no metric %v in %s:\n%s", match, url, b)
	return 0
}
