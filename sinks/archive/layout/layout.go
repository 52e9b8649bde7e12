// Package layout names every object of the archive. Keys sort by partition and
// offset (zero-padded decimal), so a plain S3 listing returns each partition's
// batches and manifests in chain order, and the last key of a prefix is the
// head of the chain.
//
//	<prefix>keys/<key id>.pem                     public key (SubjectPublicKeyInfo PEM)
//	<prefix>keys/<key id>.vkey                    the same key as a C2SP signed-note verifier key
//	<prefix>batches/p<partition>/<from>-<to>.parquet   records at offsets [from, to)
//	<prefix>manifests/p<partition>/<from>.manifest     signed manifest of the batch starting at from
//	<prefix>checkpoints/<seq>.checkpoint          signed checkpoint over every partition head
//	<prefix>checkpoints/<seq>.tsr                 its RFC 3161 time-stamp token (optional)
//	<prefix>cosignatures/<seq>.<key hash>.note    checkpoint seq's C2SP tlog-checkpoint note cosigned by one
//	                                              witness (key hash: 8 hex digits, the witness key's note key hash)
//
// Partitions are 10 digits (any int32), offsets and sequence numbers 20 (any
// int64/uint64). Offset ranges are half-open: a batch covers [from, to), and
// the next batch of the partition starts at exactly to, so adjacent keys read
// 0…0-0…1000, 0…1000-0…2000.
//
// A manifest key names only the partition and the first offset: it is the
// chain slot. Objects are written with If-None-Match: *, so two writers that
// race for the same slot (a zombie consumer after a rebalance) cannot fork the
// chain — exactly one manifest per slot can ever exist.
package layout

import (
	"fmt"
	"strconv"
	"strings"
)

// Layout is the naming under one key prefix of a bucket.
type Layout struct {
	// Prefix is "" or ends with "/".
	Prefix string
}

// New returns the layout under prefix, adding a trailing "/" when missing.
func New(prefix string) Layout {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Layout{Prefix: prefix}
}

const (
	partitionDigits = 10
	offsetDigits    = 20

	batchSuffix      = ".parquet"
	manifestSuffix   = ".manifest"
	checkpointSuffix = ".checkpoint"
	timestampSuffix  = ".tsr"
	cosigSuffix      = ".note"
)

func pad(n int64, digits int) string {
	s := strconv.FormatInt(n, 10)
	if len(s) >= digits {
		return s
	}
	return strings.Repeat("0", digits-len(s)) + s
}

func part(p int32) string { return "p" + pad(int64(p), partitionDigits) }

// KeysPrefix is where public keys are published.
func (l Layout) KeysPrefix() string { return l.Prefix + "keys/" }

// PublicKey is the key of the PEM public key with the given id.
func (l Layout) PublicKey(id string) string { return l.KeysPrefix() + id + ".pem" }

// VerifierKey is the key of the signed-note verifier key with the given id.
func (l Layout) VerifierKey(id string) string { return l.KeysPrefix() + id + ".vkey" }

// BatchesPrefix is the prefix of every batch object.
func (l Layout) BatchesPrefix() string { return l.Prefix + "batches/" }

// BatchPrefix is the prefix of partition p's batch objects.
func (l Layout) BatchPrefix(p int32) string { return l.BatchesPrefix() + part(p) + "/" }

// Batch is the key of the Parquet object holding partition p's records at
// offsets [from, to).
func (l Layout) Batch(p int32, from, to int64) string {
	return l.BatchPrefix(p) + pad(from, offsetDigits) + "-" + pad(to, offsetDigits) + batchSuffix
}

// ManifestsPrefix is the prefix of every manifest.
func (l Layout) ManifestsPrefix() string { return l.Prefix + "manifests/" }

// ManifestPrefix is the prefix of partition p's manifests.
func (l Layout) ManifestPrefix(p int32) string { return l.ManifestsPrefix() + part(p) + "/" }

// Manifest is the key of the manifest of partition p's batch starting at from.
func (l Layout) Manifest(p int32, from int64) string {
	return l.ManifestPrefix(p) + pad(from, offsetDigits) + manifestSuffix
}

// ManifestAfter returns the smallest string that sorts after every manifest
// key of partition p starting before from: a StartAfter bound for listing the
// manifests that start at from or later.
func (l Layout) ManifestAfter(p int32, from int64) string {
	if from <= 0 {
		return l.ManifestPrefix(p)
	}
	return l.ManifestPrefix(p) + pad(from-1, offsetDigits) + "~"
}

// CheckpointsPrefix is the prefix of checkpoints and their time-stamp tokens.
func (l Layout) CheckpointsPrefix() string { return l.Prefix + "checkpoints/" }

// Checkpoint is the key of checkpoint seq.
func (l Layout) Checkpoint(seq uint64) string {
	return l.CheckpointsPrefix() + padU(seq) + checkpointSuffix
}

// Timestamp is the key of checkpoint seq's RFC 3161 token.
func (l Layout) Timestamp(seq uint64) string {
	return l.CheckpointsPrefix() + padU(seq) + timestampSuffix
}

// CosignaturesPrefix is the prefix of the witnesses' cosignatures.
func (l Layout) CosignaturesPrefix() string { return l.Prefix + "cosignatures/" }

// Cosignature is the key of checkpoint seq's note cosigned by the witness
// whose note key hash is keyHash.
func (l Layout) Cosignature(seq uint64, keyHash uint32) string {
	return fmt.Sprintf("%s%s.%08x%s", l.CosignaturesPrefix(), padU(seq), keyHash, cosigSuffix)
}

// ParseCosignature returns the checkpoint seq and witness key hash of a
// cosignature key.
func (l Layout) ParseCosignature(key string) (seq uint64, keyHash uint32, err error) {
	name, ok := strings.CutPrefix(key, l.CosignaturesPrefix())
	rest, ok2 := strings.CutSuffix(name, cosigSuffix)
	num, hash, ok3 := strings.Cut(rest, ".")
	if !ok || !ok2 || !ok3 || len(num) != offsetDigits || len(hash) != 8 {
		return 0, 0, fmt.Errorf("cosignature key %q: want %s<%d digits>.<8 hex digits>%s", key, l.CosignaturesPrefix(), offsetDigits, cosigSuffix)
	}
	if seq, err = strconv.ParseUint(num, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("cosignature key %q: %w", key, err)
	}
	h, err := strconv.ParseUint(hash, 16, 32)
	if err != nil || fmt.Sprintf("%08x", h) != hash {
		return 0, 0, fmt.Errorf("cosignature key %q: bad key hash", key)
	}
	return seq, uint32(h), nil
}

func padU(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) >= offsetDigits {
		return s
	}
	return strings.Repeat("0", offsetDigits-len(s)) + s
}

// ParseManifest returns the partition and first offset named by a manifest key.
func (l Layout) ParseManifest(key string) (partition int32, from int64, err error) {
	rest, ok := strings.CutPrefix(key, l.ManifestsPrefix())
	if !ok {
		return 0, 0, fmt.Errorf("manifest key %q: not under %s", key, l.ManifestsPrefix())
	}
	p, name, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("manifest key %q: no partition folder", key)
	}
	if partition, err = parsePartition(p); err != nil {
		return 0, 0, fmt.Errorf("manifest key %q: %w", key, err)
	}
	num, ok := strings.CutSuffix(name, manifestSuffix)
	if !ok || len(num) != offsetDigits {
		return 0, 0, fmt.Errorf("manifest key %q: want <%d digits>%s", key, offsetDigits, manifestSuffix)
	}
	if from, err = strconv.ParseInt(num, 10, 64); err != nil || from < 0 {
		return 0, 0, fmt.Errorf("manifest key %q: bad offset", key)
	}
	return partition, from, nil
}

// ParseBatch returns the partition and offset range named by a batch key.
func (l Layout) ParseBatch(key string) (partition int32, from, to int64, err error) {
	rest, ok := strings.CutPrefix(key, l.BatchesPrefix())
	if !ok {
		return 0, 0, 0, fmt.Errorf("batch key %q: not under %s", key, l.BatchesPrefix())
	}
	p, name, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("batch key %q: no partition folder", key)
	}
	if partition, err = parsePartition(p); err != nil {
		return 0, 0, 0, fmt.Errorf("batch key %q: %w", key, err)
	}
	rng, ok := strings.CutSuffix(name, batchSuffix)
	a, b, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 || len(a) != offsetDigits || len(b) != offsetDigits {
		return 0, 0, 0, fmt.Errorf("batch key %q: want <from>-<to>%s", key, batchSuffix)
	}
	from, err1 := strconv.ParseInt(a, 10, 64)
	to, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || from < 0 || to < from {
		return 0, 0, 0, fmt.Errorf("batch key %q: bad offsets", key)
	}
	return partition, from, to, nil
}

// ParseCheckpoint returns the sequence number of a checkpoint key.
func (l Layout) ParseCheckpoint(key string) (uint64, error) {
	name, ok := strings.CutPrefix(key, l.CheckpointsPrefix())
	num, ok2 := strings.CutSuffix(name, checkpointSuffix)
	if !ok || !ok2 || len(num) != offsetDigits {
		return 0, fmt.Errorf("checkpoint key %q: want %s<%d digits>%s", key, l.CheckpointsPrefix(), offsetDigits, checkpointSuffix)
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint key %q: %w", key, err)
	}
	return seq, nil
}

// ParsePartitionFolder returns the partition of a "<prefix>manifests/pNNN/"
// common prefix (as a delimited listing returns it).
func (l Layout) ParsePartitionFolder(prefix string) (int32, error) {
	rest, ok := strings.CutPrefix(prefix, l.ManifestsPrefix())
	p, ok2 := strings.CutSuffix(rest, "/")
	if !ok || !ok2 {
		return 0, fmt.Errorf("partition folder %q: not under %s", prefix, l.ManifestsPrefix())
	}
	return parsePartition(p)
}

func parsePartition(s string) (int32, error) {
	num, ok := strings.CutPrefix(s, "p")
	if !ok || len(num) != partitionDigits {
		return 0, fmt.Errorf("partition folder %q: want p<%d digits>", s, partitionDigits)
	}
	n, err := strconv.ParseInt(num, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("partition folder %q: bad number", s)
	}
	return int32(n), nil
}
