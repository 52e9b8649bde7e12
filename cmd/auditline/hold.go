package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/auditline/auditline/privacy/hold"
	"github.com/auditline/auditline/sinks/archive/bucket"
)

func init() {
	register(command{"hold", "place, release or list legal holds on archived objects (S3 Object Lock)", runHold})
}

// runHold is `auditline hold set|release|list`: privacy/hold over the
// configured archive.
func runHold(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "set" && args[0] != "release" && args[0] != "list") {
		fmt.Fprint(flag.CommandLine.Output(), holdUsage)
		return errUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("hold "+verb, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), holdUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	configPath := configFlag(fs)
	key := fs.String("key", "", "one archived object, by its full key (as verify and prove print it)")
	from := fs.String("from", "", "objects uploaded at or after this time (RFC 3339 or YYYY-MM-DD)")
	to := fs.String("to", "", "objects uploaded before this time")
	all := fs.Bool("all", false, "list: every object, held or not")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if ok, err := parseFlags(fs, args[1:]); !ok {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	var s hold.Scope
	var err error
	s.Key = *key
	if s.From, err = parseTime("from", *from); err != nil {
		return err
	}
	if s.To, err = parseTime("to", *to); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	s3 := cfg.Archive.S3
	if s3.Endpoint == "" || s3.Bucket == "" {
		return errors.New("archive.s3.endpoint and archive.s3.bucket are required (or AUDITLINE_S3 and AUDITLINE_S3_BUCKET)")
	}
	b, err := bucket.New(s3.BucketConfig())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if verb == "list" {
		items, err := hold.Holds(ctx, b, cfg.Archive.Prefix, s)
		if err != nil {
			return err
		}
		n := 0
		for _, it := range items {
			if it.Held || *all {
				fmt.Printf("%s\t%s\tuploaded %s\theld %v\n", it.Key, it.VersionID, it.Uploaded.UTC().Format(time.RFC3339), it.Held)
			}
			if it.Held {
				n++
			}
		}
		fmt.Printf("%d of %d object versions under legal hold\n", n, len(items))
		return nil
	}
	on := verb == "set"
	changed, err := hold.Set(ctx, b, cfg.Archive.Prefix, s, on)
	for _, it := range changed {
		fmt.Printf("%s\t%s\theld %v\n", it.Key, it.VersionID, it.Held)
	}
	if err != nil {
		return err
	}
	state := "released"
	if on {
		state = "under legal hold"
	}
	fmt.Printf("%d object versions now %s (those already so were left alone)\n", len(changed), state)
	return nil
}

const holdUsage = `Usage: auditline hold set|release|list [flags]

Legal holds (S3 Object Lock) on archived objects: while a hold is on, no
version it covers can be deleted, whatever its retention, even after its
retain-until date. A hold names one object (--key) or the objects uploaded in
a period (--from/--to: the batches, manifests and checkpoints sealed then).

  auditline hold set --key auditline/batches/p0/...parquet
  auditline hold set --from 2026-01-01 --to 2026-04-01
  auditline hold list                  # held object versions
  auditline hold release --from 2026-01-01 --to 2026-04-01

Needs s3:PutObjectLegalHold / s3:GetObjectLegalHold on the bucket (see
docs/privacy.md).
`
