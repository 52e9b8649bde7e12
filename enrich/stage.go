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

	writer  *topic.Writer
	alerts  *alertTable
	proc    *Processor
	caught  atomic.Bool // the alert table has read raw.alerts to its end once
	started atomic.Bool
}

// New validates cfg and connects the producer (no broker round trip yet).
func New(cfg Config, kafka topic.Config, topics raw.Topics, set Settings) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := topic.NewWriter(kafka)
	if err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, kafka: kafka, topics: topics, set: set, writer: w, alerts: newAlertTable()}
	s.proc = newProcessor(cfg, topics, w, kafkaScanner{kafka}, s.alerts, set)
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
	defer s.writer.Close()
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
		topic.ReaderOptions{CoPartitioned: true, TickInterval: s.cfg.TickInterval, Logger: log,
			KgoOpts: []kgo.Opt{kgo.SessionTimeout(s.cfg.SessionTimeout)}})
	if err != nil {
		return err
	}
	runErr := rd.Run(ctx)
	stopFollow()
	if err := <-followErr; err != nil && runErr == nil && ctx.Err() == nil {
		runErr = fmt.Errorf("read %s: %w", s.topics.RawAlerts(), err)
	}
	return runErr
}

// Ready reports whether the broker answers and the alert table is loaded.
func (s *Stage) Ready(ctx context.Context) error {
	if err := s.writer.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if !s.caught.Load() {
		return errors.New("loading the budget alert table")
	}
	return nil
}
