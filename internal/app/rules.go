package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/auditline/auditline/internal/backoff"
	"github.com/auditline/auditline/privacy/rules"
	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/sinks/archive/bucket"
)

// sealingArchive is the archive stage that first seals the enrich rules of
// its configuration into the archive (privacy/rules): the rules whose hash
// the records it seals carry, when every stage runs one configuration.
// Sealing runs beside the archiver, retried until it succeeds or the stage
// stops, so that an unreachable bucket delays neither.
type sealingArchive struct {
	*archive.Archiver
	cfg *Config
	log *slog.Logger
	// raws seal the raw topics (archive.raw; rawarchive.go).
	raws []*archive.Archiver
}

func (s *sealingArchive) Run(ctx context.Context) error {
	sealed := make(chan struct{})
	go func() {
		defer close(sealed)
		if err := s.sealRules(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("enrich rules not sealed", "err", err)
		}
	}()
	err := runWithRaw(ctx, s.Archiver, s.raws)
	<-sealed
	return err
}

func (s *sealingArchive) sealRules(ctx context.Context) error {
	canonical, hash, err := s.cfg.Enrich.Rules().Canonical()
	if err != nil {
		return err
	}
	b, err := bucket.New(s.cfg.Archive.S3.BucketConfig())
	if err != nil {
		return err
	}
	ret := s.cfg.Archive.Retention
	return backoff.Retry(ctx, backoff.Policy{Min: time.Second, Max: time.Minute, Jitter: 0.2}, func(ctx context.Context) error {
		key, created, err := rules.Seal(ctx, b, s.cfg.Archive.Prefix, canonical, bucket.Lock{Mode: bucket.Mode(ret.Mode), Until: ret.Period.Until(time.Now())})
		if err != nil {
			if errors.Is(err, rules.ErrAltered) {
				return backoff.Permanent(err)
			}
			return err
		}
		s.log.Info("enrich rules sealed", "rules_hash", hash, "key", key, "new", created)
		return nil
	}, nil)
}
