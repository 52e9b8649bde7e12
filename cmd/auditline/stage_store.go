package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/store"
)

func newStoreStage(cfg *Config, set settings) (stage, error) {
	s, err := store.New(cfg.Store, cfg.Kafka, cfg.topics(), store.Settings{Logger: set.Logger, Registry: set.Registry})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// runMigrate creates or upgrades the ClickHouse schema and creates the Kafka
// topics.
func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline migrate [flags]

Creates or upgrades the ClickHouse schema (database store.clickhouse.database:
decision_records, raw_events, rejected_records, store_progress,
decision_versions, the analyst views) and creates the Kafka topics. Every step
is idempotent and recorded in schema_migrations; running it again does only
what is missing. Columns that record.Decision gained are added; views whose SQL
changed are re-created.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", os.Getenv("AUDITLINE_CONFIG"), "YAML config file (env AUDITLINE_CONFIG)")
	dryRun := fs.Bool("dry-run", false, "print the DDL for an empty database and exit; connects to nothing")
	serverVersion := fs.String("server-version", store.Oldest.String(), "with --dry-run: the ClickHouse version to print DDL for (e.g. 24.8)")
	cluster := fs.String("cluster", "", "with --dry-run: print the DDL for this ClickHouse cluster (Replicated + Distributed tables, docs/store.md) instead of one server")
	skipTopics := fs.Bool("skip-topics", false, "do not create the Kafka topics")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *dryRun {
		srv, err := store.ParseServer(*serverVersion)
		if err != nil {
			return fmt.Errorf("--server-version: %w", err)
		}
		db := cfg.Store.ClickHouse.Database
		stmts := store.Plan(db, srv)
		what := "one server"
		if *cluster != "" {
			if stmts, err = store.ClusterPlan(db, *cluster, srv, true); err != nil {
				return err
			}
			what = "cluster " + *cluster + " (apply with clickhouse-client --multiquery; see docs/store.md)"
		}
		fmt.Printf("-- auditline migrate --dry-run: DDL for ClickHouse %s, database %s, %s\n\n", srv, db, what)
		fmt.Println(strings.Join(stmts, ";\n\n") + ";")
		return nil
	}
	if *cluster != "" {
		return fmt.Errorf("--cluster only prints DDL: add --dry-run and apply its output with clickhouse-client --multiquery on a cluster node")
	}
	if err := cfg.validate("store"); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	log := newLogger(cfg)

	conn, err := store.Open(cfg.Store.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	srv, err := store.Detect(ctx, conn)
	if err != nil {
		return err
	}
	if !srv.AtLeast(store.Oldest) {
		return fmt.Errorf("clickhouse %s is older than %s, the oldest supported", srv, store.Oldest)
	}
	done, err := store.Migrate(ctx, conn, cfg.Store.ClickHouse.Database, srv, log)
	if err != nil {
		return err
	}
	if len(done) == 0 {
		fmt.Printf("clickhouse %s: schema %s is up to date\n", srv, cfg.Store.ClickHouse.Database)
	} else {
		fmt.Printf("clickhouse %s: schema %s migrated:\n  %s\n", srv, cfg.Store.ClickHouse.Database, strings.Join(done, "\n  "))
	}
	if *skipTopics {
		return nil
	}
	if err := topic.EnsureTopics(ctx, cfg.Kafka, cfg.topics()); err != nil {
		return err
	}
	fmt.Printf("kafka: topics %s* present\n", cfg.TopicPrefix)
	return nil
}
