package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/auditline/auditline/privacy/envelope"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/rawlog"
	"github.com/auditline/auditline/sinks/archive/verify"
)

func init() {
	register(command{"evidence", "get a record's raw source events back from the archive, checked against its SHA-256s", runEvidence})
}

// evidenceItem is one line of `auditline evidence --json`.
type evidenceItem struct {
	EventID   string `json:"event_id"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	SHA256    string `json:"sha256"`
	// Status: ok (decrypted, SHA-256 equal), sealed (the sealed event names
	// the same SHA-256; not decrypted: no key store), erased (its key was
	// destroyed), missing (not in the archive's raw log), altered (another
	// SHA-256, or the bytes do not decrypt to it), error.
	Status      string `json:"status"`
	Detail      string `json:"detail,omitempty"`
	KeyID       string `json:"key_id,omitempty"`
	ManifestKey string `json:"manifest_key,omitempty"`
	File        string `json:"file,omitempty"`
}

func runEvidence(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("evidence", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline evidence [flags] <record id>

Finds the record in the archive (as prove does), then each source event its
evidence.sources names (raw topic, partition, offset, SHA-256) in the
archive's raw log of that topic (archive.raw; docs/archive.md "Raw
evidence"): the batch is checked against its signed manifest, the event
decrypted with the data subject's key (archive.raw.key_store, or
--key-store) and its SHA-256 compared with the record's. Prints one line per
event: ok, sealed (not decrypted: no key store), erased (the subject's key
was destroyed by 'auditline erase'), missing or altered. With --out, writes
each event's original bytes to DIR. Exit status 1 when an event is missing
or altered; erased is not a failure.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := configFlag(fs)
	kf := addKeyFlags(fs)
	version := fs.Uint("version", 0, "the record version (default: the latest)")
	ksDir := fs.String("key-store", "", "the key store directory (default archive.raw.key_store.dir)")
	outDir := fs.String("out", "", "write each event's original bytes to this directory")
	asJSON := fs.Bool("json", false, "print one JSON object per event")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, acc, err := openArchive(ctx, *configPath, kf)
	if err != nil {
		return err
	}
	p, err := verify.Prove(ctx, fs.Arg(0), verify.ProveOptions{Bucket: acc.Bucket, Layout: acc.Layout, Keys: acc.Keys, Version: uint32(*version)})
	if err != nil {
		return err
	}
	var rec struct {
		Evidence struct {
			Sources []struct {
				EventID   string `json:"event_id"`
				SHA256    string `json:"sha256"`
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Offset    int64  `json:"offset"`
			} `json:"sources"`
		} `json:"evidence"`
	}
	if err := json.Unmarshal([]byte(p.Record), &rec); err != nil {
		return fmt.Errorf("record %s: %w", fs.Arg(0), err)
	}
	dir := *ksDir
	if dir == "" {
		dir = cfg.Archive.Raw.KeyStore.Dir
	}
	var ks envelope.KeyStore
	if dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("key store: %w", err)
		}
		if ks, err = envelope.OpenFileStore(dir); err != nil {
			return err
		}
	}
	erasures, err := rawlog.Erasures(ctx, acc.Bucket, acc.Layout)
	if err != nil {
		return err
	}
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o700); err != nil {
			return err
		}
	}
	bad := 0
	for i, s := range rec.Evidence.Sources {
		it := evidenceItem{EventID: s.EventID, Topic: s.Topic, Partition: s.Partition, Offset: s.Offset, SHA256: s.SHA256}
		lay := layout.New(cfg.Archive.RawPrefix(s.Topic))
		f, err := rawlog.Fetch(ctx, acc.Bucket, lay, acc.Keys, s.Topic, s.Partition, s.Offset)
		switch {
		case errors.Is(err, rawlog.ErrNotArchived):
			it.Status, it.Detail = "missing", err.Error()
		case err != nil:
			it.Status, it.Detail = "altered", err.Error()
		case f.Sealed.SHA256 != s.SHA256:
			it.Status, it.Detail = "altered", "the archive holds an event with SHA-256 "+f.Sealed.SHA256
			it.ManifestKey = f.ManifestKey
		default:
			it.KeyID, it.ManifestKey = f.Sealed.KeyID, f.ManifestKey
			if er, ok := erasures[f.Sealed.KeyID]; ok {
				it.Status, it.Detail = "erased", "key "+er.KeyID+" destroyed at "+er.ErasedAt
				break
			}
			if ks == nil {
				it.Status, it.Detail = "sealed", "not decrypted: no key store (archive.raw.key_store.dir, --key-store)"
				break
			}
			pt, err := envelope.Open(ctx, ks, f.Sealed)
			switch {
			case errors.Is(err, envelope.ErrErased):
				it.Status, it.Detail = "erased", "key "+f.Sealed.KeyID+" destroyed"
			case err != nil:
				it.Status, it.Detail = "altered", err.Error()
			default:
				it.Status = "ok"
				if *outDir != "" {
					it.File = filepath.Join(*outDir, fmt.Sprintf("%02d-%s-%d-%d.json", i, s.Topic, s.Partition, s.Offset))
					if err := os.WriteFile(it.File, pt, 0o600); err != nil {
						return err
					}
				}
			}
		}
		if it.Status == "missing" || it.Status == "altered" {
			bad++
		}
		if *asJSON {
			b, _ := json.Marshal(it)
			fmt.Println(string(b))
			continue
		}
		line := []string{it.Status, s.Topic + "/" + strconv.Itoa(int(s.Partition)) + "/" + strconv.FormatInt(s.Offset, 10), s.EventID, "sha256:" + s.SHA256}
		if it.Detail != "" {
			line = append(line, "("+it.Detail+")")
		}
		if it.File != "" {
			line = append(line, "-> "+it.File)
		}
		fmt.Println(strings.Join(line, "  "))
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d source events missing or altered", bad, len(rec.Evidence.Sources))
	}
	return nil
}
