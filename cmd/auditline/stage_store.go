package main

import "context"

func newStoreStage(cfg *Config, set settings) (stage, error) { return nil, errNotBuilt }

func runMigrate(ctx context.Context, args []string) error { return errNotBuilt }
