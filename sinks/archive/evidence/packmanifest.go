package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gowebpki/jcs"
	"golang.org/x/mod/sumdb/note"
)

// PackType is the "type" of a pack manifest.
const PackType = "auditline.evidence.pack/v1"

// PackManifestFile is the pack manifest's path inside a pack.
const PackManifestFile = "pack.manifest"

// PackManifest lists everything a pack must contain. It is a C2SP signed
// note (one line of RFC 8785 JSON, like the archive's manifests), so that
// removing anything from the pack and recomputing SHA256SUMS is detected: the
// file list, the per-batch record counts and the checkpoints are signed.
type PackManifest struct {
	Type    string `json:"type"`   // PackType
	Origin  string `json:"origin"` // the archive's origin
	Bucket  string `json:"bucket"`
	Prefix  string `json:"prefix"`
	AsOf    string `json:"as_of"` // the newest checkpoint's time: the state of the archive the pack shows
	KeyID   string `json:"key_id"`
	Scope   Scope  `json:"scope"`
	Records int    `json:"records"` // lines of records/records.jsonl (= proofs/proofs.jsonl)
	// Batches are the batches with packed records, in log order.
	Batches []PackBatch `json:"batches"`
	// Checkpoints: the first checkpoint covering every packed batch, the
	// newest one, and the RFC 6962 consistency proof between their logs.
	Checkpoints PackCheckpoints `json:"checkpoints"`
	Retention   Retention       `json:"retention"`
	Anchors     PackAnchors     `json:"anchors"`
	// Files are every file of the pack except pack.manifest and SHA256SUMS.
	Files []PackFile `json:"files"`
}

// Scope is what the pack was asked for.
type Scope struct {
	PublishedFrom string   `json:"published_from,omitempty"` // Kafka publish time, RFC 3339, inclusive
	PublishedTo   string   `json:"published_to,omitempty"`   // exclusive
	RequestedFrom string   `json:"requested_from,omitempty"` // request.start_time, inclusive
	RequestedTo   string   `json:"requested_to,omitempty"`   // exclusive
	Tenant        string   `json:"tenant,omitempty"`         // identity.tenant
	Team          string   `json:"team,omitempty"`           // identity.team_id or identity.team_alias
	RecordIDs     []string `json:"record_ids,omitempty"`
	Partitions    []int32  `json:"partitions,omitempty"`
}

// PackBatch is one batch with packed records.
type PackBatch struct {
	Manifest  string `json:"manifest"` // bucket key; the file is bucket/<manifest>
	Partition int32  `json:"partition"`
	Seq       uint64 `json:"seq"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
	Count     int64  `json:"records_in_batch"` // the signed manifest's count
	Packed    int    `json:"records_in_pack"`  // proofs naming this manifest
	// Object is set when the whole batch object is in the pack (bucket/<object key>).
	Object bool `json:"batch_object_included"`
}

// PackCheckpoint names one checkpoint in the pack.
type PackCheckpoint struct {
	Seq     uint64 `json:"seq"`
	Key     string `json:"key"`
	LogSize uint64 `json:"log_size"`
	LogRoot string `json:"log_root"`
}

// PackCheckpoints are the checkpoints of the pack.
type PackCheckpoints struct {
	Covering *PackCheckpoint `json:"covering,omitempty"` // absent when the newest packed batches are in no v2 checkpoint yet
	Latest   *PackCheckpoint `json:"latest,omitempty"`
	// Consistency is the RFC 6962 consistency proof (hex) from Covering's
	// log to Latest's.
	Consistency []string `json:"consistency_proof"`
}

// Retention is the Object Lock of the packed objects as the bucket reported
// it when the pack was written: the deployment's real retention, not a claim.
type Retention struct {
	Modes []string `json:"modes"` // the modes seen ("COMPLIANCE", "GOVERNANCE", "none")
	// MinPeriod is the shortest retain-until minus upload time, in hours.
	MinPeriodHours int64 `json:"min_period_hours"`
	// MinRetainUntil is the earliest retain-until (RFC 3339).
	MinRetainUntil string `json:"min_retain_until"`
}

// PackAnchors says what anchors the packed checkpoints outside the bucket.
type PackAnchors struct {
	Timestamps   int      `json:"rfc3161_tokens"`       // tokens in the pack
	Cosignatures int      `json:"witness_cosignatures"` // cosigned checkpoint notes in the pack
	Witnesses    []string `json:"witnesses,omitempty"`  // witness names whose cosignatures are packed
	TSAUsed      bool     `json:"tsa_configured"`       // any checkpoint of the archive has a token
	WitnessUsed  bool     `json:"witnesses_configured"` // any checkpoint of the archive has a cosignature
}

// PackFile is one file and its SHA-256.
type PackFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Sign returns m as a signed note.
func (m *PackManifest) Sign(s note.Signer) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	c, err := jcs.Transform(b)
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(c) + "\n"}, s)
}

// OpenPackManifest verifies a pack manifest against the trusted keys and
// decodes it strictly.
func OpenPackManifest(msg []byte, known note.Verifiers) (*PackManifest, *note.Note, error) {
	n, err := note.Open(msg, known)
	if err != nil {
		return nil, nil, fmt.Errorf("pack manifest: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(n.Text)))
	dec.DisallowUnknownFields()
	var m PackManifest
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("pack manifest: %w", err)
	}
	if m.Type != PackType {
		return nil, nil, fmt.Errorf("pack manifest: type %q, want %q", m.Type, PackType)
	}
	b, _ := json.Marshal(&m)
	c, err := jcs.Transform(b)
	if err != nil || string(c)+"\n" != n.Text {
		return nil, nil, errors.New("pack manifest: not in canonical form")
	}
	return &m, n, nil
}
