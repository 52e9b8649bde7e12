package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/auditline/auditline/sinks/archive/evidence"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/verify"
)

func init() {
	register(command{"verify-proof", "check an inclusion proof offline", runVerifyProof})
}

func runVerifyProof(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("verify-proof", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline verify-proof --key KEY.pem [PROOF.json | -]
       auditline verify-proof --pack DIR --key KEY.pem

Checks inclusion proofs offline (no bucket access): the record's bytes hash to
the leaf (bound to its topic, partition, offset and publish time), the audit
path leads to the root (RFC 6962), and the root, tree size and position are
those of a manifest signed by a trusted key.

With --pack, checks an unpacked evidence pack: its pack manifest is signed by
a trusted key, every file it lists is there with its SHA-256 and nothing else
is, every proof verifies, every batch has exactly the records the pack
manifest says, the manifests link up, the covering checkpoint covers every
packed batch and the consistency proof leads to the newest checkpoint. Exits
1 on the first kind of failure, listing each.

Flags:
`)
		fs.PrintDefaults()
	}
	var keyFiles listFlag
	fs.Var(&keyFiles, "key", "trusted public key (PEM file or directory); repeatable; required")
	pack := fs.String("pack", "", "an unpacked evidence pack directory")
	trustPack := fs.Bool("trust-pack-keys", false, "with --pack and no --key: trust the keys in the pack (confirm the ids printed out of band)")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if *pack != "" && len(keyFiles) == 0 && *trustPack {
		keyFiles = append(keyFiles, filepath.Join(*pack, "keys"))
	}
	if len(keyFiles) == 0 {
		return errors.New("--key: at least one trusted public key is required (the archive's key ids come from its owner, not from the pack or the bucket; --trust-pack-keys trusts the pack's)")
	}
	ring, err := keys.LoadRing(keyFiles...)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	if *pack != "" {
		if fs.NArg() != 0 {
			fs.Usage()
			return errUsage
		}
		rep, err := evidence.VerifyPack(*pack, ring)
		if err != nil {
			return err
		}
		if !rep.OK() {
			for _, f := range rep.Failures {
				fmt.Println("FAILED:", f)
			}
			return fmt.Errorf("the pack does not verify: %d failure(s)", len(rep.Failures))
		}
		fmt.Printf("OK: %d inclusion proofs verified; %d batches, %d files complete as the pack manifest (signed by key %s) lists; keys trusted: %s\n",
			rep.Proofs, len(rep.Manifest.Batches), len(rep.Manifest.Files), rep.SignedBy, strings.Join(ring.IDs(), ", "))
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
