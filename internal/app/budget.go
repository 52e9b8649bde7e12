package app

import (
	"github.com/auditline/auditline/enrich"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/store"
)

// enrichShare is the part of enrich's memory budget (memory.enrich_limit, per
// partition) its amendment cache (enrich.cache_bytes), a fetch
// (kafka.fetch_max_bytes) and its producer's buffer (kafka.max_buffer_bytes)
// may each hold. pendingShare is the part its pending requests and unread
// events may hold per input topic (kafka.max_outstanding_bytes): a third,
// 64 MiB of the default budget as before, because what pending requests
// need is rate × waits, not a choice — below it a partition pauses while its
// requests wait for stream time, and the valve that then emits the oldest
// early (timed_out) would cut joins that a larger bound keeps whole
// (enrich's crash test failed at 24 MiB: bench/PROFILE.md, seventh pass).
// raw.litellm carries the payloads; raw.gateway, under the same bound, the
// sparse events.
const (
	enrichShare  = 8
	pendingShare = 3
)

// EnrichConfig returns the enrich section and the Kafka settings enrich runs
// with: each bound is the configured key or its share of memory.enrich_limit,
// whichever is lower (a limit of 0: the keys alone). Validate has checked
// the limit (0 or at least 64 MiB), so every derived bound is at least
// 8 MiB.
func (c *Config) EnrichConfig() (enrich.Config, topic.Config) {
	e, k := c.Enrich, c.Kafka
	if l := c.Memory.EnrichLimit; l > 0 {
		share := int(l / enrichShare)
		e.CacheBytes = min(e.CacheBytes, share)
		k.MaxOutstandingBytes = min(orDefault(k.MaxOutstandingBytes, topic.DefaultMaxOutstandingBytes), int(l/pendingShare))
		k.FetchMaxBytes = min(orDefault(k.FetchMaxBytes, topic.DefaultFetchMaxBytes), share)
		k.MaxBufferBytes = min(orDefault(k.MaxBufferBytes, topic.DefaultMaxBufferBytes), share)
	}
	return e, k
}

// orDefault is v, or def when v is not set (a Config built by hand; the
// Kafka clients read 0 as their default too).
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// storeShare: the store's batch (store.batch_bytes) is at most a tenth of
// its memory budget (memory.stage_limit): per topic it reads, the store
// holds up to 1.25 batches of messages, the batch's decoded rows and, while
// inserting, its copy into clickhouse-go's blocks and their encoded,
// compressed form, and at the benchmark's load two topics carry nearly all
// the bytes (decisions, raw.litellm). At the default limit this is the
// default batch (20 MiB): the derivation scales the batch down with a
// smaller budget instead of letting the collector run without pause.
const storeShare = 10

// StoreConfig returns the store section the store runs with: store.batch_bytes
// or its share of memory.stage_limit, whichever is lower (a limit of 0: the
// key alone).
func (c *Config) StoreConfig() store.Config {
	s := c.Store
	if l := c.Memory.StageLimit; l > 0 {
		s.BatchBytes = min(s.BatchBytes, int(l/storeShare))
	}
	return s
}
