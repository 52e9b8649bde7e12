package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// dashboardStage serves the dashboards; it closes its ClickHouse connections
// when Run returns.
type dashboardStage struct {
	srv *dashboards.Server
	ch  *query.ClickHouse
}

func (d *dashboardStage) Run(ctx context.Context) error {
	defer d.ch.Close()
	return d.srv.Run(ctx)
}

func (d *dashboardStage) Ready(ctx context.Context) error { return d.srv.Ready(ctx) }

// dashboardClickHouse is dashboard.clickhouse with the empty fields inherited
// from store.clickhouse.
func dashboardClickHouse(cfg *Config) query.Config {
	c := cfg.Dashboard.ClickHouse
	if len(c.Addr) == 0 {
		c.Addr = cfg.Store.ClickHouse.Addr
	}
	if c.Database == "" {
		c.Database = cfg.Store.ClickHouse.Database
		if c.Username == "" {
			c.Username, c.Password = cfg.Store.ClickHouse.Username, cfg.Store.ClickHouse.Password
		}
	}
	return c
}

func newDashboardStage(cfg *Config, set settings) (stage, error) {
	dc := cfg.Dashboard
	if dc.ArchiveBucket == "" && cfg.Archive.S3.Bucket != "" {
		dc.ArchiveBucket = strings.TrimSuffix(cfg.Archive.S3.Bucket+"/"+cfg.Archive.Prefix, "/")
	}
	ch, err := query.Open(dashboardClickHouse(cfg))
	if err != nil {
		return nil, fmt.Errorf("dashboard.clickhouse: %w", err)
	}
	poster, err := dashboards.NewPoster(dc)
	if err != nil {
		ch.Close()
		return nil, err
	}
	src := dashboards.Sources{NearMiss: ch, Records: ch, Record: ch, Sampling: ch, Events: poster, Pinger: ch}
	if prover, err := newArchiveProver(cfg); err != nil {
		ch.Close()
		return nil, err
	} else if prover != nil {
		src.Prover = prover
	}
	srv, err := dashboards.New(dc, dashboards.Settings{Logger: set.Logger, Registry: set.Registry, Handle: set.Handle}, src)
	if err != nil {
		ch.Close()
		return nil, err
	}
	return &dashboardStage{srv: srv, ch: ch}, nil
}

// archiveProver serves inclusion proofs from the archive bucket (read-only),
// as 'auditline prove' does.
type archiveProver struct{ o verify.ProveOptions }

// newArchiveProver returns nil when the archive bucket is not configured: the
// record page then shows the 'auditline prove' command only.
func newArchiveProver(cfg *Config) (*archiveProver, error) {
	s3 := cfg.Archive.S3
	if s3.Endpoint == "" || s3.Bucket == "" {
		return nil, nil
	}
	b, err := bucket.New(s3.BucketConfig())
	if err != nil {
		return nil, fmt.Errorf("dashboard: archive bucket: %w", err)
	}
	o := verify.ProveOptions{Bucket: b, Layout: layout.New(cfg.Archive.Prefix)}
	if cfg.Archive.SigningKeyFile != "" {
		if priv, err := keys.Load(cfg.Archive.SigningKeyFile); err == nil {
			o.Keys = keys.NewRing(priv.Public().(ed25519.PublicKey))
		}
	}
	return &archiveProver{o: o}, nil
}

// Prove implements dashboards.Prover. A batch's time range is when its
// records were produced, which for a version is at or after the request's
// start (an amended version — a review — can come days later), so only
// batches sealed before the day of the start are skipped.
func (p *archiveProver) Prove(ctx context.Context, recordID string, version uint32, around time.Time) ([]byte, error) {
	o := p.o
	o.Version = version
	if !around.IsZero() {
		o.From = around.Add(-24 * time.Hour)
	}
	proof, err := verify.Prove(ctx, recordID, o)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(proof, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode proof: %w", err)
	}
	return append(b, '\n'), nil
}

// runDashboardPasswd prints an argon2id hash of a password read from stdin,
// for dashboard.auth.users[].password_hash.
func runDashboardPasswd(_ context.Context, args []string) error {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "Usage: auditline passwd < password-file\n\nReads one password line from stdin and prints its argon2id hash for dashboard.auth.users[].password_hash.")
		if args[0] == "-h" || args[0] == "--help" {
			return nil
		}
		return errUsage
	}
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprint(os.Stderr, "password (echoed; prefer a pipe): ")
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("empty password")
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	fmt.Println(h)
	return nil
}
