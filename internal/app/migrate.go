package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/store"
)

// MigrateResult says what Migrate found and did.
type MigrateResult struct {
	Server store.Server // the ClickHouse version
	Schema bool         // the schema is now current
	Steps  []string     // schema steps applied; empty when it was up to date
	Topics bool         // the Kafka topics were checked and created
	// TopicSteps are the topic settings changed (the raw topics' retention).
	TopicSteps []string
}

// Migrate creates or upgrades the ClickHouse schema of store.clickhouse and,
// unless skipTopics, creates the Kafka topics. Every step is idempotent.
// cfg should have passed Validate("store").
func Migrate(ctx context.Context, cfg *Config, skipTopics bool, log *slog.Logger) (MigrateResult, error) {
	return migrate(ctx, cfg, "", skipTopics, log)
}

// MigrateCluster is Migrate for a ClickHouse cluster: the cluster schema
// (store.ClusterPlan: Replicated _local tables, Distributed tables of the
// usual names) is applied ON CLUSTER through the node store.clickhouse.addr
// reaches (store.MigrateCluster), then the Kafka topics are created.
func MigrateCluster(ctx context.Context, cfg *Config, cluster string, skipTopics bool, log *slog.Logger) (MigrateResult, error) {
	if cluster == "" {
		return MigrateResult{}, fmt.Errorf("migrate: empty cluster name")
	}
	if cfg.Store.RawEventsTTL != 0 {
		return MigrateResult{}, fmt.Errorf("store.raw_events_ttl is not applied by migrate --cluster: set the TTL ON CLUSTER on raw_events_local by hand (docs/store.md), and leave the key at 0")
	}
	return migrate(ctx, cfg, cluster, skipTopics, log)
}

func migrate(ctx context.Context, cfg *Config, cluster string, skipTopics bool, log *slog.Logger) (MigrateResult, error) {
	var res MigrateResult
	conn, err := store.Open(cfg.Store.ClickHouse)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	if res.Server, err = store.Detect(ctx, conn); err != nil {
		return res, err
	}
	if !res.Server.AtLeast(store.Oldest) {
		return res, fmt.Errorf("clickhouse %s is older than %s, the oldest supported", res.Server, store.Oldest)
	}
	if cluster != "" {
		if res.Steps, err = store.MigrateCluster(ctx, conn, cfg.Store.ClickHouse.Database, cluster, res.Server, log); err != nil {
			return res, err
		}
	} else if res.Steps, err = store.Migrate(ctx, conn, cfg.Store.ClickHouse.Database, res.Server, log); err != nil {
		return res, err
	}
	ttl, err := store.SetRawEventsTTL(ctx, conn, cfg.Store.ClickHouse.Database, res.Server, cfg.Store.RawEventsTTL)
	if err != nil {
		return res, err
	}
	res.Steps = append(res.Steps, ttl...)
	res.Schema = true
	if skipTopics {
		return res, nil
	}
	if err := topic.EnsureTopics(ctx, cfg.Kafka, cfg.Topics()); err != nil {
		return res, err
	}
	// The raw topics and the DLQ hold content whole: an explicit retention
	// (kafka.raw_retention, docs/privacy.md), not the broker's default.
	ret, err := topic.SetRawRetention(ctx, cfg.Kafka, cfg.Topics())
	if err != nil {
		return res, err
	}
	res.TopicSteps = ret
	res.Topics = true
	return res, nil
}
