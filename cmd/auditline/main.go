// Command auditline runs the stages of the audit pipeline and the auditor's
// tools. The flow of a pipeline subcommand (ingest, enrich, store, archive,
// dashboard, all) is in this file: read the flags, load one YAML config with
// AUDITLINE_* environment overrides (internal/app), validate all of it before
// anything starts, then app.Run starts the stages downstream-first and stops
// them upstream-first on SIGINT/SIGTERM (a second signal quits at once).
//
// Every other subcommand lives in its own file and registers itself there
// (register, from that file's init), so adding a command is adding one file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/auditline/auditline/internal/app"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "auditline: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal now kills the process
	}()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "auditline %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// The pipeline subcommands: one per stage, and all of them in one process.
func init() {
	for _, st := range app.Stages() {
		register(command{st.Name, st.Summary, runStages(st.Name)})
	}
	register(command{"all", "run every stage in one process (local demo)", runStages(app.StageNames()...)})
}

// runStages returns the run function of a subcommand that runs the named
// stages in one process.
func runStages(names ...string) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet(strings.Join(names, "+"), flag.ContinueOnError)
		configPath := configFlag(fs)
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage: auditline %s [--config FILE]\n\nRuns: %s. Stops gracefully on SIGINT/SIGTERM.\nEvery config key can be overridden by AUDITLINE_<SECTION>_<KEY> (see 'auditline config').\n\nFlags:\n", os.Args[1], strings.Join(names, ", "))
			fs.PrintDefaults()
		}
		if ok, err := parseFlags(fs, args); !ok {
			return err
		}
		// load is also how ingest re-reads its credentials on SIGHUP.
		load := func() (*app.Config, error) {
			cfg, err := app.Load(*configPath, os.Environ())
			if err != nil {
				return nil, err
			}
			if err := cfg.Validate(names...); err != nil {
				return nil, fmt.Errorf("invalid configuration:\n%w", err)
			}
			return cfg, nil
		}
		cfg, err := load()
		if err != nil {
			return err
		}
		setMemoryLimit(cfg, names)
		return app.Run(ctx, cfg, names, app.Options{Reload: load})
	}
}

// setMemoryLimit applies the memory section's limits for a process running the
// named stages (none: all), unless GOMEMLIMIT set the runtime's limit already. It is set here, in
// the binary, not in app.Run: tests run stages in their own process too.
func setMemoryLimit(cfg *app.Config, names []string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if l := cfg.MemoryLimit(names...); l > 0 {
		debug.SetMemoryLimit(l)
	}
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands holds every subcommand by name.
var commands = map[string]command{}

// register adds a subcommand. Each command's file calls it from init; a
// duplicate name is a programming error and stops the binary at once.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("auditline: command " + c.name + " registered twice")
	}
	commands[c.name] = c
}

func usage() {
	fmt.Fprintf(os.Stderr, "auditline — LLM-gateway traffic as audit-grade evidence\n\nUsage: auditline <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-13s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'auditline <command> --help' for the flags of a command.\n")
}
