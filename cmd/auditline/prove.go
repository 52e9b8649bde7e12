package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/auditline/auditline/sinks/archive/verify"
)

func init() {
	register(command{"prove", "print an inclusion proof for one record id", runProve})
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
	configPath := configFlag(fs)
	kf := addKeyFlags(fs)
	version := fs.Uint("version", 0, "the record version to prove (default: the latest)")
	from := fs.String("from", "", "only search batches with records at or after this time (faster)")
	to := fs.String("to", "", "only search batches with records before this time")
	partitions := fs.String("partition", "", "comma-separated partitions to search")
	out := fs.String("out", "-", "write the proof here (- for stdout)")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	_, acc, err := openArchive(ctx, *configPath, kf)
	if err != nil {
		return err
	}
	o := verify.ProveOptions{Bucket: acc.Bucket, Layout: acc.Layout, Keys: acc.Keys, Version: uint32(*version)}
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
