package enrich

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
)

// Stage is `auditline enrich`: the alert-table follower, the group Reader on
// raw.litellm + raw.gateway (co-partitioned) and the Writer of decisions.
type Stage struct {
	cfg    Config
	kafka  topic.Config
	topics raw.Topics
	set    Settings

	writer  atomic.Pointer[topic.Writer] // set while Run runs
	alerts  *alertTable
	proc    *Processor
	caught  atomic.Bool // the alert table has read raw.alerts to its end once
	started atomic.Bool
}

// New validates cfg and builds the stage. It connects nothing: Run makes the
// Kafka clients (writer, scanner, reader) and closes them on return.
func New(cfg Config, shared topic.Shared, set Settings) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, kafka: shared.Kafka, topics: shared.Topics, set: set, alerts: newAlertTable()}
	s.proc = newProcessor(cfg, shared.Topics, nil, nil, s.alerts, set)
	return s, nil
}

// Run reads raw.alerts to its end (so that the first records already see the
// budget alerts received before them), then consumes the raw topics until ctx
// ends. On return every partition's finished work is committed; requests
// still pending were not Done and are read again by the next run.
func (s *Stage) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("enrich: Run called twice")
	}
	w, err := topic.NewWriter(s.kafka)
	if err != nil {
		return err
	}
	defer w.Close()
	sc := topic.NewScanner(s.kafka)
	defer sc.Close()
	s.proc.connect(w, kafkaScanner{sc})
	s.writer.Store(w)
	defer s.writer.Store(nil)

	log := s.proc.log
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	caughtUp := make(chan struct{})
	followErr := make(chan error, 1)
	go func() {
		followErr <- topic.Follow(fctx, s.kafka, s.topics.RawAlerts(), log, func(r *kgo.Record) {
			if s.alerts.add(r) {
				s.proc.m.alerts.Inc()
			}
		}, func() {
			s.caught.Store(true)
			close(caughtUp)
		})
	}()
	select {
	case <-caughtUp:
		log.Info("budget alert table loaded", "entities", s.alerts.entities())
	case err := <-followErr:
		if err == nil {
			return nil // ctx ended
		}
		return fmt.Errorf("read %s: %w", s.topics.RawAlerts(), err)
	case <-ctx.Done():
		return nil
	}

	rd, err := topic.NewReader(s.kafka, s.cfg.Group, []string{s.topics.RawLiteLLM(), s.topics.RawGateway()}, s.proc,
		topic.ReaderOptions{CoPartitioned: true, TickInterval: s.cfg.TickInterval, Logger: log})
	if err != nil {
		return err
	}
	s.proc.pos = rd
	runErr := rd.Run(ctx)
	stopFollow()
	if err := <-followErr; err != nil && runErr == nil && ctx.Err() == nil {
		runErr = fmt.Errorf("read %s: %w", s.topics.RawAlerts(), err)
	}
	return runErr
}

// Ready reports whether the broker answers and the alert table is loaded.
func (s *Stage) Ready(ctx context.Context) error {
	w := s.writer.Load()
	if w == nil {
		return errors.New("not running")
	}
	if err := w.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if !s.caught.Load() {
		return errors.New("loading the budget alert table")
	}
	return nil
}
