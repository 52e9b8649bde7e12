package main

import "context"

func newIngestStage(cfg *Config, set settings) (stage, error) { return nil, errNotBuilt }

func runLoadgen(ctx context.Context, args []string) error { return errNotBuilt }
