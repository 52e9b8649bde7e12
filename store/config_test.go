package store

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := func() error { c := NewDefaultConfig(); return c.Validate() }(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string // "" = valid
	}{
		{func(c *Config) { c.RawEventsTTL = 30 * 24 * time.Hour }, ""},
		{func(c *Config) { c.RawEventsTTL = -time.Hour }, "store.raw_events_ttl"},
		{func(c *Config) { c.RawEventsTTL = 1500 * time.Millisecond }, "store.raw_events_ttl"},
		{func(c *Config) { c.BatchRows = 0 }, "store.batch_rows"},
		{func(c *Config) { c.ClickHouse.Addr = []string{"nohost"} }, "store.clickhouse.addr"},
	} {
		c := NewDefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("want valid, got %v", err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("want an error naming %s, got %v", tc.want, err)
		}
	}
}
