package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// errUsage means the flag package (or the command) already printed the
// problem; main exits 2 without another message.
var errUsage = errors.New("usage")

// parseFlags parses args, printing usage on -h; it returns errUsage on a bad
// flag and a nil error with ok=false on -h.
func parseFlags(fs *flag.FlagSet, args []string) (ok bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, nil
		}
		return false, errUsage
	}
	return true, nil
}

// configFlag adds --config (default $AUDITLINE_CONFIG) to fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("AUDITLINE_CONFIG"), "path of the YAML config file (env AUDITLINE_CONFIG); defaults apply when empty")
}

// loadConfig reads the configuration: defaults, the file, this process's
// environment. It does not validate.
func loadConfig(path string) (*app.Config, error) { return app.Load(path, os.Environ()) }

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// parseTime accepts RFC 3339 or a date (YYYY-MM-DD, midnight UTC).
func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s: %q, want RFC 3339 (2026-11-22T10:00:00Z) or a date (2026-11-22)", name, s)
}

// parsePartitions reads a comma-separated list of partition numbers.
func parsePartitions(s string) ([]int32, error) {
	if s == "" {
		return nil, nil
	}
	var out []int32
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--partition: %q is not a partition number", f)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

// keyFlags are the trust flags every auditor's command shares.
type keyFlags struct {
	files       listFlag
	trustBucket *bool
}

func addKeyFlags(fs *flag.FlagSet) *keyFlags {
	k := &keyFlags{}
	fs.Var(&k.files, "key", "trusted public key (PEM file, or a directory of *.pem); repeatable. Default: archive.audit.keys, else the public half of archive.signing_key_file. Keep every key id the archive ever signed with (rotation)")
	k.trustBucket = fs.Bool("trust-bucket-keys", false, "also trust the keys published in the bucket (keys/*.pem) — anyone who can write to the bucket can publish one: confirm the ids printed out of band")
	return k
}

// openArchive opens the archive that the configuration at configPath names
// (archive.s3, archive.prefix) and settles the keys to trust: --key, else
// archive.audit.keys, else archive.signing_key_file's public half (verify.Open);
// the keys published in the bucket only with --trust-bucket-keys. A key that
// cannot be loaded, or no key at all, is an error.
func openArchive(ctx context.Context, configPath string, kf *keyFlags) (*app.Config, *verify.Archive, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, nil, err
	}
	s3 := cfg.Archive.S3
	if s3.Endpoint == "" || s3.Bucket == "" {
		return nil, nil, errors.New("archive.s3.endpoint and archive.s3.bucket are required (or AUDITLINE_S3 and AUDITLINE_S3_BUCKET)")
	}
	files, source := []string(kf.files), "--key"
	if len(files) == 0 && len(cfg.Archive.Audit.Keys) > 0 {
		files, source = cfg.Archive.Audit.Keys, "archive.audit.keys"
	}
	a, err := verify.Open(verify.OpenOptions{Bucket: s3.BucketConfig(), Prefix: cfg.Archive.Prefix, TrustedKeys: files, SigningKeyFile: cfg.Archive.SigningKeyFile})
	if err != nil {
		return nil, nil, err
	}
	if a.KeySource == "--key" {
		a.KeySource = source
	}
	ring, bsource, err := verify.TrustedKeys(ctx, a.Bucket, a.Layout, a.Keys, *kf.trustBucket)
	if err != nil {
		return nil, nil, err
	}
	if *kf.trustBucket {
		a.KeySource = strings.TrimPrefix(a.KeySource+"; "+bsource, "; ")
	}
	a.Keys = ring
	return cfg, a, nil
}
