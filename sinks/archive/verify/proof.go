package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/chain"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
)

// Proof formats (the "format" member). v2 proves a record of a batch sealed
// under leaf rule auditline.leaf/v2 and carries what that leaf binds (topic,
// timestamp); v1 proves a record of a v1 batch.
const (
	ProofFormat   = "auditline.archive.inclusion-proof/v2"
	ProofFormatV1 = "auditline.archive.inclusion-proof/v1"
)

// Proof is an RFC 6962 inclusion proof (RFC 9162 §2.1.3) of one record
// version in its batch's tree, with the signed manifest that carries the root.
// Hashes are lowercase hex. Any RFC 6962 library checks it with
// (leaf_index, tree_size, leaf_hash, path, merkle_root); the leaf is
// SHA-256(0x00 ‖ leaf input) under leaf_rule (package merkletree): for v2 the
// input is "auditline.leaf/v2\n" ‖ topic ‖ "\n" ‖ partition ‖ "\n" ‖ offset ‖
// "\n" ‖ timestamp ‖ "\n" ‖ record, for v1 the record alone, where record is
// the canonical JSON given here.
type Proof struct {
	Format    string   `json:"format"`
	RecordID  string   `json:"record_id"`
	Version   uint32   `json:"version"`
	Topic     string   `json:"topic,omitempty"` // v2
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Timestamp int64    `json:"timestamp,omitempty"` // v2: the Kafka timestamp, Unix ms
	LeafRule  string   `json:"leaf_rule,omitempty"` // v2: auditline.leaf/v2
	LeafIndex uint64   `json:"leaf_index"`
	TreeSize  uint64   `json:"tree_size"`
	LeafHash  string   `json:"leaf_hash"`
	Path      []string `json:"path"`
	Root      string   `json:"merkle_root"`
	// Record is the record's canonical JSON (RFC 8785), as a JSON string:
	// `jq -j .record` prints the exact bytes that were hashed.
	Record       string `json:"record,omitempty"`
	ObjectKey    string `json:"object_key"`
	ObjectSHA256 string `json:"object_sha256"`
	ManifestKey  string `json:"manifest_key"`
	// Manifest is the signed manifest (a C2SP signed note); omitted in an
	// evidence pack, which carries the manifest file itself.
	Manifest string `json:"manifest,omitempty"`
	KeyID    string `json:"key_id"`
	// Versions lists every version of the record found, for context.
	Versions []uint32 `json:"versions_found,omitempty"`
}

// ProveOptions select where to look for a record.
type ProveOptions struct {
	Bucket     *bucket.Bucket
	Layout     layout.Layout
	Keys       note.Verifiers // to open manifests: required (see TrustedKeys), never implicitly the bucket's
	From, To   time.Time      // narrow the search to batches overlapping [From, To)
	Partitions []int32
	Version    uint32 // 0 means the latest version
	Parallel   int
}

// ErrNotFound means no batch holds the record (version).
var ErrNotFound = errors.New("record not found in the archive")

type hit struct {
	mkey    string
	mdata   []byte
	m       *manifest.Manifest
	row     int
	version uint32
}

// Prove finds a record id in the archive and returns an inclusion proof of
// its latest version (or opts.Version). Every candidate batch is downloaded
// and checked against its signed SHA-256 before it is parsed (see
// findInBatch); batches are then skipped by their Parquet bloom filter on
// record_id, so the columns of most are never decoded.
func Prove(ctx context.Context, recordID string, o ProveOptions) (*Proof, error) {
	if o.Parallel <= 0 {
		o.Parallel = 2 * runtime.GOMAXPROCS(0)
	}
	if o.Keys == nil {
		return nil, ErrNoKeys
	}
	type cand struct {
		key  string
		data []byte
		m    *manifest.Manifest
	}
	var cands []cand
	rd := chain.Reader{Bucket: o.Bucket, Layout: o.Layout, Keys: o.Keys, Parallel: o.Parallel}
	err := rd.Each(ctx, o.Partitions, func(e chain.Entry) error {
		if e.Data == nil {
			return e.Err // the bucket cannot be read
		}
		if e.M == nil {
			return nil // verify reports it; a proof needs a manifest that opens
		}
		m := e.M
		if (!o.From.IsZero() && m.MaxTime.Std().Before(o.From)) || (!o.To.IsZero() && !m.MinTime.Std().Before(o.To)) {
			return nil
		}
		cands = append(cands, cand{e.Key, e.Data, m})
		return nil
	})
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var hits []hit
	var firstErr error
	ch := make(chan cand)
	var wg sync.WaitGroup
	for range o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ch {
				hs, err := findInBatch(ctx, o.Bucket, c.m, recordID)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", c.m.ObjectKey, err)
				}
				for _, h := range hs {
					h.mkey, h.mdata, h.m = c.key, c.data, c.m
					hits = append(hits, h)
				}
				mu.Unlock()
			}
		}()
	}
	for _, c := range cands {
		ch <- c
	}
	close(ch)
	wg.Wait()
	if len(hits) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("%s: %w", recordID, ErrNotFound)
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].version != hits[j].version {
			return hits[i].version > hits[j].version
		}
		if hits[i].m.Partition != hits[j].m.Partition {
			return hits[i].m.Partition < hits[j].m.Partition
		}
		return hits[i].m.From < hits[j].m.From || hits[i].m.From == hits[j].m.From && hits[i].row < hits[j].row
	})
	var versions []uint32
	seen := map[uint32]bool{}
	for _, h := range hits {
		if !seen[h.version] {
			seen[h.version] = true
			versions = append(versions, h.version)
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	chosen := hits[0]
	if o.Version != 0 {
		found := false
		for _, h := range hits {
			if h.version == o.Version {
				chosen, found = h, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%s version %d (found versions %v): %w", recordID, o.Version, versions, ErrNotFound)
		}
	}
	p, err := buildProof(ctx, o.Bucket, chosen)
	if err != nil {
		return nil, err
	}
	p.Versions = versions
	return p, nil
}

// findInBatch returns the rows of a batch holding recordID. The object is
// read whole and checked against the size and SHA-256 its signed manifest
// names before any byte of it is parsed: a versioned bucket lets anyone with
// write access put a newer, altered version over a sealed object (Object
// Lock keeps the sealed version, not the key), and a few altered footer
// bytes make the Parquet reader (arrow-go's Arrow schema decoding) try to
// allocate hundreds of GB — a fatal out-of-memory, not a recoverable panic,
// that would take down `auditline prove` and the dashboard serving proofs.
// The bloom filter on record_id still spares decoding the columns of most
// batches.
func findInBatch(ctx context.Context, b *bucket.Bucket, m *manifest.Manifest, recordID string) ([]hit, error) {
	data, _, err := b.Get(ctx, m.ObjectKey)
	if err != nil {
		return nil, err
	}
	if err := matchesManifest(data, m); err != nil {
		return nil, err
	}
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if ok, err := f.MayContain("record_id", recordID); err != nil || !ok {
		return nil, err
	}
	ids, err := f.Strings(ctx, "record_id")
	if err != nil {
		return nil, err
	}
	vers, err := f.Uint32s(ctx, "version")
	if err != nil {
		return nil, err
	}
	var out []hit
	for i, id := range ids {
		if id == recordID {
			out = append(out, hit{row: i, version: vers[i]})
		}
	}
	return out, nil
}

// ErrAltered is returned when a batch object is not the one its signed
// manifest names (size or SHA-256 differ).
var ErrAltered = errors.New("batch object does not match its signed manifest (run auditline verify)")

// matchesManifest checks data against the size and SHA-256 in m.
func matchesManifest(data []byte, m *manifest.Manifest) error {
	sum := sha256.Sum256(data)
	if int64(len(data)) != m.ObjectSize || hex.EncodeToString(sum[:]) != m.ObjectSHA256 {
		return fmt.Errorf("%s: %w: %d bytes with SHA-256 %s, the manifest says %d bytes with SHA-256 %s",
			m.ObjectKey, ErrAltered, len(data), short(hex.EncodeToString(sum[:])), m.ObjectSize, short(m.ObjectSHA256))
	}
	return nil
}

// buildProof reads the chosen batch whole, checks it against its manifest and
// derives the proof.
func buildProof(ctx context.Context, b *bucket.Bucket, h hit) (*Proof, error) {
	data, _, err := b.Get(ctx, h.m.ObjectKey)
	if err != nil {
		return nil, err
	}
	if err := matchesManifest(data, h.m); err != nil {
		return nil, err
	}
	leaves, _, err := CheckBatch(ctx, data, h.m)
	if err != nil {
		return nil, fmt.Errorf("%s does not match its manifest (run auditline verify): %w", h.m.ObjectKey, err)
	}
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	canon, err := f.Binaries(ctx, batch.ColCanonical)
	if err != nil {
		return nil, err
	}
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return nil, err
	}
	ids, err := f.Strings(ctx, "record_id")
	if err != nil {
		return nil, err
	}
	times, err := f.Times(ctx, batch.ColTimestamp)
	if err != nil {
		return nil, err
	}
	return ProofFor(h.m, h.mkey, h.mdata, leaves, h.row, canon[h.row], offs[h.row], times[h.row], ids[h.row], h.version)
}

// ProofFor builds the proof of leaf row of a batch whose leaves are given.
func ProofFor(m *manifest.Manifest, manifestKey string, manifestData []byte, leaves [][]byte, row int, canonical []byte, offset int64, ts record.Time, recordID string, version uint32) (*Proof, error) {
	tr, err := merkletree.New(leaves)
	if err != nil {
		return nil, err
	}
	path, err := tr.Inclusion(uint64(row))
	if err != nil {
		return nil, err
	}
	p := &Proof{
		Format: ProofFormat, RecordID: recordID, Version: version, Partition: m.Partition, Offset: offset,
		LeafIndex: uint64(row), TreeSize: tr.Size(), LeafHash: hex.EncodeToString(leaves[row]),
		Root: hex.EncodeToString(tr.Root()), Record: string(canonical),
		ObjectKey: m.ObjectKey, ObjectSHA256: m.ObjectSHA256, ManifestKey: manifestKey, Manifest: string(manifestData), KeyID: m.KeyID,
	}
	if m.Rule() == merkletree.LeafRuleV1 {
		p.Format = ProofFormatV1
	} else {
		p.Topic, p.Timestamp, p.LeafRule = m.Topic, int64(ts), m.Rule()
	}
	for _, h := range path {
		p.Path = append(p.Path, hex.EncodeToString(h))
	}
	return p, nil
}

// ProofResult is what VerifyProof established.
type ProofResult struct {
	Manifest *manifest.Manifest
	SignedBy string // key id
}

// VerifyProof checks a proof offline: the record's bytes hash to the leaf,
// name the record id and version claimed, the path leads from the leaf to the
// root (transparency-dev/merkle's proof.VerifyInclusion), and the root, tree
// size, object and position are those of a manifest signed by a trusted key.
// manifestData overrides p.Manifest (an evidence pack keeps manifests as
// files); record overrides p.Record likewise.
func VerifyProof(p *Proof, known note.Verifiers, manifestData, rec []byte) (*ProofResult, error) {
	if p.Format != ProofFormat && p.Format != ProofFormatV1 {
		return nil, fmt.Errorf("format %q, want %q (or %q)", p.Format, ProofFormat, ProofFormatV1)
	}
	if manifestData == nil {
		manifestData = []byte(p.Manifest)
	}
	if rec == nil {
		rec = []byte(p.Record)
	}
	if len(rec) == 0 {
		return nil, errors.New("the proof carries no record bytes")
	}
	m, n, err := manifest.Open(manifestData, known)
	if err != nil {
		return nil, err
	}
	// The leaf rule comes from the signed manifest, not from the proof.
	switch {
	case m.Rule() == merkletree.LeafRuleV1 && p.Format != ProofFormatV1,
		m.Rule() != merkletree.LeafRuleV1 && (p.Format != ProofFormat || p.LeafRule != m.Rule() || p.Topic != m.Topic):
		return nil, fmt.Errorf("the proof (%s, leaf rule %q, topic %q) does not match its manifest (leaf rule %s, topic %s)", p.Format, p.LeafRule, p.Topic, m.Rule(), m.Topic)
	}
	leaf, err := LeafOf(m, p.Offset, record.Time(p.Timestamp), rec)
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(leaf[:]) != p.LeafHash {
		return nil, fmt.Errorf("leaf hash: the %s leaf of the record at offset %d is %x, the proof says %s", m.Rule(), p.Offset, leaf, p.LeafHash)
	}
	var id struct {
		RecordID string `json:"record_id"`
		Version  uint32 `json:"version"`
	}
	if err := json.Unmarshal(rec, &id); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if id.RecordID != p.RecordID || id.Version != p.Version {
		return nil, fmt.Errorf("the record is %s version %d, the proof claims %s version %d", id.RecordID, id.Version, p.RecordID, p.Version)
	}
	root, err := hex.DecodeString(p.Root)
	if err != nil {
		return nil, fmt.Errorf("merkle_root: %w", err)
	}
	path := make([][]byte, len(p.Path))
	for i, h := range p.Path {
		if path[i], err = hex.DecodeString(h); err != nil {
			return nil, fmt.Errorf("path[%d]: %w", i, err)
		}
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.LeafIndex, p.TreeSize, leaf[:], path, root); err != nil {
		return nil, fmt.Errorf("inclusion: %w", err)
	}
	switch {
	case m.MerkleRoot != p.Root:
		return nil, fmt.Errorf("the signed manifest's root is %s, the proof's %s", m.MerkleRoot, p.Root)
	case uint64(m.Count) != p.TreeSize:
		return nil, fmt.Errorf("the signed manifest has %d records, the proof's tree %d", m.Count, p.TreeSize)
	case m.Partition != p.Partition || p.Offset < m.From || p.Offset >= m.To:
		return nil, fmt.Errorf("offset %d of partition %d is not in the manifest's partition %d [%d, %d)", p.Offset, p.Partition, m.Partition, m.From, m.To)
	case m.ObjectKey != p.ObjectKey || m.ObjectSHA256 != p.ObjectSHA256:
		return nil, errors.New("the proof names another object than the signed manifest")
	}
	res := &ProofResult{Manifest: m}
	if r, ok := known.(interface{ SignerKeyID(string, uint32) string }); ok && len(n.Sigs) > 0 {
		res.SignedBy = r.SignerKeyID(n.Sigs[0].Name, n.Sigs[0].Hash)
	}
	return res, nil
}

// DecodeProof reads a proof strictly (unknown members are errors).
func DecodeProof(data []byte) (*Proof, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var p Proof
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	return &p, nil
}
