package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
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
	if dc.ArchiveBucket == "" {
		dc.ArchiveBucket = cfg.Archive.S3.Bucket
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
	srv, err := dashboards.New(dc, dashboards.Settings{Logger: set.Logger, Registry: set.Registry, Handle: set.Handle}, dashboards.Sources{
		NearMiss: ch, Records: ch, Record: ch, Sampling: ch, Events: poster, Pinger: ch,
	})
	if err != nil {
		ch.Close()
		return nil, err
	}
	return &dashboardStage{srv: srv, ch: ch}, nil
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
