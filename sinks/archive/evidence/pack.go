package evidence

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/auditline/auditline/sinks/archive/keys"
)

// readmeData fills README.md.tmpl and eu-ai-act.md.
type readmeData struct {
	Bucket, Prefix, Origin string
	Scope                  []string // one line per scope criterion
	AsOf, Tool             string
	Records, Batches       int
	Partitions             int
	KeyIDs                 []string
	PackKeyID              string
	WholeBatches           bool
	Retention              string // the deployment's real retention, as observed
	RetentionModes         string
	Timestamps             int
	Cosignatures           int
	Witnesses              []string
	Covering, Latest       string
	HasProof               bool
	FromArg, ToArg         string
}

// shBlocks finds the ```sh blocks of the README: the steps VERIFY.sh runs.
var shBlocks = regexp.MustCompile("(?s)```sh\n(.*?)```")

// VerifyScript returns the README's shell blocks as one script, the way
// VERIFY.sh holds them.
func VerifyScript(readme []byte) string {
	var s strings.Builder
	s.WriteString("#!/usr/bin/env bash\n# The verification steps of README.md, exactly as written there. Run: bash VERIFY.sh\n")
	for _, bl := range shBlocks.FindAllSubmatch(readme, -1) {
		s.Write(bl[1])
	}
	return s.String()
}

func (x *exporter) scopeLines() []string {
	sc := x.pm.Scope
	var out []string
	if sc.PublishedFrom != "" || sc.PublishedTo != "" {
		out = append(out, fmt.Sprintf("published (Kafka time) from %s to %s (end exclusive)", orOpen(sc.PublishedFrom), orOpen(sc.PublishedTo)))
	}
	if sc.RequestedFrom != "" || sc.RequestedTo != "" {
		out = append(out, fmt.Sprintf("requested (request.start_time) from %s to %s (end exclusive)", orOpen(sc.RequestedFrom), orOpen(sc.RequestedTo)))
	}
	if sc.Tenant != "" {
		out = append(out, "tenant `"+sc.Tenant+"` (identity.tenant)")
	}
	if sc.Team != "" {
		out = append(out, "team `"+sc.Team+"` (identity.team_id or identity.team_alias)")
	}
	if len(sc.RecordIDs) > 0 {
		out = append(out, fmt.Sprintf("%d record id(s): %s", len(sc.RecordIDs), strings.Join(sc.RecordIDs, ", ")))
	}
	if len(sc.Partitions) > 0 {
		out = append(out, fmt.Sprintf("partitions %v", sc.Partitions))
	}
	return out
}

func orOpen(s string) string {
	if s == "" {
		return "(open)"
	}
	return s
}

// finish writes the keys, README, VERIFY.sh, EU-AI-ACT.md, the signed pack
// manifest and SHA256SUMS.
func (x *exporter) finish() error {
	if x.asOf.IsZero() {
		// No checkpoint at all: the newest packed manifest's seal time.
		for _, m := range x.lastPacked {
			if t := m.SealedAt.Std(); t.After(x.asOf) {
				x.asOf = t
			}
		}
	}
	x.asOf = x.asOf.UTC()
	x.pm.AsOf = x.asOf.Format(time.RFC3339Nano)
	x.pm.Records = x.sum.Records
	if x.pm.Batches == nil {
		x.pm.Batches = []PackBatch{}
	}
	var modes []string
	for m := range x.modes {
		modes = append(modes, m)
	}
	sort.Strings(modes)
	x.pm.Retention = Retention{Modes: modes, MinPeriodHours: int64(x.minPeriod / time.Hour)}
	if !x.minUntil.IsZero() {
		x.pm.Retention.MinRetainUntil = x.minUntil.UTC().Format(time.RFC3339)
	}
	// Keys: those that signed what is packed, and the pack's own.
	x.keyIDs[x.o.Signer.KeyID()] = true
	var ids []string
	for id := range x.keyIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		pub, ok := x.o.Keys.Key(id)
		if id == x.o.Signer.KeyID() {
			pub, ok = x.o.Signer.Public(), true
		}
		if !ok {
			return fmt.Errorf("export: key %s signed the packed statements but is not trusted", id)
		}
		pemBytes, err := keys.MarshalPublic(pub)
		if err != nil {
			return err
		}
		if err := x.write("keys/"+id+".pem", pemBytes); err != nil {
			return err
		}
		if x.o.Origin != "" {
			if vkey, err := keys.VerifierKey(x.o.Origin, pub); err == nil {
				if err := x.write("keys/"+id+".vkey", []byte(vkey+"\n")); err != nil {
					return err
				}
			}
		}
	}
	// Witness keys, as vkeys and as PEM for openssl.
	for _, w := range x.o.Witnesses {
		name := fmt.Sprintf("witnesses/%08x", w.Key.KeyHash())
		if err := x.write(name+".vkey", []byte(w.VKey+"\n")); err != nil {
			return err
		}
		if pub, err := cosignerPublicKey(w.VKey); err == nil {
			if pemBytes, err := keys.MarshalPublic(pub); err == nil {
				if err := x.write(name+".pem", pemBytes); err != nil {
					return err
				}
			}
		}
	}
	tool := x.o.Tool
	if tool == "" {
		tool = "auditline export"
	}
	rd := readmeData{
		Bucket: x.o.Bucket.Name(), Prefix: x.o.Layout.Prefix, Origin: x.o.Origin, Scope: x.scopeLines(),
		AsOf: x.pm.AsOf, Tool: tool, Records: x.sum.Records, Batches: x.sum.Batches, Partitions: len(x.parts),
		KeyIDs: ids, PackKeyID: x.o.Signer.KeyID(), WholeBatches: x.o.wholeBatches(),
		RetentionModes: strings.Join(modes, ", "), Retention: retentionText(x.pm.Retention),
		Timestamps: x.pm.Anchors.Timestamps, Cosignatures: x.pm.Anchors.Cosignatures, Witnesses: x.pm.Anchors.Witnesses,
		HasProof: x.pm.Checkpoints.Covering != nil,
		FromArg:  x.pm.Scope.PublishedFrom, ToArg: x.pm.Scope.PublishedTo,
	}
	if c := x.pm.Checkpoints.Covering; c != nil {
		rd.Covering, rd.Latest = c.Key, x.pm.Checkpoints.Latest.Key
	}
	for _, f := range []struct{ name, tmpl string }{{"README.md", readmeTemplate}, {"EU-AI-ACT.md", Mapping}} {
		t, err := template.New(f.name).Parse(f.tmpl)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, rd); err != nil {
			return err
		}
		if err := x.write(f.name, b.Bytes()); err != nil {
			return err
		}
		if f.name == "README.md" {
			if err := x.write("VERIFY.sh", []byte(VerifyScript(b.Bytes()))); err != nil {
				return err
			}
		}
	}
	// Every file so far, with its SHA-256, into the signed pack manifest.
	files, err := x.files()
	if err != nil {
		return err
	}
	x.pm.Files = files
	signed, err := x.pm.Sign(x.o.Signer)
	if err != nil {
		return err
	}
	if err := x.write(PackManifestFile, signed); err != nil {
		return err
	}
	// SHA256SUMS over every other file, in sha256sum's format (a convenience:
	// the signed pack manifest is what counts).
	files, err = x.files()
	if err != nil {
		return err
	}
	var sums strings.Builder
	for _, f := range files {
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, f.Path)
	}
	x.sum.Files = len(files) + 1
	sc := sha256.Sum256([]byte(fmt.Sprintf("%+v", x.pm.Scope)))
	x.sum.Dir = fmt.Sprintf("auditline-evidence-%s-%x", x.asOf.Format("20060102T150405Z"), sc[:4])
	return x.write("SHA256SUMS", []byte(sums.String()))
}

func retentionText(r Retention) string {
	if len(r.Modes) == 0 {
		return "no object packed"
	}
	s := fmt.Sprintf("S3 Object Lock %s", strings.Join(r.Modes, " and "))
	if r.MinRetainUntil != "" {
		days := r.MinPeriodHours / 24
		s += fmt.Sprintf(", every packed object locked for at least %d h (%d days) from its upload; the earliest lock ends %s", r.MinPeriodHours, days, r.MinRetainUntil)
	}
	return s
}

// cosignerPublicKey returns the Ed25519 key of a cosignature/v1 vkey.
func cosignerPublicKey(vkey string) (ed25519.PublicKey, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("vkey %q", vkey)
	}
	b, err := decodeB64(parts[2])
	if err != nil || len(b) != 33 || (b[0] != 0x04 && b[0] != 0x01) {
		return nil, fmt.Errorf("vkey %q: not an Ed25519 key", vkey)
	}
	return ed25519.PublicKey(b[1:]), nil
}

// files lists every file of the pack but the manifest and SHA256SUMS, sorted.
func (x *exporter) files() ([]PackFile, error) {
	var out []PackFile
	err := filepath.WalkDir(x.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(x.dir, p)
		rel = filepath.ToSlash(rel)
		if rel == PackManifestFile || rel == "SHA256SUMS" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out = append(out, PackFile{Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// writeTarGz writes dir as a gzip-compressed tar under top, in sorted order
// with a fixed modification time, so the same pack gives the same bytes.
func writeTarGz(w io.Writer, dir, top string, mtime time.Time) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		name := top
		if rel != "." {
			name = top + "/" + filepath.ToSlash(rel)
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			if err := tw.WriteHeader(&tar.Header{Name: name + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
			continue
		}
		mode := int64(0o644)
		if rel == "VERIFY.sh" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: st.Size(), Typeflag: tar.TypeReg, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
