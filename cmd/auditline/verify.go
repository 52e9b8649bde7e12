package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/tsa"
	"github.com/auditline/auditline/sinks/archive/verify"
	"github.com/auditline/auditline/sinks/archive/witness"
)

func init() {
	register(command{"verify", "check the archive: signatures, checksums, Merkle roots, chains, the global log, anchors, retention", runVerify})
}

func runVerify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline verify [flags]

Verifies the archive from the bucket alone, trusting only the keys you give:
the Ed25519 signature of every manifest and checkpoint, every batch object's
SHA-256, every leaf recomputed from the records in the Parquet files (bound
to their topic, partition, offset and publish time) up to the signed Merkle
root, the chain of each partition (no gap, no reordering, no deletion), no
record version sealed twice, the global log of every checkpoint recomputed
from its batches, the Object Lock mode and retain-until of every object, RFC
3161 tokens, and the anchors outside the bucket: witness cosignatures (and,
when the witnesses have URLs, each witness's own view of the log, which
reveals the newest batches and checkpoints being removed together).

It also reports completeness: for every emitter of auditline's LiteLLM plugin
(one per proxy worker), "sequence a..b complete" or the sequence numbers no
sealed record accounts for — events lost before they reached auditline
(warnings; failures with --require-complete).

Keep the "newest checkpoint" it prints (or --save-checkpoint FILE) and pass
it to --since next time: a consistency proof then shows the log only grew.

Prints a report naming the object key, partition and offset range of every
failure; exits 1 if there is any. Needs read access to the bucket
(archive.s3.* or AUDITLINE_S3 and AUDITLINE_S3_BUCKET) and, to ask them, the
witnesses' URLs.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := configFlag(fs)
	kf := addKeyFlags(fs)
	var since, witnesses listFlag
	from := fs.String("from", "", "only read batches with records at or after this time (RFC 3339 or YYYY-MM-DD); chains and checkpoints are always checked whole")
	to := fs.String("to", "", "only read batches with records before this time")
	partitions := fs.String("partition", "", "comma-separated partitions to check (default all)")
	mode := fs.String("retention-mode", "COMPLIANCE", "Object Lock mode every object must have: COMPLIANCE or GOVERNANCE (GOVERNANCE accepts both)")
	minRet := fs.String("min-retention", "", "require retain-until ≥ upload time + this: calendar units (7y, 1y6mo, 90d) or a duration (61320h); 0 checks only that a lock is set (default archive.retention.period)")
	tsaCA := fs.String("tsa-ca", "", "PEM root certificate(s) RFC 3161 tokens must chain to; a token that does anchors its checkpoint (default archive.audit.tsa_ca)")
	requireTS := fs.Bool("require-timestamps", false, "fail checkpoints that have no RFC 3161 token")
	fs.Var(&since, "since", "a checkpoint kept from an earlier audit (the C2SP note verify printed, a cosignature note, or a checkpoint object): the log must extend it (RFC 6962 consistency proof); repeatable")
	fs.Var(&since, "checkpoint", "the same as --since (kept for scripts written before it)")
	fs.Var(&witnesses, "witness", "a witness to trust: its cosignature verifier key (vkey), optionally followed by =URL to ask it for its view; repeatable (default archive.witness.witnesses)")
	quorum := fs.Int("witness-quorum", 0, "witnesses that must cosign a checkpoint to anchor it (default archive.witness.quorum, 1)")
	offline := fs.Bool("offline", false, "do not contact witnesses: check only the cosignatures stored in the bucket")
	requireAnchor := fs.Bool("require-anchor", false, "fail unless the log is anchored outside the bucket (witness quorum, or a time-stamp chaining to --tsa-ca) and a quorum of witnesses confirmed it (default archive.audit.require_anchor)")
	requireComplete := fs.Bool("require-complete", false, "fail when an emitter of the LiteLLM plugin has sequence numbers no sealed record accounts for (gaps are warnings otherwise; docs/litellm.md §12)")
	saveNote := fs.String("save-checkpoint", "", "write the newest checkpoint object to this file, to pass to --since next time (it also names every partition's head)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	parallel := fs.Int("parallel", 0, "batch objects read at once (default GOMAXPROCS)")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, acc, err := openArchive(ctx, *configPath, kf)
	if err != nil {
		return err
	}
	audit := cfg.Archive.Audit
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := verify.Options{Bucket: acc.Bucket, Layout: acc.Layout, Keys: acc.Keys, TrustBucketKeys: false, MinRetention: cfg.Archive.Retention.Period,
		RequireTimestamps: *requireTS, Parallel: *parallel, RequireAnchor: audit.RequireAnchor, RequireComplete: *requireComplete}
	if set["min-retention"] {
		if o.MinRetention, err = parseMinRetention(*minRet); err != nil {
			return err
		}
	}
	if set["require-anchor"] {
		o.RequireAnchor = *requireAnchor
	}
	if o.From, err = parseTime("from", *from); err != nil {
		return err
	}
	if o.To, err = parseTime("to", *to); err != nil {
		return err
	}
	if o.Partitions, err = parsePartitions(*partitions); err != nil {
		return err
	}
	switch bucket.Mode(*mode) {
	case bucket.Compliance, bucket.Governance:
		o.RetentionMode = bucket.Mode(*mode)
	default:
		return fmt.Errorf("--retention-mode: %q, want COMPLIANCE or GOVERNANCE", *mode)
	}
	ca := audit.TSACA
	if set["tsa-ca"] {
		ca = *tsaCA
	}
	if o.TSARoots, err = tsa.LoadRoots(ca); err != nil {
		return err
	}
	for _, f := range since {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		o.Since = append(o.Since, data)
	}
	if o.Witnesses, o.Quorum, err = witnessFlags(cfg, witnesses, *quorum, *offline); err != nil {
		return err
	}
	rep, err := verify.Run(ctx, o)
	if err != nil {
		return err
	}
	rep.KeySource = acc.KeySource
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(os.Stdout)
	}
	if *saveNote != "" && rep.LatestCheckpoint != nil {
		if err := os.WriteFile(*saveNote, rep.LatestCheckpoint, 0o644); err != nil {
			return err
		}
	}
	rawOut := io.Writer(os.Stdout)
	if *asJSON {
		rawOut = os.Stderr // stdout holds the one JSON report
	}
	rawFailures, err := verifyRaw(ctx, cfg, o, rawOut)
	if err != nil {
		return err
	}
	if !rep.OK() || rawFailures > 0 {
		return fmt.Errorf("%d verification failure(s)", len(rep.Failures)+rawFailures)
	}
	return nil
}

// witnessFlags returns the witnesses to trust: --witness VKEY[=URL] flags, or
// the configured ones; offline drops their URLs.
func witnessFlags(cfg *app.Config, flags []string, quorum int, offline bool) ([]witness.Witness, int, error) {
	var ws []witness.Witness
	if len(flags) > 0 {
		for _, f := range flags {
			vkey, url, _ := strings.Cut(f, "=")
			w, err := witness.ParseWitness(vkey, url)
			if err != nil {
				return nil, 0, fmt.Errorf("--witness: %w", err)
			}
			ws = append(ws, w)
		}
	} else {
		var err error
		if ws, err = cfg.Archive.Witness.Parsed(); err != nil {
			return nil, 0, err
		}
		if quorum == 0 {
			quorum = cfg.Archive.Witness.Quorum
		}
	}
	if offline {
		for i := range ws {
			ws[i].URL = ""
		}
	}
	if quorum == 0 {
		quorum = 1
	}
	if len(ws) > 0 && quorum > len(ws) {
		return nil, 0, fmt.Errorf("--witness-quorum %d: only %d witness(es) given", quorum, len(ws))
	}
	return ws, quorum, nil
}

// parseMinRetention reads --min-retention: "0" checks only that a lock is set.
func parseMinRetention(s string) (retention.Period, error) {
	if s == "0" {
		return retention.Period{}, nil
	}
	p, err := retention.Parse(s)
	if err != nil {
		return p, fmt.Errorf("--min-retention: %w", err)
	}
	return p, nil
}
