package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/evidence"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/verify"
)

func newArchiveStage(cfg *Config, set settings) (stage, error) {
	a, err := archive.New(cfg.Archive, cfg.Kafka, cfg.topics().Decisions(), archive.Settings{Logger: set.Logger, Registry: set.Registry})
	if err != nil {
		return nil, err
	}
	return a, nil
}

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

// archiveAccess is what the auditor's commands need: the bucket, the layout
// and the trusted keys.
type archiveAccess struct {
	cfg       *Config
	b         *bucket.Bucket
	lay       layout.Layout
	ring      *keys.Ring // nil: keys published in the bucket
	keySource string
}

func openArchive(configPath string, keyFiles []string) (*archiveAccess, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	s3 := cfg.Archive.S3
	if s3.Endpoint == "" || s3.Bucket == "" {
		return nil, errors.New("archive.s3.endpoint and archive.s3.bucket are required (or AUDITLINE_S3 and AUDITLINE_S3_BUCKET)")
	}
	b, err := bucket.New(s3.BucketConfig())
	if err != nil {
		return nil, err
	}
	acc := &archiveAccess{cfg: cfg, b: b, lay: layout.New(cfg.Archive.Prefix)}
	ring, err := loadKeyFiles(keyFiles)
	if err != nil {
		return nil, err
	}
	switch {
	case ring.Len() > 0:
		acc.ring, acc.keySource = ring, "--key"
	case cfg.Archive.SigningKeyFile != "":
		if priv, err := keys.Load(cfg.Archive.SigningKeyFile); err == nil {
			acc.ring, acc.keySource = keys.NewRing(priv.Public().(ed25519.PublicKey)), "archive.signing_key_file"
		}
	}
	return acc, nil
}

// loadKeyFiles reads public keys (PEM files, or directories of *.pem).
func loadKeyFiles(paths []string) (*keys.Ring, error) {
	ring := keys.NewRing()
	for _, p := range paths {
		files := []string{p}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			files, _ = filepath.Glob(filepath.Join(p, "*.pem"))
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("--key: %w", err)
			}
			pub, err := keys.ParsePublic(data)
			if err != nil {
				return nil, fmt.Errorf("--key %s: %w", f, err)
			}
			ring.Add(pub)
		}
	}
	return ring, nil
}

func loadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--tsa-ca: %w", err)
	}
	pool := x509.NewCertPool()
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--tsa-ca: %w", err)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

func runVerify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline verify [flags]

Verifies the archive from the bucket alone: the Ed25519 signature of every
manifest and checkpoint, every batch object's SHA-256, every leaf recomputed
from the canonical bytes in the Parquet files up to the signed Merkle root,
the chain of each partition (no gap, no reordering, no deletion), the Object
Lock mode and retain-until of every object, and the checkpoints with their
RFC 3161 tokens. Prints a report naming the object key, partition and offset
range of every failure; exits 1 if there is any.

Needs read access to the bucket (archive.s3.* or AUDITLINE_S3 and
AUDITLINE_S3_BUCKET), nothing else.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", os.Getenv("AUDITLINE_CONFIG"), "YAML config file (env AUDITLINE_CONFIG)")
	var keyFiles, trusted listFlag
	fs.Var(&keyFiles, "key", "trusted public key (PEM file or a directory of them); repeatable. Default: archive.signing_key_file's public key, else the keys published in the bucket (then confirm their ids out of band)")
	from := fs.String("from", "", "only read batches with records at or after this time (RFC 3339 or YYYY-MM-DD); chains and checkpoints are always checked whole")
	to := fs.String("to", "", "only read batches with records before this time")
	partitions := fs.String("partition", "", "comma-separated partitions to check (default all)")
	mode := fs.String("retention-mode", "COMPLIANCE", "Object Lock mode every object must have: COMPLIANCE or GOVERNANCE (GOVERNANCE accepts both)")
	minRet := fs.Duration("min-retention", 0, "require retain-until ≥ upload time + this (e.g. 61320h for 7 years); 0 checks only that a lock is set")
	tsaCA := fs.String("tsa-ca", "", "PEM root certificate(s) RFC 3161 tokens must chain to (default: check tokens against the certificate they carry)")
	requireTS := fs.Bool("require-timestamps", false, "fail checkpoints that have no RFC 3161 token")
	fs.Var(&trusted, "checkpoint", "a checkpoint file kept from an earlier audit: the bucket must still hold it byte for byte; repeatable")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	parallel := fs.Int("parallel", 0, "batch objects read at once (default GOMAXPROCS)")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	acc, err := openArchive(*configPath, keyFiles)
	if err != nil {
		return err
	}
	o := verify.Options{Bucket: acc.b, Layout: acc.lay, Keys: acc.ring, MinRetention: *minRet, RequireTimestamps: *requireTS, Parallel: *parallel}
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
	if o.TSARoots, err = loadRoots(*tsaCA); err != nil {
		return err
	}
	for _, f := range trusted {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
		o.Trusted = append(o.Trusted, data)
	}
	rep, err := verify.Run(ctx, o)
	if err != nil {
		return err
	}
	if acc.keySource != "" {
		rep.KeySource = acc.keySource
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(os.Stdout)
	}
	if !rep.OK() {
		return fmt.Errorf("%d verification failure(s)", len(rep.Failures))
	}
	return nil
}

func runProve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prove", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline prove [flags] <record id>

Prints, as JSON, an RFC 6962 inclusion proof of one record version: the
record's canonical bytes, leaf hash, leaf index, tree size, audit path, Merkle
root, and the signed manifest that carries the root. Check it offline with
'auditline verify-proof' or any RFC 6962 library. A record id can have several
versions (a late event amends a record); the latest is proven unless --version
is given.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", os.Getenv("AUDITLINE_CONFIG"), "YAML config file (env AUDITLINE_CONFIG)")
	version := fs.Uint("version", 0, "the record version to prove (default: the latest)")
	from := fs.String("from", "", "only search batches with records at or after this time (faster)")
	to := fs.String("to", "", "only search batches with records before this time")
	partitions := fs.String("partition", "", "comma-separated partitions to search")
	var keyFiles listFlag
	fs.Var(&keyFiles, "key", "trusted public key (PEM) to open manifests with; repeatable (default: as verify)")
	out := fs.String("out", "-", "write the proof here (- for stdout)")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	acc, err := openArchive(*configPath, keyFiles)
	if err != nil {
		return err
	}
	o := verify.ProveOptions{Bucket: acc.b, Layout: acc.lay, Version: uint32(*version)}
	if acc.ring != nil {
		o.Keys = acc.ring
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
	p, err := verify.Prove(ctx, fs.Arg(0), o)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

func runVerifyProof(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("verify-proof", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline verify-proof --key KEY.pem [PROOF.json | -]
       auditline verify-proof --pack DIR [--key KEY.pem]

Checks inclusion proofs offline (no bucket access): the record's bytes hash to
the leaf, the audit path leads to the root (RFC 6962), and the root, tree size
and position are those of a manifest signed by a trusted key. With --pack,
checks every proof of an unpacked evidence pack against its records and
manifest files (keys from DIR/keys unless --key is given).

Flags:
`)
		fs.PrintDefaults()
	}
	var keyFiles listFlag
	fs.Var(&keyFiles, "key", "trusted public key (PEM file or directory); repeatable")
	pack := fs.String("pack", "", "an unpacked evidence pack directory")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if *pack != "" && len(keyFiles) == 0 {
		keyFiles = append(keyFiles, filepath.Join(*pack, "keys"))
		fmt.Fprintln(os.Stderr, "note: trusting the keys in the pack; compare their ids with the ones you were given")
	}
	ring, err := loadKeyFiles(keyFiles)
	if err != nil {
		return err
	}
	if ring.Len() == 0 {
		return errors.New("--key: at least one trusted public key is required")
	}
	if *pack != "" {
		if fs.NArg() != 0 {
			fs.Usage()
			return errUsage
		}
		n := 0
		err := evidence.ReadProofs(*pack, func(p *verify.Proof, rec, md []byte) error {
			_, err := verify.VerifyProof(p, ring, md, rec)
			n++
			return err
		})
		if err != nil {
			return err
		}
		fmt.Printf("OK: %d inclusion proofs verified against manifests signed by %s\n", n, strings.Join(ring.IDs(), ", "))
		return nil
	}
	var in io.Reader = os.Stdin
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	data, err := io.ReadAll(bufio.NewReader(in))
	if err != nil {
		return err
	}
	p, err := verify.DecodeProof(data)
	if err != nil {
		return err
	}
	res, err := verify.VerifyProof(p, ring, nil, nil)
	if err != nil {
		return fmt.Errorf("proof of %s version %d: %w", p.RecordID, p.Version, err)
	}
	m := res.Manifest
	fmt.Printf("OK: record %s version %d is leaf %d of %d in %s\n    partition %d offsets [%d, %d), root %s, signed by key %s (%s)\n",
		p.RecordID, p.Version, p.LeafIndex, p.TreeSize, m.ObjectKey, m.Partition, m.From, m.To, m.MerkleRoot, res.SignedBy, m.Origin)
	return nil
}

func runExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline export --from T --to T [--team TEAM] --out pack.tar.gz

Writes an evidence pack for an auditor: the records of the period (optionally
of one team) as canonical JSON and Parquet, an inclusion proof per record, the
signed manifests and checkpoints (with RFC 3161 tokens), the batch objects
(whole batches, unless --team), the public keys, SHA256SUMS, a README with
step-by-step verification using sha256sum, openssl and python3, and the EU AI
Act Art. 12 / Annex IV field mapping. Every batch is checked against its
signed manifest before it is packed.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", os.Getenv("AUDITLINE_CONFIG"), "YAML config file (env AUDITLINE_CONFIG)")
	from := fs.String("from", "", "start of the period, inclusive (RFC 3339 or YYYY-MM-DD; required)")
	to := fs.String("to", "", "end of the period, exclusive (required)")
	team := fs.String("team", "", "only records whose identity.team_id or identity.team_alias equals this")
	partitions := fs.String("partition", "", "comma-separated partitions (default all)")
	out := fs.String("out", "", "the pack to write (tar.gz; required)")
	var keyFiles listFlag
	fs.Var(&keyFiles, "key", "trusted public key (PEM file or directory); repeatable (default: as verify)")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if *out == "" || *from == "" || *to == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	acc, err := openArchive(*configPath, keyFiles)
	if err != nil {
		return err
	}
	o := evidence.Options{Bucket: acc.b, Layout: acc.lay, Origin: acc.cfg.Archive.OriginName(), Keys: acc.ring, Team: *team, Tool: "auditline export"}
	if o.From, err = parseTime("from", *from); err != nil {
		return err
	}
	if o.To, err = parseTime("to", *to); err != nil {
		return err
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
	fmt.Printf("wrote %s: %d records from %d batches, %d manifests, %d checkpoints, %d files (folder %s)\n",
		*out, sum.Records, sum.Batches, sum.Manifests, sum.Checkpoints, sum.Files, sum.Dir)
	return nil
}

func runKeys(_ context.Context, args []string) error {
	usage := func() {
		fmt.Fprint(os.Stderr, `Usage: auditline keys generate --out FILE
       auditline keys show --key FILE [--origin NAME]

generate  creates an Ed25519 signing key: PKCS #8 PEM, mode 0600 (refuses to
          overwrite), writes FILE.pub (SubjectPublicKeyInfo PEM) beside it and
          prints the key id. Set archive.signing_key_file to FILE.
show      prints the key id, the public key PEM and the signed-note verifier
          key of a private or public key file.

The archive publishes its public key in the bucket (keys/<id>.pem) when it
starts. Rotation: generate a new key, point archive.signing_key_file at it,
restart the archiver. Manifests name the key id that signed them; old public
keys stay in the bucket under Object Lock, so older batches remain verifiable.
A key id is the first 16 hex digits of SHA-256 over the public key's DER:
  openssl pkey -pubin -in FILE.pub -outform DER | sha256sum | cut -c1-16
`)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	fs.Usage = usage
	out := fs.String("out", "", "private key file to create")
	keyFile := fs.String("key", "", "key file to show")
	origin := fs.String("origin", "", "note key name for the verifier key (default: the config's archive origin)")
	configPath := fs.String("config", os.Getenv("AUDITLINE_CONFIG"), "YAML config file (env AUDITLINE_CONFIG)")
	if ok, err := parseFlags(fs, args[1:]); !ok {
		return err
	}
	switch args[0] {
	case "generate":
		if *out == "" {
			usage()
			return errUsage
		}
		priv, err := keys.Generate(nil)
		if err != nil {
			return err
		}
		if err := keys.WriteNew(*out, priv); err != nil {
			return err
		}
		pub, err := keys.MarshalPublic(priv.Public().(ed25519.PublicKey))
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out+".pub", pub, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s\n", keys.ID(priv.Public().(ed25519.PublicKey)))
		fmt.Fprintf(os.Stderr, "wrote %s (mode 0600) and %s.pub; set archive.signing_key_file: %s\n", *out, *out, *out)
		return nil
	case "show":
		if *keyFile == "" {
			usage()
			return errUsage
		}
		data, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		pub, err := keys.ParsePublic(data)
		if err != nil {
			return err
		}
		name := *origin
		if name == "" {
			cfg, err := loadConfig(*configPath)
			if err != nil {
				return err
			}
			name = cfg.Archive.OriginName()
		}
		pemBytes, err := keys.MarshalPublic(pub)
		if err != nil {
			return err
		}
		vkey, err := keys.VerifierKey(name, pub)
		if err != nil {
			return err
		}
		fmt.Printf("key id:       %s\nverifier key: %s\n%s", keys.ID(pub), vkey, pemBytes)
		return nil
	}
	usage()
	return errUsage
}
