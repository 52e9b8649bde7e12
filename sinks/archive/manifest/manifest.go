// Package manifest defines the archive's two signed statements and their one
// wire form.
//
//   - Manifest: one per batch. It binds the Parquet object (key, size,
//     SHA-256) to its Kafka position (topic, partition, offsets [from, to)),
//     its record count and time range, the RFC 6962 root of its records'
//     leaves, and the SHA-256 of the previous manifest of the same partition —
//     a hash chain, so no batch can be removed, inserted or reordered without
//     breaking a link.
//   - Checkpoint: periodic, over every partition head (the latest manifest of
//     each partition), chained to the previous checkpoint the same way. Whoever
//     holds checkpoint n knows every head as of its time; a later deletion of a
//     batch or a checkpoint is then visible.
//
// Wire form: a C2SP signed note (https://c2sp.org/signed-note, produced and
// opened with golang.org/x/mod/sumdb/note). The note text is exactly one line:
// the RFC 8785 (JCS) canonical JSON of the statement, then "\n"; after a blank
// line come one or more Ed25519 signature lines "— <key name> <base64(4-byte
// key hash ‖ signature)>". The signed message is the text itself, so a
// standard tool checks a signature with no knowledge of this package:
//
//	head -n 1 m.manifest > body
//	sed -n 3p m.manifest | cut -d' ' -f3 | base64 -d | tail -c 64 > sig
//	openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in body -sigfile sig
//
// Why JSON in a note rather than the tlog-checkpoint line format: a manifest
// has a dozen fields and auditors read it with jq or Python; canonical JSON
// gives one byte form per statement (Open rejects any other), and the note
// envelope gives key names, key hashes and several signatures during a key
// rotation for free.
package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/gowebpki/jcs"
	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/merkletree"
	"github.com/auditline/auditline/sinks/archive/tlog"
)

// Statement types (the "type" member). The archiver writes the newest; Open
// accepts every version, each checked under its own rules, so an archive
// sealed before an upgrade keeps verifying.
const (
	// ManifestTypeV1: leaves are auditline.leaf/v1 (the record bytes only);
	// no leaf_rule member.
	ManifestTypeV1 = "auditline.archive.manifest/v1"
	// ManifestType (v2): leaf_rule names the leaf rule, auditline.leaf/v2
	// (the leaf binds topic, partition, offset and timestamp).
	ManifestType = "auditline.archive.manifest/v2"

	// CheckpointTypeV1 commits to the partition heads only.
	CheckpointTypeV1 = "auditline.archive.checkpoint/v1"
	// CheckpointType (v2) also commits to the archive's global log: log_size,
	// log_root and log_frontier (package tlog), the same state the
	// checkpoint's C2SP tlog-checkpoint note states for witnesses.
	CheckpointType = "auditline.archive.checkpoint/v2"
)

// Manifest describes one sealed batch.
type Manifest struct {
	Type      string `json:"type"`      // ManifestType
	Origin    string `json:"origin"`    // names the archive (archive.origin), e.g. "auditline.example.com/archive"
	Topic     string `json:"topic"`     // Kafka topic the records were read from
	Partition int32  `json:"partition"` // Kafka partition
	Seq       uint64 `json:"seq"`       // position in the partition's chain: 0, 1, 2, …
	// From and To are the Kafka offsets covered, half-open: [From, To). The
	// next manifest of the partition has From equal to this To. Offsets in the
	// range without a record are Kafka control records (transactions).
	From  int64 `json:"from"`
	To    int64 `json:"to"`
	Count int64 `json:"count"` // records in the batch = leaves of the tree
	// MinTime and MaxTime bound the Kafka timestamps of the records (when
	// enrich published each decision).
	MinTime record.Time `json:"min_time"`
	MaxTime record.Time `json:"max_time"`

	ObjectKey    string `json:"object_key"`    // the Parquet object
	ObjectSize   int64  `json:"object_size"`   // its size in bytes
	ObjectSHA256 string `json:"object_sha256"` // hex SHA-256 of its bytes
	MerkleRoot   string `json:"merkle_root"`   // hex RFC 6962 root over the records' leaf hashes, in offset order
	// PrevSHA256 is the hex SHA-256 of the previous manifest object of the
	// partition (all of its bytes, signatures included); "" for Seq 0.
	PrevSHA256    string      `json:"prev_manifest_sha256"`
	SchemaVersion int         `json:"schema_version"` // record.SchemaVersion of the Parquet columns
	KeyID         string      `json:"key_id"`         // the signing key (see package keys)
	SealedAt      record.Time `json:"sealed_at"`      // when the archiver signed it
	// LeafRule is how each record's leaf hash is computed (merkletree):
	// auditline.leaf/v2 in a v2 manifest; absent in v1 (auditline.leaf/v1).
	LeafRule string `json:"leaf_rule,omitempty"`
}

// Rule returns the manifest's leaf rule (v1 when the member is absent).
func (m *Manifest) Rule() string {
	if m.LeafRule == "" {
		return merkletree.LeafRuleV1
	}
	return m.LeafRule
}

// Head is one partition's latest manifest as a checkpoint saw it.
type Head struct {
	Partition int32  `json:"partition"`
	Seq       uint64 `json:"seq"`             // the manifest's Seq
	To        int64  `json:"to"`              // the manifest's To: every offset below it is sealed
	Manifest  string `json:"manifest"`        // the manifest's object key
	SHA256    string `json:"manifest_sha256"` // hex SHA-256 of the manifest object
}

// Checkpoint commits to every partition head at one time.
type Checkpoint struct {
	Type   string      `json:"type"` // CheckpointType
	Origin string      `json:"origin"`
	Seq    uint64      `json:"seq"`  // 0, 1, 2, …
	Time   record.Time `json:"time"` // when it was signed
	// PrevSHA256 is the hex SHA-256 of checkpoint Seq-1 (all of its bytes); ""
	// for Seq 0.
	PrevSHA256 string `json:"prev_checkpoint_sha256"`
	KeyID      string `json:"key_id"`
	Heads      []Head `json:"heads"` // sorted by partition, one per partition

	// The global log (v2 only; absent in v1). Every batch's leaves are
	// appended to one RFC 6962 tree in log order (package tlog): checkpoint
	// by checkpoint, the batches between the previous v2 checkpoint's heads
	// and these heads, partition by partition in ascending order, each
	// partition's batches by seq. LogSize is the number of leaves, LogRoot
	// its root (hex), LogFrontier the hex roots of the perfect subtrees that
	// make up [0, LogSize) from left to right (its compact range), from which
	// the next checkpoint and consistency proofs continue.
	LogSize     uint64   `json:"log_size,omitempty"`
	LogRoot     string   `json:"log_root,omitempty"`
	LogFrontier []string `json:"log_frontier,omitempty"`
	// LogSignature is the signing key's C2SP signed-note signature (the
	// base64 of key hash ‖ Ed25519 signature) over the C2SP tlog-checkpoint
	// text "<origin>\n<log_size>\n<base64 log_root>\n": with it, LogNote
	// rebuilds the checkpoint note that witnesses cosign, and that an auditor
	// keeps to run `auditline verify --since` later.
	LogSignature string `json:"log_signature,omitempty"`
}

// LogCheckpoint returns the global log state of a v2 checkpoint.
func (c *Checkpoint) LogCheckpoint() (tlog.Checkpoint, error) {
	root, err := hex.DecodeString(c.LogRoot)
	if c.Type != CheckpointType || err != nil || len(root) != tlog.HashSize {
		return tlog.Checkpoint{}, malformed("checkpoint %d has no global log state", c.Seq)
	}
	return tlog.Checkpoint{Origin: c.Origin, Size: c.LogSize, Root: root}, nil
}

// SignLog sets LogSignature: s signs the C2SP tlog-checkpoint of the log
// state. s must be the key that signs the checkpoint itself, named Origin.
func (c *Checkpoint) SignLog(s note.Signer) error {
	lc, err := c.LogCheckpoint()
	if err != nil {
		return err
	}
	if s.Name() != c.Origin {
		return fmt.Errorf("sign log checkpoint: key name %q is not the origin %q", s.Name(), c.Origin)
	}
	msg, err := lc.Sign(s)
	if err != nil {
		return fmt.Errorf("sign log checkpoint: %w", err)
	}
	// The note ends with the one signature line "— <name> <base64>\n".
	lines := strings.Split(strings.TrimSuffix(string(msg), "\n"), "\n")
	c.LogSignature = lines[len(lines)-1][len("— "+c.Origin+" "):]
	return nil
}

// LogNote returns the C2SP tlog-checkpoint note of a v2 checkpoint, signed
// by the archive (LogSignature). Witness cosignatures are added by appending
// their signature lines.
func (c *Checkpoint) LogNote() ([]byte, error) {
	lc, err := c.LogCheckpoint()
	if err != nil {
		return nil, err
	}
	return []byte(lc.Text() + "\n— " + c.Origin + " " + c.LogSignature + "\n"), nil
}

// Error is a malformed or unverifiable statement. Callers that report
// verification failures use errors.As to tell a bad signature (Signature set)
// from a malformed body.
type Error struct {
	Signature bool // the signature did not verify (or no trusted key signed it)
	Err       error
}

func (e *Error) Error() string {
	if e.Signature {
		return "signature: " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func malformed(format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...)}
}

// canonical returns the JCS bytes of v followed by "\n": the note text.
func canonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	c, err := jcs.Transform(b)
	if err != nil {
		return nil, err
	}
	return append(c, '\n'), nil
}

// sign wraps the canonical form of v in a signed note.
func sign(v any, signers []note.Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("no signer")
	}
	text, err := canonical(v)
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(text)}, signers...)
}

// open verifies msg's signatures and decodes its text strictly into v.
func open(msg []byte, known note.Verifiers, v any) (*note.Note, error) {
	n, err := note.Open(msg, known)
	if err != nil {
		var uv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		if errors.As(err, &uv) || errors.As(err, &inv) {
			return nil, &Error{Signature: true, Err: err}
		}
		return nil, malformed("note: %v", err)
	}
	if err := decodeText(n.Text, v); err != nil {
		return nil, err
	}
	return n, nil
}

func decodeText(text string, v any) error {
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("body: %v", err)
	}
	if dec.More() {
		return malformed("body: trailing data")
	}
	want, err := canonical(v)
	if err != nil {
		return malformed("body: %v", err)
	}
	if string(want) != text {
		return malformed("body: not in canonical form (RFC 8785 JSON on one line)")
	}
	return nil
}

// Sign returns m as a signed note.
func (m *Manifest) Sign(signers ...note.Signer) ([]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	b, err := sign(m, signers)
	if err != nil {
		return nil, fmt.Errorf("sign manifest: %w", err)
	}
	return b, nil
}

// Open verifies a manifest object against the trusted keys and decodes it.
func Open(msg []byte, known note.Verifiers) (*Manifest, *note.Note, error) {
	var m Manifest
	n, err := open(msg, known, &m)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.Check(); err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	return &m, n, nil
}

// Check reports the first inconsistency within m.
func (m *Manifest) Check() error {
	switch {
	case m.Type != ManifestType && m.Type != ManifestTypeV1:
		return malformed("type %q, want %q (or %q)", m.Type, ManifestType, ManifestTypeV1)
	case m.Type == ManifestTypeV1 && m.LeafRule != "":
		return malformed("a v1 manifest has no leaf_rule")
	case m.Type == ManifestType && m.LeafRule != merkletree.LeafRuleV2:
		return malformed("leaf_rule %q, want %q", m.LeafRule, merkletree.LeafRuleV2)
	case m.Origin == "":
		return malformed("origin is empty")
	case m.Partition < 0:
		return malformed("partition %d < 0", m.Partition)
	case m.From < 0 || m.To <= m.From:
		return malformed("offsets [%d, %d) are empty or negative", m.From, m.To)
	case m.Count < 1 || m.Count > m.To-m.From:
		return malformed("count %d does not fit offsets [%d, %d)", m.Count, m.From, m.To)
	case m.MaxTime < m.MinTime:
		return malformed("max_time before min_time")
	case m.ObjectKey == "":
		return malformed("object_key is empty")
	case m.ObjectSize <= 0:
		return malformed("object_size %d", m.ObjectSize)
	case !isHash(m.ObjectSHA256):
		return malformed("object_sha256 %q is not 64 hex digits", m.ObjectSHA256)
	case !isHash(m.MerkleRoot):
		return malformed("merkle_root %q is not 64 hex digits", m.MerkleRoot)
	case m.Seq == 0 && m.PrevSHA256 != "":
		return malformed("seq 0 has a previous manifest")
	case m.Seq > 0 && !isHash(m.PrevSHA256):
		return malformed("prev_manifest_sha256 %q is not 64 hex digits", m.PrevSHA256)
	case m.KeyID == "":
		return malformed("key_id is empty")
	}
	return nil
}

// Sign returns c as a signed note.
func (c *Checkpoint) Sign(signers ...note.Signer) ([]byte, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	b, err := sign(c, signers)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return b, nil
}

// OpenCheckpoint verifies a checkpoint object and decodes it.
func OpenCheckpoint(msg []byte, known note.Verifiers) (*Checkpoint, *note.Note, error) {
	var c Checkpoint
	n, err := open(msg, known, &c)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := c.Check(); err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &c, n, nil
}

// Check reports the first inconsistency within c.
func (c *Checkpoint) Check() error {
	switch {
	case c.Type != CheckpointType && c.Type != CheckpointTypeV1:
		return malformed("type %q, want %q (or %q)", c.Type, CheckpointType, CheckpointTypeV1)
	case c.Type == CheckpointTypeV1 && (c.LogSize != 0 || c.LogRoot != "" || c.LogFrontier != nil):
		return malformed("a v1 checkpoint has no log_size, log_root or log_frontier")
	case c.Type == CheckpointType && (c.LogSize == 0 || !isHash(c.LogRoot)):
		return malformed("log_size %d and log_root %q: want a non-empty log and a 64-hex-digit root", c.LogSize, c.LogRoot)
	case c.Type == CheckpointType && len(c.LogFrontier) != bits.OnesCount64(c.LogSize):
		return malformed("log_frontier has %d hashes, a log of %d leaves has %d", len(c.LogFrontier), c.LogSize, bits.OnesCount64(c.LogSize))
	case c.Type == CheckpointType && !isSignature(c.LogSignature):
		return malformed("log_signature %q is not the base64 of a note key hash and an Ed25519 signature", c.LogSignature)
	case c.Type == CheckpointTypeV1 && c.LogSignature != "":
		return malformed("a v1 checkpoint has no log_signature")
	case c.Origin == "":
		return malformed("origin is empty")
	case c.Seq == 0 && c.PrevSHA256 != "":
		return malformed("seq 0 has a previous checkpoint")
	case c.Seq > 0 && !isHash(c.PrevSHA256):
		return malformed("prev_checkpoint_sha256 %q is not 64 hex digits", c.PrevSHA256)
	case c.KeyID == "":
		return malformed("key_id is empty")
	}
	if !sort.SliceIsSorted(c.Heads, func(i, j int) bool { return c.Heads[i].Partition < c.Heads[j].Partition }) {
		return malformed("heads are not sorted by partition")
	}
	for i, h := range c.LogFrontier {
		if !isHash(h) {
			return malformed("log_frontier[%d] %q is not 64 hex digits", i, h)
		}
	}
	for i, h := range c.Heads {
		if i > 0 && c.Heads[i-1].Partition == h.Partition {
			return malformed("partition %d has two heads", h.Partition)
		}
		if h.Partition < 0 || h.To <= 0 || h.Manifest == "" || !isHash(h.SHA256) {
			return malformed("head of partition %d is incomplete", h.Partition)
		}
	}
	return nil
}

func isSignature(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && len(b) == 4+ed25519.SignatureSize && base64.StdEncoding.EncodeToString(b) == s
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && s == lowerHex(s)
}

func lowerHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Span is the batches of one partition that a v2 checkpoint appends to the
// global log: the manifests with seq FromSeq..ToSeq (inclusive), ending with
// Head.
type Span struct {
	Partition      int32
	FromSeq, ToSeq uint64
	Head           Head
}

// Appended returns, in log order (partitions ascending), the batches that a
// v2 checkpoint with heads next appends after the previous v2 checkpoint with
// heads prev (nil for the first v2 checkpoint: everything from seq 0). It
// fails when a partition of prev has no head in next or its head moved
// backwards: a log cannot lose batches.
func Appended(prev, next []Head) ([]Span, error) {
	old := make(map[int32]Head, len(prev))
	for _, h := range prev {
		old[h.Partition] = h
	}
	var out []Span
	seen := 0
	for _, h := range next {
		o, ok := old[h.Partition]
		switch {
		case !ok:
			out = append(out, Span{Partition: h.Partition, FromSeq: 0, ToSeq: h.Seq, Head: h})
		case h.Seq < o.Seq || h.To < o.To:
			return nil, fmt.Errorf("partition %d: head moved backwards from seq %d (offset %d) to seq %d (offset %d)", h.Partition, o.Seq, o.To, h.Seq, h.To)
		case h.Seq == o.Seq:
			seen++
			if h != o {
				return nil, fmt.Errorf("partition %d: head seq %d names another manifest (%s, %s) than before (%s, %s)", h.Partition, h.Seq, h.Manifest, h.SHA256, o.Manifest, o.SHA256)
			}
		default:
			seen++
			out = append(out, Span{Partition: h.Partition, FromSeq: o.Seq + 1, ToSeq: h.Seq, Head: h})
		}
	}
	if seen != len(prev) {
		for _, o := range prev {
			found := false
			for _, h := range next {
				found = found || h.Partition == o.Partition
			}
			if !found {
				return nil, fmt.Errorf("partition %d: its head (seq %d, offset %d) is gone", o.Partition, o.Seq, o.To)
			}
		}
	}
	return out, nil
}
