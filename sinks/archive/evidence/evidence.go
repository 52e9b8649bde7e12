// Package evidence writes an evidence pack: a tar.gz an auditor can check
// with bash, sha256sum, openssl and python3 alone (its README says how, step
// by step, and VERIFY.sh runs the same steps), holding the records of a scope
// — a publish-time period, a request-time period, a tenant, a team, record
// ids — as canonical JSON and Parquet, an RFC 6962 inclusion proof per
// record, the signed manifests of their batches (the whole chain between the
// first and the last), the batch objects themselves when the scope takes
// whole batches, the first checkpoint covering them and the newest one with
// an RFC 6962 consistency proof between their logs, their RFC 3161 tokens and
// witness cosignatures, the public keys, the EU AI Act Art. 12 / Annex IV
// field mapping, and a signed pack manifest (package doc of PackManifest)
// listing every file with its SHA-256, the record count of every batch and the
// checkpoints — so a pack from which anything was removed, with SHA256SUMS
// recomputed, fails.
//
// Export reads the bucket only, trusts only the keys it is given, and checks
// every batch it packs against its signed manifest first (leaves → root): it
// never packs what would not verify. The output is deterministic: the same
// archive state and options give the same bytes (sorted entries, the newest
// checkpoint's time as the only clock).
package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/privacy/rules"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/chain"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/tlog"
	"github.com/auditline/auditline/sinks/archive/verify"
	"github.com/auditline/auditline/sinks/archive/witness"
)

//go:embed README.md.tmpl
var readmeTemplate string

// Mapping is the EU AI Act Art. 12 / Annex IV field mapping (EU-AI-ACT.md in
// every pack), a template filled with the pack's real retention and anchors.
//
//go:embed eu-ai-act.md
var Mapping string

// Options select what to pack.
type Options struct {
	Bucket *bucket.Bucket
	Layout layout.Layout
	Origin string
	// Keys are the trusted public keys (required; see verify.TrustedKeys).
	Keys *keys.Ring
	// Signer signs the pack manifest (required): the archive's key or an
	// export key whose id the auditor obtains out of band like the others.
	Signer *keys.Signer
	// From and To bound the records by Kafka publish time, [From, To).
	From, To time.Time
	// RequestFrom and RequestTo bound them by request.start_time.
	RequestFrom, RequestTo time.Time
	// Tenant keeps only records whose identity.tenant equals it.
	Tenant string
	// Team keeps only records whose identity.team_id or identity.team_alias
	// equals it.
	Team string
	// RecordIDs keeps only these records (every version).
	RecordIDs  []string
	Partitions []int32
	// Witnesses are the trusted witnesses: their keys go into the pack so
	// that their cosignatures can be checked.
	Witnesses []witness.Witness
	Tool      string // names the producing tool in the README
}

// wholeBatches reports whether the scope takes every record of a batch in the
// period (so the batch object itself can be packed).
func (o *Options) wholeBatches() bool {
	return o.Tenant == "" && o.Team == "" && len(o.RecordIDs) == 0 && o.RequestFrom.IsZero() && o.RequestTo.IsZero()
}

// Summary says what a pack holds.
type Summary struct {
	Records     int
	Batches     int
	Manifests   int
	Checkpoints int
	Rules       int // sealed rules objects the records name
	Files       int
	Dir         string // top-level folder inside the tar
}

// Export writes the pack as tar.gz to w.
func Export(ctx context.Context, o Options, w io.Writer) (*Summary, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Keys == nil || o.Keys.Len() == 0 {
		return nil, verify.ErrNoKeys
	}
	tmp, err := os.MkdirTemp("", "auditline-pack-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)
	x := &exporter{o: o, rd: chain.Reader{Bucket: o.Bucket, Layout: o.Layout, Keys: o.Keys}, dir: tmp, keyIDs: map[string]bool{}, sum: &Summary{},
		pm:    &PackManifest{Type: PackType, Origin: o.Origin, Bucket: o.Bucket.Name(), Prefix: o.Layout.Prefix, KeyID: o.Signer.KeyID()},
		modes: map[string]bool{}, rules: map[string]int{}}
	x.pm.Scope = o.scope()
	if err := x.run(ctx); err != nil {
		return nil, err
	}
	if err := x.finish(); err != nil {
		return nil, err
	}
	if err := writeTarGz(w, tmp, x.sum.Dir, x.asOf); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return x.sum, nil
}

func (o *Options) check() error {
	switch {
	case o.Signer == nil:
		return errors.New("export: a key to sign the pack manifest is required (--sign-key, default archive.signing_key_file)")
	case !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To):
		return errors.New("export: want --from before --to")
	case !o.RequestFrom.IsZero() && !o.RequestTo.IsZero() && !o.RequestFrom.Before(o.RequestTo):
		return errors.New("export: want --request-from before --request-to")
	case o.From.IsZero() && o.To.IsZero() && o.RequestFrom.IsZero() && o.RequestTo.IsZero() && len(o.RecordIDs) == 0:
		return errors.New("export: give a period (--from/--to by publish time, --request-from/--request-to by request time) or --record-id")
	}
	return nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (o *Options) scope() Scope {
	ids := slices.Clone(o.RecordIDs)
	sort.Strings(ids)
	ps := slices.Clone(o.Partitions)
	slices.Sort(ps)
	return Scope{PublishedFrom: rfc3339(o.From), PublishedTo: rfc3339(o.To), RequestedFrom: rfc3339(o.RequestFrom), RequestedTo: rfc3339(o.RequestTo),
		Tenant: o.Tenant, Team: o.Team, RecordIDs: slices.Compact(ids), Partitions: slices.Compact(ps)}
}

type exporter struct {
	o      Options
	rd     chain.Reader
	dir    string
	keyIDs map[string]bool
	sum    *Summary
	pm     *PackManifest
	recs   bytes.Buffer
	proofs bytes.Buffer
	parts  map[int32]bool
	asOf   time.Time
	// Retention seen on packed objects.
	modes     map[string]bool
	minPeriod time.Duration
	minUntil  time.Time
	// The last packed batch of each partition.
	lastPacked map[int32]*manifest.Manifest
	// rules: the rules hashes the packed records carry, and how many.
	rules map[string]int
}

func (x *exporter) path(rel string) string { return filepath.Join(x.dir, filepath.FromSlash(rel)) }

func (x *exporter) write(rel string, data []byte) error {
	p := x.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// retained notes the Object Lock of a packed object.
func (x *exporter) retained(in bucket.Info) {
	mode := string(in.LockMode)
	if mode == "" {
		mode = "none"
	}
	x.modes[mode] = true
	if in.LockMode == "" {
		return
	}
	if p := in.RetainUntil.Sub(in.LastModified); x.minPeriod == 0 || p < x.minPeriod {
		x.minPeriod = p
	}
	if x.minUntil.IsZero() || in.RetainUntil.Before(x.minUntil) {
		x.minUntil = in.RetainUntil
	}
}

func (x *exporter) run(ctx context.Context) error {
	o := x.o
	byPart := map[int32][]chain.Entry{}
	err := x.rd.Each(ctx, o.Partitions, func(e chain.Entry) error {
		if e.Err != nil {
			return fmt.Errorf("export: %s does not verify (run auditline verify): %w", e.Key, e.Err)
		}
		byPart[e.Partition] = append(byPart[e.Partition], e)
		return nil
	})
	if err != nil {
		return err
	}
	x.parts, x.lastPacked = map[int32]bool{}, map[int32]*manifest.Manifest{}
	for _, p := range chain.Partitions(keysOf(byPart)) {
		es := byPart[p]
		first, last := -1, -1
		for i, e := range es {
			if !x.candidate(e.M) {
				continue
			}
			n, err := x.batch(ctx, e)
			if err != nil {
				return err
			}
			if n == 0 {
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
		// The whole chain between the first and last packed batch, so that
		// every link can be checked.
		for _, e := range es[first : last+1] {
			if err := x.write("bucket/"+e.Key, e.Data); err != nil {
				return err
			}
			x.retained(e.Info)
			x.keyIDs[e.M.KeyID] = true
			x.sum.Manifests++
		}
		x.lastPacked[p] = es[last].M
	}
	if err := x.write("records/records.jsonl", x.recs.Bytes()); err != nil {
		return err
	}
	if err := x.write("proofs/proofs.jsonl", x.proofs.Bytes()); err != nil {
		return err
	}
	if err := x.rulesObjects(ctx); err != nil {
		return err
	}
	return x.checkpoints(ctx)
}

func keysOf(m map[int32][]chain.Entry) map[int32][]string {
	out := map[int32][]string{}
	for p := range m {
		out[p] = nil
	}
	return out
}

// candidate reports whether a batch may hold records of the scope.
func (x *exporter) candidate(m *manifest.Manifest) bool {
	o := x.o
	if !o.From.IsZero() && m.MaxTime.Std().Before(o.From) {
		return false
	}
	if !o.To.IsZero() && !m.MinTime.Std().Before(o.To) {
		return false
	}
	return true
}

// column returns the Parquet column of a record field by its JSON path.
func column(path string) string {
	for _, f := range record.Fields() {
		if f.JSON == path {
			return f.Name
		}
	}
	return ""
}

// batch packs the selected records of one batch, after checking the batch
// against its signed manifest, and returns how many it packed.
func (x *exporter) batch(ctx context.Context, e chain.Entry) (int, error) {
	m, o := e.M, x.o
	data, info, err := o.Bucket.Get(ctx, m.ObjectKey)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != m.ObjectSize || hex.EncodeToString(sum[:]) != m.ObjectSHA256 {
		return 0, fmt.Errorf("export: %s does not match its signed manifest (run auditline verify)", m.ObjectKey)
	}
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if len(o.RecordIDs) > 0 {
		may := false
		for _, id := range o.RecordIDs {
			ok, err := f.MayContain("record_id", id)
			if err != nil {
				return 0, err
			}
			may = may || ok
		}
		if !may {
			return 0, nil
		}
	}
	leaves, _, err := verify.CheckBatch(ctx, data, m)
	if err != nil {
		return 0, fmt.Errorf("export: %s: %w", m.ObjectKey, err)
	}
	col := func(name string) ([]string, error) { return f.Strings(ctx, name) }
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return 0, err
	}
	times, err := f.Times(ctx, batch.ColTimestamp)
	if err != nil {
		return 0, err
	}
	canon, err := f.Binaries(ctx, batch.ColCanonical)
	if err != nil {
		return 0, err
	}
	errs, err := col(batch.ColError)
	if err != nil {
		return 0, err
	}
	ids, err := col(column("record_id"))
	if err != nil {
		return 0, err
	}
	vers, err := f.Uint32s(ctx, column("version"))
	if err != nil {
		return 0, err
	}
	var tenants, teamIDs, teamAliases []string
	var starts []record.Time
	if o.Tenant != "" {
		if tenants, err = col(column("identity.tenant")); err != nil {
			return 0, err
		}
	}
	if o.Team != "" {
		if teamIDs, err = col(column("identity.team_id")); err != nil {
			return 0, err
		}
		if teamAliases, err = col(column("identity.team_alias")); err != nil {
			return 0, err
		}
	}
	if !o.RequestFrom.IsZero() || !o.RequestTo.IsZero() {
		if starts, err = f.Times(ctx, column("request.start_time")); err != nil {
			return 0, err
		}
	}
	want := map[string]bool{}
	for _, id := range o.RecordIDs {
		want[id] = true
	}
	from, to := record.TimeOf(o.From), record.TimeOf(o.To)
	rfrom, rto := record.TimeOf(o.RequestFrom), record.TimeOf(o.RequestTo)
	var rows []batch.Row
	for i := range offs {
		switch {
		case !o.From.IsZero() && times[i] < from, !o.To.IsZero() && times[i] >= to:
			continue
		case o.Tenant != "" && tenants[i] != o.Tenant:
			continue
		case o.Team != "" && teamIDs[i] != o.Team && teamAliases[i] != o.Team:
			continue
		case len(want) > 0 && !want[ids[i]]:
			continue
		case starts != nil && (!o.RequestFrom.IsZero() && starts[i] < rfrom || !o.RequestTo.IsZero() && starts[i] >= rto):
			continue
		}
		p, err := verify.ProofFor(m, e.Key, nil, leaves, i, nil, offs[i], times[i], ids[i], vers[i])
		if err != nil {
			return 0, err
		}
		p.Record, p.Manifest = "", "" // records.jsonl and the manifest file hold them
		pj, err := json.Marshal(p)
		if err != nil {
			return 0, err
		}
		x.proofs.Write(pj)
		x.proofs.WriteByte('\n')
		x.recs.Write(canon[i])
		x.recs.WriteByte('\n')
		if h := rules.HashOf(canon[i]); h != "" {
			x.rules[h]++
		}
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
		return 0, nil
	}
	x.sum.Records += len(rows)
	x.sum.Batches++
	x.parts[m.Partition] = true
	whole := o.wholeBatches()
	if whole {
		if err := x.write("bucket/"+m.ObjectKey, data); err != nil {
			return 0, err
		}
		x.retained(info)
	}
	x.pm.Batches = append(x.pm.Batches, PackBatch{Manifest: e.Key, Partition: m.Partition, Seq: m.Seq, From: m.From, To: m.To,
		Count: m.Count, Packed: len(rows), Object: whole})
	var buf bytes.Buffer
	root, _ := hex.DecodeString(m.MerkleRoot)
	meta := batch.Meta{Topic: m.Topic, Partition: m.Partition, From: m.From, To: m.To, Root: root, LeafRule: m.Rule()}
	if err := batch.Encode(&buf, rows, meta, batch.Options{}); err != nil {
		return 0, err
	}
	return len(rows), x.write(fmt.Sprintf("records/p%010d-%020d.parquet", m.Partition, m.From), buf.Bytes())
}

// checkpoints packs the first v2 checkpoint whose heads cover every packed
// batch, the newest v2 checkpoint, the consistency proof between their logs,
// and their time-stamp tokens and cosignatures. An archive without v2
// checkpoints (sealed before the global log) gets its v1 checkpoints the
// same way, without a proof.
func (x *exporter) checkpoints(ctx context.Context) error {
	o := x.o
	latestSeq, ok, err := x.rd.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	cache := map[uint64]*manifest.Checkpoint{}
	raw := map[uint64][]byte{}
	get := func(seq uint64) (*manifest.Checkpoint, error) {
		if c, ok := cache[seq]; ok {
			return c, nil
		}
		c, data, err := x.rd.Checkpoint(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("export: %w (run auditline verify)", err)
		}
		cache[seq], raw[seq] = c, data
		return c, nil
	}
	latest, err := get(latestSeq)
	if err != nil {
		return err
	}
	x.asOf = latest.Time.Std()
	covers := func(c *manifest.Checkpoint) bool {
		for p, m := range x.lastPacked {
			ok := false
			for _, h := range c.Heads {
				ok = ok || h.Partition == p && h.Seq >= m.Seq
			}
			if !ok {
				return false
			}
		}
		return true
	}
	// Heads only move forward: the first covering checkpoint by binary search.
	lo, hi := uint64(0), latestSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		c, err := get(mid)
		if err != nil {
			return err
		}
		if covers(c) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	pick := []uint64{latestSeq}
	var covering *manifest.Checkpoint
	if lo <= latestSeq {
		covering, _ = get(lo)
		// The global log needs v2 on both ends: take the first v2 from there.
		for s := lo; covering.Type != manifest.CheckpointType && s < latestSeq; {
			s++
			if covering, err = get(s); err != nil {
				return err
			}
		}
		pick = append(pick, covering.Seq)
	}
	if covering != nil && covering.Type == manifest.CheckpointType && latest.Type == manifest.CheckpointType {
		front, err := tlog.DecodeHashes(covering.LogFrontier)
		if err != nil {
			return err
		}
		// The log grows checkpoint by checkpoint (each appends its batches
		// partition by partition), so the leaves after the covering
		// checkpoint are appended one v2 checkpoint at a time.
		seg := tlog.NewSegment(covering.LogSize)
		prev := covering
		for s := covering.Seq + 1; s <= latest.Seq; s++ {
			c, err := get(s)
			if err != nil {
				return err
			}
			if c.Type != manifest.CheckpointType {
				continue
			}
			if err := x.rd.AppendLog(ctx, seg, prev.Heads, c.Heads); err != nil {
				return fmt.Errorf("export: the log from checkpoint %d to %d: %w (run auditline verify)", prev.Seq, c.Seq, err)
			}
			if seg.End() != c.LogSize {
				return fmt.Errorf("export: checkpoint %d says %d leaves, its batches give %d (run auditline verify)", c.Seq, c.LogSize, seg.End())
			}
			prev = c
		}
		proof, err := tlog.Consistency(covering.LogSize, front, seg)
		if err != nil {
			return err
		}
		x.pm.Checkpoints = PackCheckpoints{
			Covering:    &PackCheckpoint{Seq: covering.Seq, Key: o.Layout.Checkpoint(covering.Seq), LogSize: covering.LogSize, LogRoot: covering.LogRoot},
			Latest:      &PackCheckpoint{Seq: latest.Seq, Key: o.Layout.Checkpoint(latest.Seq), LogSize: latest.LogSize, LogRoot: latest.LogRoot},
			Consistency: tlog.EncodeHashes(proof),
		}
	}
	if x.pm.Checkpoints.Consistency == nil {
		x.pm.Checkpoints.Consistency = []string{}
	}
	slices.Sort(pick)
	pick = slices.Compact(pick)
	witnessNames := map[uint32]string{}
	for _, w := range o.Witnesses {
		witnessNames[w.Key.KeyHash()] = w.Name
	}
	names := map[string]bool{}
	for _, seq := range pick {
		c, _ := get(seq)
		x.keyIDs[c.KeyID] = true
		if err := x.write("bucket/"+o.Layout.Checkpoint(seq), raw[seq]); err != nil {
			return err
		}
		x.sum.Checkpoints++
		tok, info, err := o.Bucket.Get(ctx, o.Layout.Timestamp(seq))
		switch {
		case err == nil:
			if err := x.write("bucket/"+o.Layout.Timestamp(seq), tok); err != nil {
				return err
			}
			x.retained(info)
			x.pm.Anchors.Timestamps++
		case !errors.Is(err, bucket.ErrNotFound):
			return err
		}
		// Cosignatures of the trusted witnesses.
		prefix := strings.TrimSuffix(o.Layout.Cosignature(seq, 0), "00000000.note")
		err = o.Bucket.List(ctx, prefix, "", func(in bucket.Info) error {
			s, h, err := o.Layout.ParseCosignature(in.Key)
			if err != nil || s != seq || witnessNames[h] == "" {
				return nil
			}
			data, info, err := o.Bucket.Get(ctx, in.Key)
			if err != nil {
				return err
			}
			x.retained(info)
			x.pm.Anchors.Cosignatures++
			names[witnessNames[h]] = true
			return x.write("bucket/"+in.Key, data)
		})
		if err != nil {
			return err
		}
	}
	for n := range names {
		x.pm.Anchors.Witnesses = append(x.pm.Anchors.Witnesses, n)
	}
	sort.Strings(x.pm.Anchors.Witnesses)
	x.pm.Anchors.TSAUsed = x.pm.Anchors.Timestamps > 0
	x.pm.Anchors.WitnessUsed = x.pm.Anchors.Cosignatures > 0
	return nil
}

// rulesObjects packs the sealed enrich rules (privacy/rules) of every rules
// hash the packed records carry, as bucket/<prefix>rules/<hex>.json, each
// checked against its hash first: an auditor reads which rules decided a
// record's tier, sample and near-miss flags, offline.
func (x *exporter) rulesObjects(ctx context.Context) error {
	hashes := make([]string, 0, len(x.rules))
	for h := range x.rules {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		key, err := rules.Key(x.o.Layout.Prefix, h)
		if err != nil {
			return fmt.Errorf("export: %d packed record(s) carry a malformed rules_hash: %w", x.rules[h], err)
		}
		data, info, err := x.o.Bucket.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("export: rules object %s, named by %d packed record(s) (run auditline verify): %w", key, x.rules[h], err)
		}
		if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != h {
			return fmt.Errorf("export: rules object %s does not have the hash its name says (run auditline verify): %w", key, rules.ErrAltered)
		}
		if err := x.write("bucket/"+key, data); err != nil {
			return err
		}
		x.retained(info)
		x.sum.Rules++
	}
	return nil
}
