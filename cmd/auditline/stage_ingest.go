package main

import (
	"context"

	"github.com/auditline/auditline/ingest"
)

// newIngestStage builds the webhook receiver; its /metrics, /healthz and
// /readyz are served on the ingest listener too.
func newIngestStage(cfg *Config, set settings) (stage, error) {
	return ingest.New(cfg.Ingest, ingest.Settings{
		Logger:   set.Logger,
		Registry: set.Registry,
		Topics:   cfg.topics(),
		Kafka:    cfg.Kafka,
		Mount:    set.Handle,
	})
}

func runLoadgen(ctx context.Context, args []string) error { return errNotBuilt }
