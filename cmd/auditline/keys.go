package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"

	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/witness"
)

func init() {
	register(command{"keys", "generate or show the archive signing key", runKeys})
}

func runKeys(_ context.Context, args []string) error {
	usage := func() {
		fmt.Fprint(os.Stderr, `Usage: auditline keys generate --out FILE
       auditline keys show --key FILE [--origin NAME] [--witness-name NAME]

generate  creates an Ed25519 signing key: PKCS #8 PEM, mode 0600 (refuses to
          overwrite), writes FILE.pub (SubjectPublicKeyInfo PEM) beside it and
          prints the key id. Set archive.signing_key_file to FILE.
show      prints the key id, the public key PEM and the signed-note verifier
          key of a private or public key file; with --witness-name, also its
          cosignature/v1 verifier key as a witness of that name (the key to
          put in archive.witness.witnesses[].key and verify --witness).

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
	configPath := configFlag(fs)
	witnessName := fs.String("witness-name", "", "also print the key's cosignature verifier key as a witness of this name")
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
		fmt.Printf("key id:       %s\nverifier key: %s\n", keys.ID(pub), vkey)
		if *witnessName != "" {
			plain, err := keys.VerifierKey(*witnessName, pub)
			if err != nil {
				return err
			}
			w, err := witness.ParseWitness(plain, "")
			if err != nil {
				return err
			}
			fmt.Printf("witness key:  %s\n", w.VKey)
		}
		fmt.Printf("%s", pemBytes)
		return nil
	}
	usage()
	return errUsage
}
