package main

import "github.com/auditline/auditline/enrich"

func newEnrichStage(cfg *Config, set settings) (stage, error) {
	s, err := enrich.New(cfg.Enrich, cfg.Kafka, cfg.topics(), enrich.Settings{Logger: set.Logger, Registry: set.Registry})
	if err != nil {
		return nil, err
	}
	return s, nil
}
