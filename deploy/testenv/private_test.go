package testenv

import (
	"net"
	"testing"
	"time"
)

// TestStartPrivate starts, stops and restarts a private server of each kind.
func TestStartPrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	for _, name := range []string{"clickhouse", "minio", "kafka"} {
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
