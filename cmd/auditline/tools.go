package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// errNotBuilt marks a subcommand whose stage is not written yet.
var errNotBuilt = errors.New("not implemented yet")

// runConfig prints the effective configuration.
func runConfig(_ context.Context, args []string) error {
	path := os.Getenv("AUDITLINE_CONFIG")
	if len(args) == 2 && args[0] == "--config" {
		path = args[1]
	} else if len(args) != 0 {
		return fmt.Errorf("usage: auditline config [--config FILE]")
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	return yaml.NewEncoder(os.Stdout).Encode(cfg)
}
