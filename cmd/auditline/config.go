package main

import (
	"context"
	"flag"
	"fmt"
	"os"
)

func init() {
	register(command{"config", "print the effective configuration (defaults + file + environment), secrets redacted", runConfig})
}

// runConfig prints the effective configuration with every secret redacted.
func runConfig(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	configPath := configFlag(fs)
	validate := fs.Bool("validate", false, "also validate every section and report each problem with its key")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline config [--config FILE] [--validate]

Prints the effective configuration: the defaults, then the file, then the
AUDITLINE_<SECTION>_<KEY> environment overrides. Passwords, secret keys,
tokens and password hashes print as <redacted>.

Flags:
`)
		fs.PrintDefaults()
	}
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	out, err := cfg.Redacted().YAML()
	if err != nil {
		return err
	}
	if _, err := os.Stdout.Write(out); err != nil {
		return err
	}
	if *validate {
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("invalid configuration:\n%w", err)
		}
	}
	return nil
}
