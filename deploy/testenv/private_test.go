package testenv

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestStartPrivate starts, stops and restarts a private server of each kind.
func TestStartPrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	for _, name := range []string{"clickhouse", "clickhouse26", "minio", "kafka"} {
		t.Run(name, func(t *testing.T) {
			p := StartPrivate(t, name)
			dial := func() error {
				c, err := net.DialTimeout("tcp", p.Addr, time.Second)
				if err == nil {
					c.Close()
				}
				return err
			}
			if err := dial(); err != nil {
				t.Fatalf("%s not listening: %v", name, err)
			}
			p.Stop(t)
			if err := dial(); err == nil {
				t.Fatalf("%s still listening after Stop", name)
			}
			p.Start(t)
			if err := dial(); err != nil {
				t.Fatalf("%s not listening after restart: %v", name, err)
			}
		})
	}
}

// TestClickHouse26Renewal runs a private 26.x engine whose server process
// lives 3 s: the supervisor renews it, the data stays, a pooled clickhouse-go
// connection works again after the renewal, and killing the supervisor
// (SIGKILL) stops the server process too.
func TestClickHouse26Renewal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	t.Setenv("CH26_LIFETIME", "3")
	p := StartPrivate(t, "clickhouse26")
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{p.Addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	retry := func(what string, fn func() error) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := fn()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	retry("create", func() error {
		return conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS default.renewal (n UInt32) ENGINE = MergeTree ORDER BY n")
	})
	retry("insert", func() error { return conn.Exec(ctx, "INSERT INTO default.renewal SELECT number FROM numbers(1000)") })
	logf := filepath.Join(p.Data, "log", "clickhouse26.log")
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(logf)
		if strings.Count(string(b), "renewing the server") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two renewals within 60 s; log:\n%s", b)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var n uint64
	retry("count after renewals", func() error {
		return conn.QueryRow(ctx, "SELECT count() FROM default.renewal").Scan(&n)
	})
	if n != 1000 && n != 2000 { // an insert whose reply was lost at a renewal may have been retried
		t.Fatalf("%d rows after renewals, want 1000", n)
	}
	// A supervisor killed outright takes its server process with it.
	p.Signal(t, "KILL")
	deadline = time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening 10 s after the supervisor was killed: the server process outlived it")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
