package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/auditline/auditline/sinks/archive/evidence"
	"github.com/auditline/auditline/sinks/archive/keys"
)

func init() {
	register(command{"export", "write an evidence pack (tar.gz) for an auditor", runExport})
}

func runExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline export [--from T --to T] [--request-from T --request-to T]
                        [--tenant T] [--team T] [--record-id ID ...] --out pack.tar.gz

Writes an evidence pack for an auditor: the records of the scope — a period
by publish time (--from/--to) and/or by request time (--request-from/
--request-to), a tenant, a team, record ids — as canonical JSON and Parquet,
an inclusion proof per record, the signed manifests, the first checkpoint
covering them and the newest one with a consistency proof between their
logs (with RFC 3161 tokens and witness cosignatures), the batch objects
(whole batches, when the scope takes whole batches), the public keys, a
signed pack manifest listing every file with its SHA-256 and the record
count of every batch, a README (and VERIFY.sh) with step-by-step
verification using bash, sha256sum, openssl and python3, and the EU AI Act
Art. 12 / Annex IV field mapping stating the deployment's real retention and
anchors. Every batch is checked against its signed manifest before it is
packed. The same archive state and scope give the same bytes.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := configFlag(fs)
	kf := addKeyFlags(fs)
	from := fs.String("from", "", "start of the publish-time period, inclusive (RFC 3339 or YYYY-MM-DD)")
	to := fs.String("to", "", "end of the publish-time period, exclusive")
	rfrom := fs.String("request-from", "", "start of the request-time period (request.start_time), inclusive")
	rto := fs.String("request-to", "", "end of the request-time period, exclusive")
	tenant := fs.String("tenant", "", "only records whose identity.tenant equals this")
	team := fs.String("team", "", "only records whose identity.team_id or identity.team_alias equals this")
	var ids listFlag
	fs.Var(&ids, "record-id", "only this record (every version); repeatable")
	partitions := fs.String("partition", "", "comma-separated partitions (default all)")
	signKey := fs.String("sign-key", "", "private key (PKCS #8 PEM, mode 0600) that signs the pack manifest (default archive.signing_key_file); give its key id to the auditor")
	out := fs.String("out", "", "the pack to write (tar.gz; required)")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, acc, err := openArchive(ctx, *configPath, kf)
	if err != nil {
		return err
	}
	keyPath := *signKey
	if keyPath == "" {
		keyPath = cfg.Archive.SigningKeyFile
	}
	if keyPath == "" {
		return fmt.Errorf("--sign-key: a key to sign the pack manifest is required (or set archive.signing_key_file)")
	}
	priv, err := keys.Load(keyPath)
	if err != nil {
		return fmt.Errorf("--sign-key: %w", err)
	}
	signer, err := keys.NewSigner(cfg.Archive.OriginName(), priv)
	if err != nil {
		return err
	}
	ws, err := cfg.Archive.Witness.Parsed()
	if err != nil {
		return err
	}
	o := evidence.Options{Bucket: acc.Bucket, Layout: acc.Layout, Origin: cfg.Archive.OriginName(), Keys: acc.Keys, Signer: signer,
		Tenant: *tenant, Team: *team, RecordIDs: ids, Witnesses: ws, Tool: "auditline export"}
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"from", *from, &o.From}, {"to", *to, &o.To}, {"request-from", *rfrom, &o.RequestFrom}, {"request-to", *rto, &o.RequestTo}} {
		if *t.dst, err = parseTime(t.name, t.v); err != nil {
			return err
		}
	}
	if o.Partitions, err = parsePartitions(*partitions); err != nil {
		return err
	}
	tmp := *out + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	sum, err := evidence.Export(ctx, o, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d records from %d batches, %d manifests, %d checkpoints, %d files (folder %s); pack manifest signed by key %s\n",
		*out, sum.Records, sum.Batches, sum.Manifests, sum.Checkpoints, sum.Files, sum.Dir, signer.KeyID())
	return nil
}
