// Command auditline runs the stages of the audit pipeline and the auditor's
// tools. Every long-running subcommand loads one YAML config (with AUDITLINE_*
// environment overrides), validates all of it before anything starts, starts
// its stages downstream-first and stops them upstream-first on SIGINT/SIGTERM
// (a second signal quits at once).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"ingest":       {"receive webhooks (LiteLLM, alerts, audit, gateway, oversight) into Kafka", stageCommand("ingest")},
		"enrich":       {"join each request's events into a decision record", stageCommand("enrich")},
		"store":        {"write decision records and raw events to ClickHouse", stageCommand("store")},
		"archive":      {"seal decision records into Parquet + Merkle root on S3 Object Lock", stageCommand("archive")},
		"dashboard":    {"serve the near-miss and sampling dashboards", stageCommand("dashboard")},
		"all":          {"run every stage in one process (local demo)", stageCommand("ingest", "enrich", "store", "archive", "dashboard")},
		"migrate":      {"create or upgrade the ClickHouse schema and the Kafka topics", runMigrate},
		"verify":       {"verify the archive: signatures, checksums, Merkle roots, chain, retention", runVerify},
		"prove":        {"print an inclusion proof for one record id", runProve},
		"verify-proof": {"check an inclusion proof offline", runVerifyProof},
		"export":       {"write an evidence pack (tar.gz) for an auditor", runExport},
		"keys":         {"generate or show the archive signing key", runKeys},
		"loadgen":      {"send realistic LiteLLM traffic to ingest", runLoadgen},
		"config":       {"print the effective configuration (defaults + file + environment)", runConfig},
		"passwd":       {"print an argon2id password hash (read from stdin) for dashboard.auth.users", runDashboardPasswd},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "auditline — LLM-gateway traffic as audit-grade evidence\n\nUsage: auditline <command> [flags]\n\nCommands:\n")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-13s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'auditline <command> --help' for the flags of a command.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands()[os.Args[1]]
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

// errUsage means the flag package already printed the problem.
var errUsage = errors.New("usage")
