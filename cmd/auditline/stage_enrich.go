package main

func newEnrichStage(cfg *Config, set settings) (stage, error) { return nil, errNotBuilt }
