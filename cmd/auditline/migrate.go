package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/store"
)

func init() {
	register(command{"migrate", "create or upgrade the ClickHouse schema and the Kafka topics", runMigrate})
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

With --cluster NAME (and no --dry-run) the cluster schema is applied instead:
every table as a Replicated T_local plus a Distributed T, views and
materialized views, each statement ON CLUSTER NAME through the node
store.clickhouse.addr reaches (ZooKeeper or Keeper required; docs/store.md).

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := configFlag(fs)
	dryRun := fs.Bool("dry-run", false, "print the DDL for an empty database and exit; connects to nothing")
	serverVersion := fs.String("server-version", store.Oldest.String(), "with --dry-run: the ClickHouse version to print DDL for (e.g. 24.8)")
	cluster := fs.String("cluster", "", "apply (or with --dry-run print) the DDL for this ClickHouse cluster (Replicated + Distributed tables, ON CLUSTER; docs/store.md) instead of one server's")
	skipTopics := fs.Bool("skip-topics", false, "do not create the Kafka topics")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if ok, err := parseFlags(fs, args); !ok {
		return err
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
	if err := cfg.Validate("store"); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var res app.MigrateResult
	if *cluster != "" {
		res, err = app.MigrateCluster(ctx, cfg, *cluster, *skipTopics, cfg.Logger(os.Stderr))
	} else {
		res, err = app.Migrate(ctx, cfg, *skipTopics, cfg.Logger(os.Stderr))
	}
	switch {
	case !res.Schema:
	case *cluster != "":
		fmt.Printf("clickhouse %s: cluster %s, schema %s: %d statements applied ON CLUSTER\n", res.Server, *cluster, cfg.Store.ClickHouse.Database, len(res.Steps))
	case len(res.Steps) == 0:
		fmt.Printf("clickhouse %s: schema %s is up to date\n", res.Server, cfg.Store.ClickHouse.Database)
	default:
		fmt.Printf("clickhouse %s: schema %s migrated:\n  %s\n", res.Server, cfg.Store.ClickHouse.Database, strings.Join(res.Steps, "\n  "))
	}
	if err != nil {
		return err
	}
	if res.Topics {
		fmt.Printf("kafka: topics %s* present\n", cfg.TopicPrefix)
		for _, s := range res.TopicSteps {
			fmt.Println(s)
		}
	}
	return nil
}
