package evidence

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/privacy/rules"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/tlog"
	"github.com/auditline/auditline/sinks/archive/verify"
)

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// PackReport is what VerifyPack established.
type PackReport struct {
	Manifest *PackManifest
	SignedBy string // key id of the pack manifest's signature
	Proofs   int
	Failures []string
}

// OK reports whether the pack verified.
func (r *PackReport) OK() bool { return len(r.Failures) == 0 }

// VerifyPack checks an unpacked evidence pack offline against the trusted
// keys: the pack manifest is signed by one of them; every file it lists is
// there with its SHA-256 and nothing else is; every record hashes to its
// leaf and its proof leads to a signed batch root; each batch has exactly the
// records the pack manifest says; the manifests of each partition link up;
// the covering checkpoint covers every packed batch; and the consistency
// proof leads from the covering checkpoint's log to the newest one's.
func VerifyPack(dir string, known note.Verifiers) (*PackReport, error) {
	rep := &PackReport{}
	fail := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }
	raw, err := os.ReadFile(filepath.Join(dir, PackManifestFile))
	if err != nil {
		return nil, fmt.Errorf("the pack has no %s: %w", PackManifestFile, err)
	}
	pm, n, err := OpenPackManifest(raw, known)
	if err != nil {
		return nil, fmt.Errorf("%s does not verify with the trusted keys: %w", PackManifestFile, err)
	}
	rep.Manifest = pm
	if r, ok := known.(interface{ SignerKeyID(string, uint32) string }); ok && len(n.Sigs) > 0 {
		rep.SignedBy = r.SignerKeyID(n.Sigs[0].Name, n.Sigs[0].Hash)
	}

	// Files: exactly the listed ones, each with its SHA-256.
	listed := map[string]PackFile{}
	for _, f := range pm.Files {
		listed[f.Path] = f
	}
	present := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == PackManifestFile || rel == "SHA256SUMS" {
			return nil
		}
		present[rel] = true
		f, ok := listed[rel]
		if !ok {
			fail("%s is not listed in the signed pack manifest (added)", rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			fail("%s: SHA-256 %x, the signed pack manifest says %s (altered)", rel, sum, f.SHA256)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range pm.Files {
		if !present[f.Path] {
			fail("%s is missing (the signed pack manifest lists it)", f.Path)
		}
	}

	// Records and proofs, counted per batch.
	perBatch := map[string]int{}
	ruleRefs := map[string]int{}
	err = ReadProofs(dir, func(p *verify.Proof, rec, md []byte) error {
		rep.Proofs++
		perBatch[p.ManifestKey]++
		if h := rules.HashOf(rec); h != "" {
			ruleRefs[h]++
		}
		if _, err := verify.VerifyProof(p, known, md, rec); err != nil {
			fail("record %s version %d: %v", p.RecordID, p.Version, err)
		}
		return nil
	})
	if err != nil {
		fail("proofs: %v", err)
	}
	if rep.Proofs != pm.Records {
		fail("%d records in the pack, the signed pack manifest says %d", rep.Proofs, pm.Records)
	}
	byPart := map[int32][]string{}
	for _, b := range pm.Batches {
		if perBatch[b.Manifest] != b.Packed {
			fail("batch %s (partition %d offsets [%d, %d)): %d records in the pack, the signed pack manifest says %d", b.Manifest, b.Partition, b.From, b.To, perBatch[b.Manifest], b.Packed)
		}
		delete(perBatch, b.Manifest)
		md, err := os.ReadFile(filepath.Join(dir, "bucket", filepath.FromSlash(b.Manifest)))
		if err != nil {
			fail("batch %s: its manifest is missing", b.Manifest)
			continue
		}
		m, _, err := manifest.Open(md, known)
		if err != nil {
			fail("batch %s: %v", b.Manifest, err)
			continue
		}
		if m.Count != b.Count || m.Seq != b.Seq || m.Partition != b.Partition {
			fail("batch %s: the signed manifest has %d records (seq %d), the pack manifest says %d (seq %d)", b.Manifest, m.Count, m.Seq, b.Count, b.Seq)
		}
		if b.Object {
			obj, err := os.ReadFile(filepath.Join(dir, "bucket", filepath.FromSlash(m.ObjectKey)))
			sum := sha256.Sum256(obj)
			if err != nil || hex.EncodeToString(sum[:]) != m.ObjectSHA256 {
				fail("batch object %s is missing or is not the one its manifest names", m.ObjectKey)
			}
		}
		byPart[b.Partition] = append(byPart[b.Partition], b.Manifest)
	}
	for key, k := range perBatch {
		fail("%d record(s) of batch %s are not in the signed pack manifest", k, key)
	}
	checkRules(dir, pm, ruleRefs, fail)
	// The manifests of each partition link up from the first packed to the last.
	checkChains(dir, known, pm, fail)
	checkCheckpoints(dir, known, pm, fail)
	return rep, nil
}

// checkRules checks that the sealed rules object of every rules hash a
// packed record carries is in the pack, with the bytes of that hash.
func checkRules(dir string, pm *PackManifest, refs map[string]int, fail func(string, ...any)) {
	hashes := make([]string, 0, len(refs))
	for h := range refs {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		key, err := rules.Key(pm.Prefix, h)
		if err != nil {
			fail("%d record(s) carry a malformed rules_hash: %v", refs[h], err)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "bucket", filepath.FromSlash(key)))
		if err != nil {
			fail("rules object bucket/%s, named by %d record(s), is missing from the pack", key, refs[h])
			continue
		}
		if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != h {
			fail("rules object bucket/%s: SHA-256 %x, not the %s %d record(s) carry (altered)", key, sum, h, refs[h])
		}
	}
}

// checkChains checks the prev_manifest_sha256 links of every packed chain.
func checkChains(dir string, known note.Verifiers, pm *PackManifest, fail func(string, ...any)) {
	prefix := filepath.Join(dir, "bucket", filepath.FromSlash(pm.Prefix), "manifests")
	parts, _ := filepath.Glob(filepath.Join(prefix, "p*"))
	for _, pd := range parts {
		files, _ := filepath.Glob(filepath.Join(pd, "*.manifest"))
		sort.Strings(files)
		prev := ""
		var prevSeq uint64
		for i, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				fail("%s: %v", f, err)
				return
			}
			m, _, err := manifest.Open(data, known)
			if err != nil {
				fail("%s: %v", f, err)
				continue
			}
			if i > 0 && (m.PrevSHA256 != prev || m.Seq != prevSeq+1) {
				rel, _ := filepath.Rel(dir, f)
				fail("%s: does not follow the manifest before it in the pack (a batch between them was removed)", filepath.ToSlash(rel))
			}
			sum := sha256.Sum256(data)
			prev, prevSeq = hex.EncodeToString(sum[:]), m.Seq
		}
	}
}

// checkCheckpoints checks the covering and newest checkpoints and the
// consistency proof between them.
func checkCheckpoints(dir string, known note.Verifiers, pm *PackManifest, fail func(string, ...any)) {
	c := pm.Checkpoints
	if c.Covering == nil {
		if len(pm.Batches) > 0 {
			fail("the pack names no checkpoint covering its batches")
		}
		return
	}
	open := func(pc *PackCheckpoint) *manifest.Checkpoint {
		data, err := os.ReadFile(filepath.Join(dir, "bucket", filepath.FromSlash(pc.Key)))
		if err != nil {
			fail("checkpoint %s is missing", pc.Key)
			return nil
		}
		cp, _, err := manifest.OpenCheckpoint(data, known)
		if err != nil {
			fail("checkpoint %s: %v", pc.Key, err)
			return nil
		}
		if cp.LogSize != pc.LogSize || cp.LogRoot != pc.LogRoot || cp.Seq != pc.Seq {
			fail("checkpoint %s states another log (%d leaves, %s) than the pack manifest", pc.Key, cp.LogSize, cp.LogRoot)
			return nil
		}
		if note, err := cp.LogNote(); err != nil {
			fail("checkpoint %s: %v", pc.Key, err)
		} else if _, _, err := tlog.Open(note, known); err != nil {
			fail("checkpoint %s: log_signature: %v", pc.Key, err)
		}
		return cp
	}
	cov, lat := open(c.Covering), open(c.Latest)
	if cov == nil || lat == nil {
		return
	}
	last := map[int32]uint64{}
	for _, b := range pm.Batches {
		last[b.Partition] = max(last[b.Partition], b.Seq)
	}
	for p, seq := range last {
		ok := false
		for _, h := range cov.Heads {
			ok = ok || h.Partition == p && h.Seq >= seq
		}
		if !ok {
			fail("checkpoint %s does not cover batch seq %d of partition %d", c.Covering.Key, seq, p)
		}
	}
	proof, err := tlog.DecodeHashes(c.Consistency)
	rootC, _ := hex.DecodeString(cov.LogRoot)
	rootL, _ := hex.DecodeString(lat.LogRoot)
	if err == nil {
		err = tlog.VerifyConsistency(cov.LogSize, lat.LogSize, proof, rootC, rootL)
	}
	if err != nil {
		fail("the consistency proof from %s (%d leaves) to %s (%d leaves) does not verify: %v", c.Covering.Key, cov.LogSize, c.Latest.Key, lat.LogSize, err)
	}
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
		if strings.Contains(p.ManifestKey, "..") {
			return fmt.Errorf("proofs.jsonl line %d: manifest key %q", n, p.ManifestKey)
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
