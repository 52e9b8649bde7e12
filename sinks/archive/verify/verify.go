// Package verify checks an archive from the bucket alone, as an auditor with
// read access and the public keys would, and trusts nothing we wrote except
// signatures by the keys the caller trusts — never keys found in the bucket
// unless told (Options.TrustBucketKeys). It is the code behind `auditline
// verify`, `prove` and `verify-proof`, and the oracle of the archive's own
// tests.
//
// Run works in phases, one file each, in this order (each phase reads what
// the earlier ones established; a new check is a new phase or a rowCheck):
//
//   - inventory.go: one versioned listing of the prefix: every object, its
//     versions and delete markers, sorted into manifests, batches,
//     checkpoints, time-stamps and cosignatures.
//   - chains.go: every manifest (signature by a trusted key, canonical form,
//     key matches content) and each partition's chain: seq 0, 1, 2… with no
//     gap, From equal to the previous To, prev_manifest_sha256 equal to the
//     SHA-256 of the previous manifest — no batch removed, inserted or
//     reordered.
//   - checkpoints.go: every checkpoint (v1 and v2) — signature, seq without
//     gap, hash chain, heads naming existing manifests and never moving
//     backwards — and the plan of the global log: which batches each v2
//     checkpoint appends, at which leaf index.
//   - batches.go: every batch object (within --from/--to): size and SHA-256
//     as signed; every leaf recomputed from the record bytes under the
//     manifest's leaf rule (v1: the record; v2: topic, partition, offset,
//     timestamp and record); offsets strictly increasing inside [From, To);
//     count; RFC 6962 root; time range. Per-row checks run here too
//     (rowCheck: duplicates.go). Batches of the global log outside the
//     window are read for their leaf column only.
//   - log.go: each v2 checkpoint's log_size, log_root and log_frontier
//     recomputed as the previous checkpoint's frontier plus the leaves of the
//     batches it appends; its C2SP tlog-checkpoint signature; and, for each
//     checkpoint kept from an earlier audit (--since), an RFC 6962
//     consistency proof from it to the newest one.
//   - anchors.go: what holds the log outside the bucket — witness
//     cosignatures (a quorum of the configured witness keys; online, each
//     witness's own view, which catches the newest batches and checkpoints
//     being removed together) and RFC 3161 time-stamps; without any, a loud
//     warning or, with RequireAnchor, a failure.
//   - completeness.go (a rowCheck): per emitter of the LiteLLM plugin, the
//     sequence numbers the sealed records account for and the gaps (package
//     ledger's rule, on the verified canonical bytes): Report.Emitters.
//   - rules.go (a rowCheck and a phase): every rules_hash a verified record
//     carries names a sealed rules object (privacy/rules) whose bytes have
//     that hash, under retention: Report.Rules.
//   - retention (retention.go) of every object read: Object Lock mode and
//     retain-until, a single version, no delete marker; and orphans.
//
// Every finding is a Failure naming the object key, partition and offset
// range. Verification never stops at the first failure.
package verify

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"sort"
	"time"

	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/chain"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/witness"
)

// Options select what to verify and what to require.
type Options struct {
	Bucket *bucket.Bucket
	Layout layout.Layout
	// Keys are the trusted public keys (an auditor's --key files). Required:
	// a key-load error or an empty set is the caller's error, never a reason
	// to fall back to the bucket.
	Keys *keys.Ring
	// TrustBucketKeys adds the keys published in the bucket to Keys (and says
	// so in the report). Anyone who can write to the bucket can publish a key.
	TrustBucketKeys bool
	// From and To select batches whose time range overlaps [From, To); zero
	// means unbounded. Chains and checkpoints are always checked whole.
	From, To time.Time
	// Partitions limits the check; empty means all.
	Partitions []int32
	// RetentionMode is the Object Lock mode every object must have; "" means
	// COMPLIANCE.
	RetentionMode bucket.Mode
	// MinRetention, when set, requires retain-until ≥ last-modified + it
	// (calendar years count leap days: privacy/retention).
	MinRetention retention.Period
	// TSARoots, when set, are the roots RFC 3161 tokens must chain to; a
	// token chaining to them anchors its checkpoint.
	TSARoots *x509.CertPool
	// RequireTimestamps fails checkpoints without a token.
	RequireTimestamps bool
	// Since are checkpoints an auditor kept from an earlier audit: a JSON
	// checkpoint object (v1: the bucket must still hold it byte for byte; v2
	// also:) or a C2SP tlog-checkpoint note (Report.LatestNote, or a
	// cosignature object). The bucket's log must extend each: an RFC 6962
	// consistency proof from its size to the newest checkpoint is built from
	// the batches and checked.
	Since [][]byte
	// Witnesses are the witnesses whose cosignatures anchor the log; Quorum
	// of them (default 1) must cosign a checkpoint for it to be anchored.
	// Those with a URL are asked for their own view of the log.
	Witnesses []witness.Witness
	Quorum    int
	// RequireAnchor fails the verification when nothing outside the bucket
	// anchors the log: no quorum of witness cosignatures, no time-stamp
	// chaining to TSARoots, or a witness that cannot be asked.
	RequireAnchor bool
	// RequireComplete fails the verification when an emitter of the LiteLLM
	// plugin has sequence numbers no sealed record accounts for
	// (completeness.go); without it such gaps are warnings.
	RequireComplete bool
	// ErasedKeys, for a raw log, are the data subject keys erased
	// (auditline erase): the events sealed under them are listed in
	// Report.Erased (erased.go).
	ErasedKeys map[string]bool
	// Parallel is the number of batch objects read at once; 0 means GOMAXPROCS.
	Parallel int
	HTTP     *http.Client // for witnesses; nil means a 15 s timeout
	Logger   *slog.Logger
}

// ErrNoKeys means no trusted key was given.
var ErrNoKeys = errors.New("no trusted public key: give the archive's public key(s) (--key), or explicitly trust the keys published in the bucket (--trust-bucket-keys)")

// verifier holds what the phases share.
type verifier struct {
	o    Options
	rep  *Report
	ring *keys.Ring
	rd   chain.Reader
	inv  *inventory

	chains   map[int32]*partChain // by partition, from chains.go
	byKey    map[string]*mentry   // every manifest read, by key
	cps      []*cpEntry           // every checkpoint, in seq order
	steps    []*logStep           // the v2 checkpoints' appends, in order
	jobs     []*batchJob          // batch checks, from batches.go
	rowCheck []rowCheck           // per-row checks
	since    []*sinceItem         // kept checkpoints (--since)
}

// Run verifies the archive. The error is for problems that prevent verifying
// (no trusted key, the bucket cannot be listed); findings are in the Report.
func Run(ctx context.Context, o Options) (*Report, error) {
	t0 := time.Now()
	if o.Parallel <= 0 {
		o.Parallel = runtime.GOMAXPROCS(0)
	}
	if o.RetentionMode == "" {
		o.RetentionMode = bucket.Compliance
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Quorum <= 0 {
		o.Quorum = 1
	}
	rep := &Report{Bucket: o.Bucket.Name(), Prefix: o.Layout.Prefix, KeySource: "given", Anchor: "none"}
	ring, source, err := TrustedKeys(ctx, o.Bucket, o.Layout, o.Keys, o.TrustBucketKeys)
	if err != nil {
		return nil, err
	}
	rep.Keys, rep.KeySource = ring.IDs(), source
	v := &verifier{o: o, rep: rep, ring: ring, rd: chain.Reader{Bucket: o.Bucket, Layout: o.Layout, Keys: ring, Parallel: 4 * o.Parallel},
		rowCheck: []rowCheck{newDuplicates(), newCompleteness(o), newRulesRefs()}}
	if len(o.ErasedKeys) > 0 {
		v.rowCheck = append(v.rowCheck, &erased{keys: o.ErasedKeys})
	}
	if err := v.inventory(ctx); err != nil {
		return nil, err
	}
	for _, phase := range []func(context.Context) error{v.chainsPhase, v.checkpointsPhase, v.batchesPhase, v.rulesPhase, v.logPhase, v.anchorsPhase} {
		if err := phase(ctx); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for _, rc := range v.rowCheck {
		rc.finish(rep)
	}
	v.orphans()
	sortFailures(rep.Failures)
	sortFailures(rep.Warnings)
	rep.Elapsed = time.Since(t0)
	return rep, nil
}

func sortFailures(fs []Failure) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Partition != fs[j].Partition {
			return fs[i].Partition < fs[j].Partition
		}
		if fs[i].Key != fs[j].Key {
			return fs[i].Key < fs[j].Key
		}
		return fs[i].Check < fs[j].Check
	})
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	if h == "" {
		return `""`
	}
	return h
}
