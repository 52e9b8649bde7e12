package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/backoff"
	"github.com/auditline/auditline/ledger"
	"github.com/auditline/auditline/privacy/capture"
	"github.com/auditline/auditline/privacy/pseudonym"
)

// Settings is what the caller hands the store besides its configuration.
type Settings struct {
	Logger   *slog.Logger          // nil: slog.Default()
	Registry prometheus.Registerer // nil: a private registry (metrics unexported)
	// Capture is the capture policy raw_events bodies follow (the pipeline's
	// one policy, enrich.content.policy; "" is the default, hash) unless
	// store.raw_events_full opts in to the original bytes.
	Capture capture.Policy
	// Pseudonyms, when set, pseudonymise the identity members of raw_events
	// bodies as the records' fields are (enrich.content.pseudonymise), even
	// under store.raw_events_full.
	Pseudonyms *pseudonym.Pseudonymiser
}

// Store consumes the decisions topic (and, with RawEvents, every raw topic
// and the DLQ) and writes ClickHouse.
type Store struct {
	cfg    Config
	kafka  topic.Config
	topics raw.Topics
	set    Settings
	log    *slog.Logger
	conn   driver.Conn
	m      *metrics
	lag    *lagCollector
	ledger *ledger.Monitor
}

// New builds the store. It does not contact any server: Run waits for
// ClickHouse, then makes its Kafka readers.
func New(cfg Config, shared topic.Shared, set Settings) (*Store, error) {
	kafka, topics := shared.Kafka, shared.Topics
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BatchRows > kafka.MaxOutstanding {
		return nil, fmt.Errorf("store.batch_rows: %d exceeds kafka.max_outstanding (%d): a full batch could never form", cfg.BatchRows, kafka.MaxOutstanding)
	}
	if set.Logger == nil {
		set.Logger = slog.Default()
	}
	if set.Registry == nil {
		set.Registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(set.Registry)
	if err != nil {
		return nil, fmt.Errorf("store metrics: %w", err)
	}
	lag := newLagCollector()
	if err := set.Registry.Register(lag); err != nil {
		return nil, fmt.Errorf("store metrics: %w", err)
	}
	conn, err := Open(cfg.ClickHouse)
	if err != nil {
		return nil, err
	}
	mon, err := ledger.NewMonitor(cfg.Ledger, conn, cfg.ClickHouse.Database, set.Registry, set.Logger.With("component", "ledger"))
	if err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, kafka: kafka, topics: topics, set: set, log: set.Logger, conn: conn, m: m, lag: lag, ledger: mon}, nil
}

// Ready reports whether ClickHouse answers and decision_records exists.
func (s *Store) Ready(ctx context.Context) error {
	cols, err := tableColumns(ctx, s.conn, s.cfg.ClickHouse.Database, TableDecisions)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	if len(cols) == 0 {
		return fmt.Errorf("clickhouse: %s.%s missing (run 'auditline migrate')", s.cfg.ClickHouse.Database, TableDecisions)
	}
	return nil
}

// Run consumes until ctx ends (then it inserts what it holds, commits and
// returns nil) or until a permanent failure (returned). While ClickHouse is
// unreachable it waits and retries; it never skips a message.
func (s *Store) Run(ctx context.Context) error {
	defer s.conn.Close()
	srv, err := s.waitServer(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := s.checkSchema(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	sharded, err := s.shardedTables(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.log.Info("store starting", "clickhouse", srv.String(), "database", s.cfg.ClickHouse.Database,
		"dedup_token", srv.DedupToken(), "raw_events", s.cfg.RawEvents, "raw_events_capture", s.rawCapture().Policy(), "sharded", sharded[TableDecisions])

	type job struct {
		group string
		topic string
		w     *writer
	}
	jobs := []job{{s.cfg.Group, s.topics.Decisions(),
		newWriter(TableDecisions, s.cfg.ClickHouse.Database, s.conn, srv, s.cfg, func() rows { return newDecisionRows() }, s.log, s.m)}}
	if s.cfg.RawEvents {
		for _, t := range []string{s.topics.RawLiteLLM(), s.topics.RawGateway(), s.topics.RawAlerts(), s.topics.RawAdmin(), s.topics.DLQ()} {
			bodyMax, capt := s.cfg.RawBodyMax, s.rawCapture()
			jobs = append(jobs, job{s.cfg.Group + "-" + strings.TrimPrefix(t, s.topics.Prefix), t,
				newWriter(TableRawEvents, s.cfg.ClickHouse.Database, s.conn, srv, s.cfg, func() rows { return newRawRows(bodyMax, capt) }, s.log, s.m)})
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.ledger.Run(ctx) }) // the live completeness ledger: never fails, stops with ctx
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		j.w.sharded = sharded[j.w.table]
		opts := topic.ReaderOptions{TickInterval: tickInterval(s.cfg.Linger), Logger: s.log.With("topic", j.topic)}
		r, err := topic.NewReader(s.readerConfig(), j.group, []string{j.topic}, j.w, opts)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		s.lag.add(r)
		wg.Go(func() {
			if err := r.Run(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", j.topic, err)
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// tickInterval is how often the writers look for a partial batch that has
// waited linger. A batch is inserted on the first tick at or after its
// linger, so a coarse tick adds up to one interval to the store's latency
// (linger/4 did: up to 250 ms of the success p99 at the default 1 s,
// bench/PROFILE.md, issue 17 seventh pass); a tick costs a map lookup per
// partition. Where batches are cut by linger, one INSERT follows another
// after linger + the INSERT's own time + the tick's overshoot (a batch
// starts with the first message handled after the last INSERT), so the
// finer tick makes up to ~10 % more INSERTs than linger/4 did (an eighth
// of a linger less per cycle, on average).
func tickInterval(linger time.Duration) time.Duration {
	return max(linger/50, 10*time.Millisecond)
}

// readerConfig is the Kafka configuration of the store's readers: a
// partition holds at most 1.25 batches of messages not yet inserted (the
// one being inserted, a quarter of the next fetched ahead) before it is
// paused, unless kafka.max_outstanding_bytes is lower. The store inserts
// one batch at a time per partition, and its INSERTs are bound by
// ClickHouse's fixed cost per INSERT, not by the fetch: the bytes a second
// batch fetched ahead would take buy more from a larger batch (fewer
// INSERTs), and each of the six topics it reads would hold them.
func (s *Store) readerConfig() topic.Config {
	kc := s.kafka
	if kc.MaxOutstandingBytes == 0 {
		kc.MaxOutstandingBytes = topic.DefaultMaxOutstandingBytes
	}
	kc.MaxOutstandingBytes = min(kc.MaxOutstandingBytes, s.cfg.BatchBytes+s.cfg.BatchBytes/4)
	return kc
}

// waitServer detects the server version, retrying while it is unreachable.
func (s *Store) waitServer(ctx context.Context) (Server, error) {
	var srv Server
	err := backoff.Retry(ctx, backoff.Policy{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax}, func(ctx context.Context) error {
		dctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
		defer cancel()
		var err error
		if srv, err = Detect(dctx, s.conn); err == nil {
			return nil
		}
		if _, permanent := classify(err); permanent {
			return backoff.Permanent(err)
		}
		s.m.up.Set(0)
		return err
	}, func(attempt int, err error, _ time.Duration) {
		if attempt%20 == 1 {
			s.log.Warn("waiting for clickhouse", "addr", s.cfg.ClickHouse.Addr, "err", err)
		}
	})
	if err != nil {
		return Server{}, err
	}
	s.m.up.Set(1)
	if !srv.AtLeast(Oldest) {
		return srv, fmt.Errorf("clickhouse %s is older than %s, the oldest supported", srv, Oldest)
	}
	return srv, nil
}

// shardedTables says which tables the store writes are Distributed (a
// cluster: sharded.go), retrying while ClickHouse is unreachable.
func (s *Store) shardedTables(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := backoff.Retry(ctx, backoff.Policy{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax}, func(ctx context.Context) error {
		for _, t := range []string{TableDecisions, TableRawEvents} {
			d, err := isDistributed(ctx, s.conn, s.cfg.ClickHouse.Database, t)
			if err != nil {
				return err
			}
			out[t] = d
		}
		return nil
	}, nil)
	return out, err
}

// checkSchema fails early, with the fix in the message, when migrate has not
// created the tables or decision_records lacks a derived column.
func (s *Store) checkSchema(ctx context.Context) error {
	have, err := tableColumns(ctx, s.conn, s.cfg.ClickHouse.Database, TableDecisions)
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range decisionColumns() {
		if _, ok := have[c.Name]; !ok {
			missing = append(missing, c.Name)
		}
	}
	switch {
	case len(have) == 0:
		return fmt.Errorf("clickhouse: %s.%s does not exist: run 'auditline migrate'", s.cfg.ClickHouse.Database, TableDecisions)
	case len(missing) > 0:
		return fmt.Errorf("clickhouse: %s.%s lacks columns %s: run 'auditline migrate'", s.cfg.ClickHouse.Database, TableDecisions, strings.Join(missing, ", "))
	}
	return nil
}

// rawCapture is the policy raw_events bodies follow: full only when
// store.raw_events_full opts in, else the pipeline's capture policy.
func (s *Store) rawCapture() *capture.Capturer {
	if s.cfg.RawEventsFull {
		return capture.New(capture.Full).WithPseudonyms(s.set.Pseudonyms)
	}
	return capture.New(s.set.Capture).WithPseudonyms(s.set.Pseudonyms)
}
