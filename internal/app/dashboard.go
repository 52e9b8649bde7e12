package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/dashboards/query"
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

// buildDashboard wires the dashboards to their sources: ClickHouse (the
// dashboard's section, empty fields inherited from the store's), ingest's
// oversight endpoint, and the archive bucket for inclusion proofs.
func buildDashboard(c *Config, set Settings) (Stage, error) {
	dc := c.Dashboard
	if dc.ArchiveBucket == "" && c.Archive.S3.Bucket != "" {
		dc.ArchiveBucket = strings.TrimSuffix(c.Archive.S3.Bucket+"/"+c.Archive.Prefix, "/")
	}
	ch, err := query.Open(c.DashboardClickHouse())
	if err != nil {
		return nil, fmt.Errorf("dashboard.clickhouse: %w", err)
	}
	poster, err := dashboards.NewPoster(dc)
	if err != nil {
		ch.Close()
		return nil, err
	}
	src := dashboards.Sources{NearMiss: ch, Records: ch, Record: ch, Sampling: ch, Events: poster, Pinger: ch, Access: poster, Analyst: ch}
	if prover, err := newArchiveProver(c); err != nil {
		ch.Close()
		return nil, err
	} else if prover != nil {
		src.Prover = prover
	}
	srv, err := dashboards.New(dc, c.Shared(), dashboards.Settings{Sources: src, Logger: set.Logger, Registry: set.Registry})
	if err != nil {
		ch.Close()
		return nil, err
	}
	return &dashboardStage{srv: srv, ch: ch}, nil
}

// archiveProver serves inclusion proofs from the archive bucket (read-only),
// as 'auditline prove' does.
type archiveProver struct {
	o   verify.ProveOptions
	err error // why no proof can be served
}

// newArchiveProver returns nil when the archive bucket is not configured: the
// record page then shows the 'auditline prove' command only.
func newArchiveProver(c *Config) (*archiveProver, error) {
	s3 := c.Archive.S3
	if s3.Endpoint == "" || s3.Bucket == "" {
		return nil, nil
	}
	// The keys the proofs are opened with: archive.audit.keys, else the
	// signing key's public half — never keys found in the bucket. A key that
	// cannot be loaded stops the dashboard from starting; with none
	// configured, every proof request fails saying so.
	a, err := verify.Open(verify.OpenOptions{Bucket: s3.BucketConfig(), Prefix: c.Archive.Prefix, TrustedKeys: c.Archive.Audit.Keys, SigningKeyFile: c.Archive.SigningKeyFile})
	if err != nil {
		return nil, fmt.Errorf("dashboard: proofs: %w", err)
	}
	o := verify.ProveOptions{Bucket: a.Bucket, Layout: a.Layout, Keys: a.Keys}
	if a.Keys == nil || a.Keys.Len() == 0 {
		o.Keys = nil
		return &archiveProver{o: o, err: errors.New("no trusted archive key: set archive.audit.keys (or archive.signing_key_file); keys published in the bucket are not trusted")}, nil
	}
	return &archiveProver{o: o}, nil
}

// Prove implements dashboards.Prover. A batch's time range is when its
// records were produced, which for a version is at or after the request's
// start (an amended version — a review — can come days later), so only
// batches sealed before the day of the start are skipped.
func (p *archiveProver) Prove(ctx context.Context, recordID string, version uint32, around time.Time) ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
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
