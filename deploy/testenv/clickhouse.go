package testenv

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The ClickHouse engines the tests run on (DESIGN.md §6): Debian's server
// 18.16 (AUDITLINE_CLICKHOUSE) and a 26.x engine from PyPI chdb-core
// (AUDITLINE_CLICKHOUSE_MODERN; deploy/local/start.sh clickhouse26).
const (
	clickHouseVar       = "AUDITLINE_CLICKHOUSE"
	clickHouseModernVar = "AUDITLINE_CLICKHOUSE_MODERN"
	modernHint          = "start the 26.x engine: deploy/local/start.sh clickhouse26 && source .data/env"
)

// Engine is one ClickHouse server.
type Engine struct {
	Var     string // the environment variable that names it
	Addr    string // host:port of the native protocol
	HTTP    string // host:port of the HTTP interface, "" when unknown
	Version string // version(), e.g. "18.16.1" or "26.9.2.1"
}

// Major returns the major version (18, 26, …), 0 when unknown.
func (e Engine) Major() int {
	n := 0
	for _, c := range e.Version {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

var (
	engineMu sync.Mutex
	versions = map[string]string{}  // addr → version()
	running  = map[string]*Engine{} // subtest name → its engine (ForEachClickHouse)
)

// ForEachClickHouse runs fn once per ClickHouse engine, each as a subtest
// named after the server's version ("clickhouse-18.16", "clickhouse-26.9"),
// so that a failure says which engine failed. Inside fn (and in any helper
// fn calls), ClickHouse(t) and ClickHouseEngine(t) return that subtest's
// engine. An engine whose variable is unset is a skipped subtest, or a
// failed one under AUDITLINE_REQUIRE_SERVERS=1 (CI).
func ForEachClickHouse(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	for _, v := range []struct{ name, hint, http string }{
		{clickHouseVar, startHint, os.Getenv(clickHouseVar + "_HTTP")},
		{clickHouseModernVar, modernHint, os.Getenv(clickHouseModernVar + "_HTTP")},
	} {
		addr := os.Getenv(v.name)
		if addr == "" {
			t.Run(v.name, func(t *testing.T) {
				if os.Getenv("AUDITLINE_REQUIRE_SERVERS") == "1" {
					t.Fatalf("%s is not set but AUDITLINE_REQUIRE_SERVERS=1: %s", v.name, v.hint)
				}
				t.Skipf("%s not set; %s", v.name, v.hint)
			})
			continue
		}
		e := &Engine{Var: v.name, Addr: addr, HTTP: v.http}
		e.Version = version(addr)
		name := "clickhouse-" + majorMinor(e.Version)
		if e.Version == "" {
			name = "clickhouse-unreachable-" + v.name
		}
		t.Run(name, func(t *testing.T) {
			if e.Version == "" {
				t.Fatalf("%s=%s does not answer SELECT version(); %s", v.name, addr, v.hint)
			}
			engineMu.Lock()
			running[t.Name()] = e
			engineMu.Unlock()
			// Cleanup, not defer: parallel subtests of fn run after it returns.
			t.Cleanup(func() {
				engineMu.Lock()
				delete(running, t.Name())
				engineMu.Unlock()
			})
			fn(t)
		})
	}
}

// ClickHouseEngine returns the engine of the enclosing ForEachClickHouse
// subtest, or else the default engine (AUDITLINE_CLICKHOUSE), gated like
// every server.
func ClickHouseEngine(t testing.TB) Engine {
	t.Helper()
	if e := current(t); e != nil {
		return *e
	}
	addr := need(t, clickHouseVar)
	return Engine{Var: clickHouseVar, Addr: addr, HTTP: os.Getenv(clickHouseVar + "_HTTP"), Version: version(addr)}
}

// current finds the engine registered for t or one of its parent tests.
func current(t testing.TB) *Engine {
	engineMu.Lock()
	defer engineMu.Unlock()
	for name := t.Name(); ; {
		if e, ok := running[name]; ok {
			return e
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return nil
		}
		name = name[:i]
	}
}

// version asks addr for version(), once per address; "" when it does not answer.
func version(addr string) string {
	engineMu.Lock()
	v, ok := versions[addr]
	engineMu.Unlock()
	if ok {
		return v
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
			v = ""
		}
		cancel()
		conn.Close()
	}
	if v != "" {
		engineMu.Lock()
		versions[addr] = v
		engineMu.Unlock()
	}
	return v
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// OptimizeFinal merges every partition of db.table into one part, as
// OPTIMIZE … FINAL does, but never silently does nothing: a server busy
// merging makes a plain OPTIMIZE a no-op (seen on 18.16 under load), so each
// partition is optimized with optimize_throw_if_noop = 1 and retried for up
// to a minute, and the test fails if any partition keeps more than one part.
func OptimizeFinal(t testing.TB, conn driver.Conn, db, table string) {
	t.Helper()
	ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"optimize_throw_if_noop": 1}))
	parts := func() map[string]uint64 {
		t.Helper()
		rows, err := conn.Query(ctx, "SELECT partition, count() FROM system.parts WHERE database = ? AND table = ? AND active GROUP BY partition", db, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]uint64{}
		for rows.Next() {
			var p string
			var n uint64
			if err := rows.Scan(&p, &n); err != nil {
				t.Fatal(err)
			}
			out[p] = n
		}
		return out
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var errs []string
		for p := range parts() {
			q := "OPTIMIZE TABLE `" + db + "`.`" + table + "` PARTITION " + p + " FINAL"
			if err := conn.Exec(ctx, q); err != nil {
				errs = append(errs, err.Error())
			}
		}
		merged := true
		for _, n := range parts() {
			merged = merged && n == 1
		}
		if merged {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("OPTIMIZE FINAL of %s.%s left partitions with several parts %v: %v", db, table, parts(), errs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
