// Package evidence writes an evidence pack: a tar.gz an auditor can check
// with sha256sum, openssl and python3 alone (its README says how, step by
// step), holding the records of a period (optionally of one team) as
// canonical JSON and Parquet, an RFC 6962 inclusion proof per record, the
// signed manifests of their batches (the whole chain between the first and
// the last), the batch objects themselves (unless team-scoped, since batches
// mix teams), the checkpoints that cover them with their RFC 3161 tokens, the
// public keys, SHA256SUMS, and the EU AI Act Art. 12 / Annex IV field mapping.
//
// Export reads the bucket only and checks every batch it packs against its
// signed manifest first (leaves → root): it never packs what would not verify.
package evidence

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/verify"
)

//go:embed README.md.tmpl
var readmeTemplate string

// Mapping is the EU AI Act Art. 12 / Annex IV field mapping (EU-AI-ACT.md in
// every pack).
//
//go:embed eu-ai-act.md
var Mapping string

// Options select what to pack.
type Options struct {
	Bucket *bucket.Bucket
	Layout layout.Layout
	Origin string
	// Keys are the trusted public keys; nil means the keys in the bucket.
	Keys *keys.Ring
	// From and To bound the records by Kafka publish time, [From, To).
	From, To time.Time
	// Team keeps only records whose identity.team_id or identity.team_alias
	// equals it; "" keeps all.
	Team       string
	Partitions []int32
	Now        time.Time
	Tool       string // names the producing tool in the README
}

// Summary says what a pack holds.
type Summary struct {
	Records     int
	Batches     int
	Manifests   int
	Checkpoints int
	Files       int
	Dir         string // top-level folder inside the tar
}

// Export writes the pack as tar.gz to w.
func Export(ctx context.Context, o Options, w io.Writer) (*Summary, error) {
	if o.To.IsZero() || !o.From.Before(o.To) {
		return nil, errors.New("export: want --from before --to")
	}
	if o.Now.IsZero() {
		o.Now = time.Now().UTC()
	}
	ring := o.Keys
	if ring == nil || ring.Len() == 0 {
		var err error
		if ring, err = verify.LoadBucketKeys(ctx, o.Bucket, o.Layout); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "auditline-pack-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)
	x := &exporter{o: o, ring: ring, dir: tmp, keyIDs: map[string]bool{}, sum: &Summary{}}
	if err := x.run(ctx); err != nil {
		return nil, err
	}
	x.sum.Dir = fmt.Sprintf("auditline-evidence-%s-%s", o.From.UTC().Format("20060102T150405Z"), o.To.UTC().Format("20060102T150405Z"))
	if err := x.finish(); err != nil {
		return nil, err
	}
	if err := writeTarGz(w, tmp, x.sum.Dir, o.Now); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return x.sum, nil
}

type exporter struct {
	o      Options
	ring   *keys.Ring
	dir    string
	keyIDs map[string]bool
	sum    *Summary
	recs   *bufio.Writer
	proofs *bufio.Writer
	parts  map[int32]bool
}

func (x *exporter) path(rel string) string { return filepath.Join(x.dir, filepath.FromSlash(rel)) }

func (x *exporter) write(rel string, data []byte) error {
	p := x.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

type entry struct {
	key  string
	data []byte
	m    *manifest.Manifest
}

func (x *exporter) run(ctx context.Context) error {
	o := x.o
	want := map[int32]bool{}
	for _, p := range o.Partitions {
		want[p] = true
	}
	byPart := map[int32][]entry{}
	err := o.Bucket.List(ctx, o.Layout.ManifestsPrefix(), "", func(in bucket.Info) error {
		p, _, err := o.Layout.ParseManifest(in.Key)
		if err != nil || (len(want) > 0 && !want[p]) {
			return nil
		}
		data, _, err := o.Bucket.Get(ctx, in.Key)
		if err != nil {
			return err
		}
		m, _, err := manifest.Open(data, x.ring)
		if err != nil {
			return fmt.Errorf("export: %s does not verify (run auditline verify): %w", in.Key, err)
		}
		byPart[p] = append(byPart[p], entry{in.Key, data, m})
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range []string{"records", "proofs"} {
		if err := os.MkdirAll(x.path(d), 0o755); err != nil {
			return err
		}
	}
	rf, err := os.Create(x.path("records/records.jsonl"))
	if err != nil {
		return err
	}
	defer rf.Close()
	pf, err := os.Create(x.path("proofs/proofs.jsonl"))
	if err != nil {
		return err
	}
	defer pf.Close()
	x.recs, x.proofs = bufio.NewWriter(rf), bufio.NewWriter(pf)
	x.parts = map[int32]bool{}
	ps := make([]int32, 0, len(byPart))
	for p := range byPart {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	covered := map[int32]manifest.Head{} // the last packed batch per partition
	for _, p := range ps {
		es := byPart[p]
		first, last := -1, -1
		for i, e := range es {
			if e.m.MaxTime.Std().Before(o.From) || !e.m.MinTime.Std().Before(o.To) {
				continue
			}
			if first < 0 {
				first = i
			}
			last = i
		}
		if first < 0 {
			continue
		}
		for _, e := range es[first : last+1] {
			// The whole chain between the first and last batch, so step 5 of
			// the README can check every link.
			if err := x.write("bucket/"+e.key, e.data); err != nil {
				return err
			}
			x.keyIDs[e.m.KeyID] = true
			x.sum.Manifests++
			if e.m.MaxTime.Std().Before(o.From) || !e.m.MinTime.Std().Before(o.To) {
				continue
			}
			if err := x.batch(ctx, e); err != nil {
				return err
			}
		}
		covered[p] = manifest.Head{Partition: p, Seq: es[last].m.Seq, To: es[last].m.To}
	}
	if err := x.recs.Flush(); err != nil {
		return err
	}
	if err := x.proofs.Flush(); err != nil {
		return err
	}
	return x.checkpoints(ctx, covered)
}

// teamColumns are the columns a team filter compares, found by JSON path.
func teamColumns() []string {
	var out []string
	for _, f := range record.Fields() {
		if f.JSON == "identity.team_id" || f.JSON == "identity.team_alias" {
			out = append(out, f.Name)
		}
	}
	return out
}

// batch packs the selected records of one batch, after checking the batch
// against its signed manifest.
func (x *exporter) batch(ctx context.Context, e entry) error {
	m := e.m
	data, _, err := x.o.Bucket.Get(ctx, m.ObjectKey)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != m.ObjectSHA256 {
		return fmt.Errorf("export: %s does not match its signed manifest (run auditline verify)", m.ObjectKey)
	}
	leaves, _, err := verify.CheckBatch(ctx, data, m)
	if err != nil {
		return fmt.Errorf("export: %s: %w", m.ObjectKey, err)
	}
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer f.Close()
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return err
	}
	times, err := f.Times(ctx, batch.ColTimestamp)
	if err != nil {
		return err
	}
	canon, err := f.Binaries(ctx, batch.ColCanonical)
	if err != nil {
		return err
	}
	errs, err := f.Strings(ctx, batch.ColError)
	if err != nil {
		return err
	}
	ids, err := f.Strings(ctx, "record_id")
	if err != nil {
		return err
	}
	vers, err := f.Uint32s(ctx, "version")
	if err != nil {
		return err
	}
	var teams [][]string
	if x.o.Team != "" {
		for _, c := range teamColumns() {
			v, err := f.Strings(ctx, c)
			if err != nil {
				return err
			}
			teams = append(teams, v)
		}
	}
	from, to := record.TimeOf(x.o.From), record.TimeOf(x.o.To)
	var rows []batch.Row
	for i := range offs {
		if times[i] < from || times[i] >= to {
			continue
		}
		if x.o.Team != "" {
			match := false
			for _, col := range teams {
				match = match || col[i] == x.o.Team
			}
			if !match {
				continue
			}
		}
		p, err := verify.ProofFor(m, e.key, nil, leaves, i, nil, offs[i], ids[i], vers[i])
		if err != nil {
			return err
		}
		p.Record, p.Manifest = "", "" // records.jsonl and the manifest file hold them
		pj, err := json.Marshal(p)
		if err != nil {
			return err
		}
		x.proofs.Write(pj)
		x.proofs.WriteByte('\n')
		x.recs.Write(canon[i])
		x.recs.WriteByte('\n')
		row := batch.Row{Offset: offs[i], Timestamp: times[i], Canonical: canon[i], Error: errs[i]}
		copy(row.Leaf[:], leaves[i])
		if errs[i] == "" {
			var d record.Decision
			if json.Unmarshal(canon[i], &d) == nil {
				row.Decision = &d
			}
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil
	}
	x.sum.Records += len(rows)
	x.sum.Batches++
	x.parts[m.Partition] = true
	if x.o.Team == "" {
		if err := x.write("bucket/"+m.ObjectKey, data); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	root, _ := hex.DecodeString(m.MerkleRoot)
	if err := batch.Encode(&buf, rows, batch.Meta{Topic: m.Topic, Partition: m.Partition, From: m.From, To: m.To, Root: root}, batch.Options{}); err != nil {
		return err
	}
	return x.write(fmt.Sprintf("records/p%010d-%020d.parquet", m.Partition, m.From), buf.Bytes())
}

// checkpoints packs, per partition, the earliest checkpoint that covers the
// last packed batch, and the latest checkpoint, with their tokens.
func (x *exporter) checkpoints(ctx context.Context, covered map[int32]manifest.Head) error {
	o := x.o
	var seqs []uint64
	err := o.Bucket.List(ctx, o.Layout.CheckpointsPrefix(), "", func(in bucket.Info) error {
		if seq, err := o.Layout.ParseCheckpoint(in.Key); err == nil {
			seqs = append(seqs, seq)
		}
		return nil
	})
	if err != nil || len(seqs) == 0 {
		return err
	}
	cache := map[uint64]*manifest.Checkpoint{}
	raw := map[uint64][]byte{}
	get := func(seq uint64) (*manifest.Checkpoint, error) {
		if c, ok := cache[seq]; ok {
			return c, nil
		}
		data, _, err := o.Bucket.Get(ctx, o.Layout.Checkpoint(seq))
		if err != nil {
			return nil, err
		}
		c, _, err := manifest.OpenCheckpoint(data, x.ring)
		if err != nil {
			return nil, fmt.Errorf("export: checkpoint %d: %w", seq, err)
		}
		cache[seq], raw[seq] = c, data
		return c, nil
	}
	pick := map[uint64]bool{seqs[len(seqs)-1]: true}
	for p, h := range covered {
		// Heads only move forward, so the first covering checkpoint is found
		// by binary search.
		lo, hi := 0, len(seqs)
		for lo < hi {
			mid := (lo + hi) / 2
			c, err := get(seqs[mid])
			if err != nil {
				return err
			}
			ok := false
			for _, ch := range c.Heads {
				ok = ok || ch.Partition == p && ch.To >= h.To
			}
			if ok {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		if lo < len(seqs) {
			pick[seqs[lo]] = true
		}
	}
	for seq := range pick {
		c, err := get(seq)
		if err != nil {
			return err
		}
		x.keyIDs[c.KeyID] = true
		if err := x.write("bucket/"+o.Layout.Checkpoint(seq), raw[seq]); err != nil {
			return err
		}
		x.sum.Checkpoints++
		tok, _, err := o.Bucket.Get(ctx, o.Layout.Timestamp(seq))
		if err == nil {
			if err := x.write("bucket/"+o.Layout.Timestamp(seq), tok); err != nil {
				return err
			}
		} else if !errors.Is(err, bucket.ErrNotFound) {
			return err
		}
	}
	return nil
}

// readmeData fills README.md.tmpl.
type readmeData struct {
	Bucket, Prefix, Origin string
	From, To, FromArg      string
	ToArg, Team, Now, Tool string
	Records, Batches       int
	Partitions             int
	KeyIDs                 []string
}

// finish writes the keys, README, mapping and SHA256SUMS.
func (x *exporter) finish() error {
	var ids []string
	for id := range x.keyIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		pub, ok := x.ring.Key(id)
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
	t, err := template.New("README").Parse(readmeTemplate)
	if err != nil {
		return err
	}
	tool := x.o.Tool
	if tool == "" {
		tool = "auditline export"
	}
	var rd bytes.Buffer
	err = t.Execute(&rd, readmeData{
		Bucket: x.o.Bucket.Name(), Prefix: x.o.Layout.Prefix, Origin: x.o.Origin,
		From: x.o.From.UTC().Format(time.RFC3339), To: x.o.To.UTC().Format(time.RFC3339),
		FromArg: x.o.From.UTC().Format(time.RFC3339), ToArg: x.o.To.UTC().Format(time.RFC3339),
		Team: x.o.Team, Now: x.o.Now.UTC().Format(time.RFC3339), Tool: tool,
		Records: x.sum.Records, Batches: x.sum.Batches, Partitions: len(x.parts), KeyIDs: ids,
	})
	if err != nil {
		return err
	}
	if err := x.write("README.md", rd.Bytes()); err != nil {
		return err
	}
	if err := x.write("EU-AI-ACT.md", []byte(Mapping)); err != nil {
		return err
	}
	// SHA256SUMS over every file, sorted, in sha256sum's format.
	var files []string
	err = filepath.WalkDir(x.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(x.dir, p)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	var sums strings.Builder
	for _, rel := range files {
		data, err := os.ReadFile(x.path(rel))
		if err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(data), rel)
	}
	x.sum.Files = len(files) + 1
	return x.write("SHA256SUMS", []byte(sums.String()))
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
			if err := tw.WriteHeader(&tar.Header{Name: name + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mtime}); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg, ModTime: mtime}); err != nil {
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

// ReadProofs returns the proofs of a pack directory with the record bytes
// and manifest of each, for `auditline verify-proof --pack`.
func ReadProofs(dir string, fn func(p *verify.Proof, record, manifestData []byte) error) error {
	pf, err := os.Open(filepath.Join(dir, "proofs", "proofs.jsonl"))
	if err != nil {
		return err
	}
	defer pf.Close()
	rf, err := os.Open(filepath.Join(dir, "records", "records.jsonl"))
	if err != nil {
		return err
	}
	defer rf.Close()
	ps, rs := bufio.NewScanner(pf), bufio.NewScanner(rf)
	ps.Buffer(make([]byte, 1<<20), 64<<20)
	rs.Buffer(make([]byte, 1<<20), 64<<20)
	manifests := map[string][]byte{}
	n := 0
	for ps.Scan() {
		n++
		if !rs.Scan() {
			return fmt.Errorf("proofs.jsonl line %d has no record in records.jsonl", n)
		}
		p, err := verify.DecodeProof(ps.Bytes())
		if err != nil {
			return fmt.Errorf("proofs.jsonl line %d: %w", n, err)
		}
		md, ok := manifests[p.ManifestKey]
		if !ok {
			if md, err = os.ReadFile(filepath.Join(dir, "bucket", filepath.FromSlash(p.ManifestKey))); err != nil {
				return fmt.Errorf("proofs.jsonl line %d: %w", n, err)
			}
			manifests[p.ManifestKey] = md
		}
		if err := fn(p, bytes.Clone(rs.Bytes()), md); err != nil {
			return fmt.Errorf("proofs.jsonl line %d (record %s version %d): %w", n, p.RecordID, p.Version, err)
		}
	}
	if err := ps.Err(); err != nil {
		return err
	}
	if rs.Scan() {
		return fmt.Errorf("records.jsonl has more lines than proofs.jsonl (%d)", n)
	}
	return rs.Err()
}
