package app

import "testing"

// TestEnrichBudget: enrich's working sets per partition are the keys or
// their share of memory.enrich_limit (a third for pending requests and
// unread events per input topic, an eighth for the cache, a fetch and the
// producer's buffer), whichever is lower; without a limit the keys alone;
// and a partition's working set with raw.litellm's bound full is at most
// three quarters of the budget.
func TestEnrichBudget(t *testing.T) {
	const mi = 1 << 20
	type bounds struct{ cache, outstanding, fetch, buffer int }
	for _, tc := range []struct {
		name  string
		limit int64
		keys  bounds // 0: the key's default
		want  bounds
	}{
		{"defaults", DefaultEnrichLimit, bounds{}, bounds{24 * mi, 64 * mi, 24 * mi, 24 * mi}},
		{"no limit: the keys", 0, bounds{}, bounds{64 * mi, 64 * mi, 50 * mi, 64 * mi}},
		{"no limit, keys set", 0, bounds{100 * mi, 90 * mi, 80 * mi, 70 * mi}, bounds{100 * mi, 90 * mi, 80 * mi, 70 * mi}},
		{"the smallest limit", 64 * mi, bounds{}, bounds{8 * mi, 64 * mi / 3, 8 * mi, 8 * mi}},
		{"256 MiB", 256 * mi, bounds{}, bounds{32 * mi, 64 * mi, 32 * mi, 32 * mi}},
		{"128 MiB", 128 * mi, bounds{}, bounds{16 * mi, 128 * mi / 3, 16 * mi, 16 * mi}},
		{"a large limit: the keys", 1 << 30, bounds{}, bounds{64 * mi, 64 * mi, 50 * mi, 64 * mi}},
		{"keys lower than their share", DefaultEnrichLimit, bounds{16 * mi, 32 * mi, 0, 4 * mi}, bounds{16 * mi, 32 * mi, 24 * mi, 4 * mi}},
		{"keys above their share", DefaultEnrichLimit, bounds{128 * mi, 128 * mi, 128 * mi, 128 * mi}, bounds{24 * mi, 64 * mi, 24 * mi, 24 * mi}},
	} {
		c := NewDefaultConfig()
		c.Memory.EnrichLimit = tc.limit
		set := func(dst *int, v int) {
			if v != 0 {
				*dst = v
			}
		}
		set(&c.Enrich.CacheBytes, tc.keys.cache)
		set(&c.Kafka.MaxOutstandingBytes, tc.keys.outstanding)
		set(&c.Kafka.FetchMaxBytes, tc.keys.fetch)
		set(&c.Kafka.MaxBufferBytes, tc.keys.buffer)
		if err := c.Validate("enrich"); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		before := bounds{c.Enrich.CacheBytes, c.Kafka.MaxOutstandingBytes, c.Kafka.FetchMaxBytes, c.Kafka.MaxBufferBytes}
		e, k := c.EnrichConfig()
		if got := (bounds{e.CacheBytes, k.MaxOutstandingBytes, k.FetchMaxBytes, k.MaxBufferBytes}); got != tc.want {
			t.Errorf("%s: cache, outstanding, fetch, buffer = %d, %d, %d, %d MiB, want %d, %d, %d, %d MiB", tc.name,
				got.cache/mi, got.outstanding/mi, got.fetch/mi, got.buffer/mi, tc.want.cache/mi, tc.want.outstanding/mi, tc.want.fetch/mi, tc.want.buffer/mi)
		}
		if err := e.Validate(); err != nil {
			t.Errorf("%s: derived enrich section: %v", tc.name, err)
		}
		if err := k.Validate(); err != nil {
			t.Errorf("%s: derived kafka section: %v", tc.name, err)
		}
		// The configuration itself is untouched: what 'auditline config'
		// prints, and what the other stages read.
		if c.Enrich.CacheBytes != before.cache || c.Kafka.MaxOutstandingBytes != before.outstanding ||
			c.Kafka.FetchMaxBytes != before.fetch || c.Kafka.MaxBufferBytes != before.buffer {
			t.Errorf("%s: EnrichConfig changed the configuration", tc.name)
		}
		// One partition's working set: the cache, raw.litellm's pending and
		// unread events (raw.gateway, under the same bound, carries the
		// sparse events), a fetch and the producer's buffer.
		if tc.limit > 0 {
			if ws := int64(e.CacheBytes + k.MaxOutstandingBytes + k.FetchMaxBytes + k.MaxBufferBytes); ws > tc.limit*3/4 {
				t.Errorf("%s: working set %d MiB, more than three quarters of the budget (%d MiB)", tc.name, ws/mi, tc.limit/mi)
			}
		}
	}
}

// TestEnrichProcessLimit: the soft limit of a process running enrich is the
// per-partition budget times kafka.partitions, so it never sits below what
// the bounds let the process hold; 0 stays none.
func TestEnrichProcessLimit(t *testing.T) {
	for _, tc := range []struct {
		limit      int64
		partitions int
		want       int64
	}{
		{DefaultEnrichLimit, 1, DefaultEnrichLimit},
		{DefaultEnrichLimit, 4, 4 * DefaultEnrichLimit},
		{256 << 20, 12, 12 * 256 << 20},
		{0, 4, 0},
	} {
		c := NewDefaultConfig()
		c.Memory.EnrichLimit, c.Kafka.Partitions = tc.limit, tc.partitions
		if got := c.MemoryLimit("enrich"); got != tc.want {
			t.Errorf("enrich_limit %d, %d partitions: limit %d, want %d", tc.limit, tc.partitions, got, tc.want)
		}
	}
}

// TestStoreBudget: the store's batch is store.batch_bytes or a tenth of
// memory.stage_limit, whichever is lower; without a limit the key alone.
func TestStoreBudget(t *testing.T) {
	const mi = 1 << 20
	for _, tc := range []struct {
		limit      int64
		batchBytes int // 0: the default
		want       int
	}{
		{DefaultStageLimit, 0, 20 * mi},
		{0, 0, 20 * mi},
		{0, 100 * mi, 100 * mi},
		{100 * mi, 0, 10 * mi},
		{64 * mi, 0, 64 * mi / 10},
		{1 << 30, 0, 20 * mi},
		{1 << 30, 64 * mi, 64 * mi},
		{DefaultStageLimit, 8 * mi, 8 * mi},
	} {
		c := NewDefaultConfig()
		c.Memory.StageLimit = tc.limit
		if tc.batchBytes != 0 {
			c.Store.BatchBytes = tc.batchBytes
		}
		before := c.Store.BatchBytes
		s := c.StoreConfig()
		if s.BatchBytes != tc.want {
			t.Errorf("stage_limit %d MiB, batch_bytes %d: batch %d, want %d", tc.limit/mi, tc.batchBytes, s.BatchBytes, tc.want)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("stage_limit %d MiB: derived store section: %v", tc.limit/mi, err)
		}
		if c.Store.BatchBytes != before {
			t.Errorf("StoreConfig changed store.batch_bytes of the configuration")
		}
	}
}
