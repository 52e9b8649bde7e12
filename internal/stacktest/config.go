package stacktest

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive"
)

// Token is the bearer token a Stack's ingest accepts by default, with every
// scope (its SHA-256 is in the config, never the token).
const Token = "stacktest-ingest-token"

// NewConfig returns the configuration of a pipeline named name on srv: topic
// prefix "<name>.", consumer groups "<name>-enrich" …, ClickHouse database
// name, archive prefix "stacktest/<name>/" with the signing key at
// dir/archive-key.pem, ingest on a free port accepting Token, and timings
// that suit tests (store linger 200ms, archive batches sealed after 2s,
// GOVERNANCE retention of a minute, checkpoints every 5s). No ops listener;
// logs at info. Change what a test needs before starting anything.
func NewConfig(srv Servers, name, dir string) app.Config {
	c := app.NewDefaultConfig()
	c.Kafka.Brokers = srv.Kafka
	c.TopicPrefix = name + "."
	c.Enrich.Group, c.Store.Group, c.Archive.Group = "", "", ""
	c.DefaultGroups()
	c.Log.Level = "info"
	c.Ops.Listen = ""
	c.Ingest.Listen = fmt.Sprintf("127.0.0.1:%d", FreePort())
	c.Ingest.Auth.Tokens = []auth.Token{{Name: "stacktest", SHA256: auth.Hash(Token), Scopes: auth.Scopes}}
	c.Store.ClickHouse.Addr = []string{srv.ClickHouse}
	c.Store.ClickHouse.Database = name
	c.Store.Linger = 200 * time.Millisecond
	s3 := srv.S3
	c.Archive.S3 = archive.S3Config{Endpoint: s3.Endpoint, Secure: s3.Secure, Region: "us-east-1", AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Bucket: s3.Bucket}
	c.Archive.Prefix = "stacktest/" + name + "/"
	c.Archive.SigningKeyFile = filepath.Join(dir, "archive-key.pem")
	c.Archive.Retention = archive.RetentionConfig{Mode: "GOVERNANCE", Period: retention.Exactly(time.Minute)}
	c.Archive.Batch.MaxAge = 2 * time.Second
	c.Archive.Checkpoint.Interval = 5 * time.Second
	c.Dashboard.Listen = fmt.Sprintf("127.0.0.1:%d", FreePort())
	c.Dashboard.Ingest.URL = "http://" + c.Ingest.Listen + "/v1/oversight"
	return c
}
