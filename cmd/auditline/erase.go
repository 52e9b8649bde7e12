package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/auditline/auditline/privacy/envelope"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/rawlog"
)

func init() {
	register(command{"erase", "destroy a data subject's key: its archived raw events become unreadable", runErase})
}

func runErase(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("erase", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline erase [flags] (--tenant T | --team T | --end-user U | --archive)

Answers an erasure request: destroys the data subject's key in the key store
(archive.raw.key_store), so every raw event the archive sealed under it can no
longer be decrypted, and writes an erasure statement naming the key (never
the subject) to <prefix>erasures/<key id>.json. Nothing in the archive is
deleted or changed: leaves, roots, proofs and signatures still verify, and
'auditline verify' and 'auditline evidence' report those events as erased.
Events of the subject sealed afterwards get a new key. The decision records
themselves are not encrypted: see docs/privacy.md.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := configFlag(fs)
	tenant := fs.String("tenant", "", "erase a tenant's key (archive.raw.key_by: tenant, the default)")
	team := fs.String("team", "", "erase a team's key (archive.raw.key_by: team)")
	endUser := fs.String("end-user", "", "erase an end user's key (archive.raw.key_by: end_user)")
	all := fs.Bool("archive", false, "erase the archive-wide key (archive.raw.key_by: archive)")
	keyID := fs.String("statement-for", "", "only write the erasure statement of this key id (after an erase whose statement failed)")
	reason := fs.String("reason", "", "recorded in the erasure statement (e.g. a ticket number; no personal data)")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	var subjects []string
	if *tenant != "" {
		subjects = append(subjects, envelope.ByTenant+":"+*tenant)
	}
	if *team != "" {
		subjects = append(subjects, envelope.ByTeam+":"+*team)
	}
	if *endUser != "" {
		subjects = append(subjects, envelope.ByEndUser+":"+*endUser)
	}
	if *all {
		subjects = append(subjects, envelope.ByArchive)
	}
	if (len(subjects) != 1) == (*keyID == "") || len(subjects) > 1 || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.Archive.Raw.KeyStore.Dir == "" {
		return errors.New("archive.raw.key_store.dir: not configured")
	}
	s3 := cfg.Archive.S3
	if s3.Endpoint == "" || s3.Bucket == "" {
		return errors.New("archive.s3.endpoint and archive.s3.bucket are required (or AUDITLINE_S3 and AUDITLINE_S3_BUCKET)")
	}
	b, err := bucket.New(s3.BucketConfig())
	if err != nil {
		return err
	}
	ks, err := cfg.Archive.Raw.OpenKeyStore()
	if err != nil {
		return err
	}
	id := *keyID
	if id == "" {
		id, err = ks.Destroy(ctx, subjects[0])
		if errors.Is(err, envelope.ErrNoKey) {
			return fmt.Errorf("%s: no key in the key store (nothing of it was sealed, or it was erased before)", subjects[0])
		}
		if err != nil {
			return err
		}
	}
	now := time.Now()
	ret := cfg.Archive.Retention
	key, err := rawlog.PutErasure(ctx, b, layout.New(cfg.Archive.Prefix), id, *reason, now,
		bucket.Lock{Mode: bucket.Mode(ret.Mode), Until: ret.Period.Until(now)})
	if err != nil {
		return fmt.Errorf("key %s destroyed, but the erasure statement was not written (retry: auditline erase --statement-for %s): %w", id, id, err)
	}
	fmt.Printf("erased: key %s destroyed; statement %s\n", id, key)
	return nil
}
