package main

import "context"

func newArchiveStage(cfg *Config, set settings) (stage, error) { return nil, errNotBuilt }

func runVerify(ctx context.Context, args []string) error      { return errNotBuilt }
func runProve(ctx context.Context, args []string) error       { return errNotBuilt }
func runVerifyProof(ctx context.Context, args []string) error { return errNotBuilt }
func runExport(ctx context.Context, args []string) error      { return errNotBuilt }
func runKeys(ctx context.Context, args []string) error        { return errNotBuilt }
