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
)

// Settings is what the caller hands the store besides its Config.
type Settings struct {
	Logger   *slog.Logger          // nil: slog.Default()
	Registry prometheus.Registerer // nil: a private registry (metrics unexported)
	// ReaderOptions tune the Kafka readers (tests shorten timeouts); the
	// store sets TickInterval and Logger itself.
	ReaderOptions topic.ReaderOptions
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
}

// New builds the store. It does not contact any server: Run waits for
// ClickHouse and Kafka.
func New(cfg Config, kafka topic.Config, topics raw.Topics, set Settings) (*Store, error) {
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
	return &Store{cfg: cfg, kafka: kafka, topics: topics, set: set, log: set.Logger, conn: conn, m: m, lag: lag}, nil
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
	s.log.Info("store starting", "clickhouse", srv.String(), "database", s.cfg.ClickHouse.Database,
		"dedup_token", srv.DedupToken(), "raw_events", s.cfg.RawEvents)

	type job struct {
		group string
		topic string
		w     *writer
	}
	jobs := []job{{s.cfg.Group, s.topics.Decisions(),
		newWriter(TableDecisions, s.cfg.ClickHouse.Database, s.conn, srv, s.cfg, func() rows { return newDecisionRows() }, s.log, s.m)}}
	if s.cfg.RawEvents {
		for _, t := range []string{s.topics.RawLiteLLM(), s.topics.RawGateway(), s.topics.RawAlerts(), s.topics.RawAdmin(), s.topics.DLQ()} {
			bodyMax := s.cfg.RawBodyMax
			jobs = append(jobs, job{s.cfg.Group + "-" + strings.TrimPrefix(t, s.topics.Prefix), t,
				newWriter(TableRawEvents, s.cfg.ClickHouse.Database, s.conn, srv, s.cfg, func() rows { return newRawRows(bodyMax) }, s.log, s.m)})
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		opts := s.set.ReaderOptions
		opts.TickInterval = max(s.cfg.Linger/4, 20*time.Millisecond)
		opts.Logger = s.log.With("topic", j.topic)
		r, err := topic.NewReader(s.kafka, j.group, []string{j.topic}, j.w, opts)
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

// waitServer detects the server version, retrying while it is unreachable.
func (s *Store) waitServer(ctx context.Context) (Server, error) {
	delay := s.cfg.RetryMin
	for attempt := 0; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
		srv, err := Detect(dctx, s.conn)
		cancel()
		if err == nil {
			s.m.up.Set(1)
			if !srv.AtLeast(Oldest) {
				return srv, fmt.Errorf("clickhouse %s is older than %s, the oldest supported", srv, Oldest)
			}
			return srv, nil
		}
		if _, permanent := classify(err); permanent {
			return Server{}, err
		}
		s.m.up.Set(0)
		if attempt == 0 || attempt%20 == 0 {
			s.log.Warn("waiting for clickhouse", "addr", s.cfg.ClickHouse.Addr, "err", err)
		}
		select {
		case <-ctx.Done():
			return Server{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, s.cfg.RetryMax)
	}
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
