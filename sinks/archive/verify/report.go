package verify

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/auditline/auditline/enrich/record"
)

// Check names what a Failure is about.
type Check string

const (
	CheckSignature  Check = "signature"  // a manifest or checkpoint is not signed by a trusted key
	CheckManifest   Check = "manifest"   // a manifest is malformed or does not match its key
	CheckChain      Check = "chain"      // a gap, a reordering or a broken hash link
	CheckObject     Check = "object"     // a batch object is missing, or its size or SHA-256 differ
	CheckRecords    Check = "records"    // leaves, offsets, count or time range differ from the manifest
	CheckRoot       Check = "root"       // the recomputed Merkle root differs from the signed one
	CheckRetention  Check = "retention"  // Object Lock missing, weaker or shorter than required; extra versions; delete markers
	CheckCheckpoint Check = "checkpoint" // a checkpoint is missing, unchained, or names a head that does not exist
	CheckTimestamp  Check = "timestamp"  // an RFC 3161 token is missing or invalid
	CheckOrphan     Check = "orphan"     // an object no manifest references (a warning)
	CheckLog        Check = "log"        // the global log: a checkpoint's size, root or frontier is not what its batches give, or the log shrank or forked
	CheckAnchor     Check = "anchor"     // witnesses and time-stamps: a witness saw more than the bucket holds, a bad cosignature, no anchor
	CheckDuplicate  Check = "duplicate"  // one record version sealed twice
)

// Failure is one finding. Partition is -1 for checkpoints; From and To are -1
// when unknown.
type Failure struct {
	Check     Check  `json:"check"`
	Key       string `json:"key"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
	Detail    string `json:"detail"`
}

func (f Failure) Error() string {
	var b strings.Builder
	if f.Partition >= 0 {
		fmt.Fprintf(&b, "partition %d ", f.Partition)
		switch {
		case f.From >= 0 && f.To >= 0:
			fmt.Fprintf(&b, "offsets [%d, %d) ", f.From, f.To)
		case f.From >= 0:
			fmt.Fprintf(&b, "offset %d ", f.From)
		}
	}
	fmt.Fprintf(&b, "%s: %s: %s", f.Key, f.Check, f.Detail)
	return b.String()
}

// PartitionReport summarises one partition's chain.
type PartitionReport struct {
	Partition int32 `json:"partition"`
	Batches   int   `json:"batches"`
	Checked   int   `json:"batches_checked"` // batch objects read (within --from/--to)
	Records   int64 `json:"records"`         // in the batches read
	From      int64 `json:"from"`            // first offset of the chain
	To        int64 `json:"to"`              // end of the chain
}

// WitnessReport is what verify learned about one configured witness.
type WitnessReport struct {
	Name string `json:"name"`
	// Cosigned counts the checkpoints in the bucket with a valid cosignature
	// of this witness; LatestCosigned is the log size of the newest of them.
	Cosigned       int    `json:"cosigned_checkpoints"`
	LatestCosigned uint64 `json:"latest_cosigned_size"`
	// Online is set when the witness was asked (it has a URL): Seen is the
	// size of the latest checkpoint it has cosigned for this log.
	Online bool   `json:"online"`
	Seen   uint64 `json:"seen_size"`
	Error  string `json:"error,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Bucket      string            `json:"bucket"`
	Prefix      string            `json:"prefix"`
	Keys        []string          `json:"trusted_keys"`
	KeySource   string            `json:"key_source"`
	Partitions  []PartitionReport `json:"partitions"`
	Batches     int               `json:"batches"`
	Checked     int               `json:"batches_checked"`
	Records     int64             `json:"records"`
	Bytes       int64             `json:"bytes"`
	Checkpoints int               `json:"checkpoints"`
	Timestamped int               `json:"timestamped"`
	LatestCheck record.Time       `json:"latest_checkpoint_time"`
	Uncovered   int               `json:"batches_after_latest_checkpoint"`

	// The global log as of the newest v2 checkpoint.
	LogSize     uint64 `json:"log_size"`
	LogRoot     string `json:"log_root,omitempty"`
	LogVerified int    `json:"log_checkpoints_recomputed"` // v2 checkpoints whose log state was recomputed from their batches
	// LatestNote is the newest checkpoint as a C2SP tlog-checkpoint note:
	// keep it, and pass it to a later `auditline verify --since` to prove the
	// log only grew in between.
	LatestNote string `json:"latest_checkpoint_note,omitempty"`
	// LatestCheckpoint is the newest checkpoint object itself (it names every
	// partition's head as well): what `auditline verify --save-checkpoint`
	// keeps for --since, which then names the offsets of any head removed.
	LatestCheckpoint []byte `json:"-"`
	// Since lists the consistency proofs checked for --since.
	Since []SinceReport `json:"since,omitempty"`

	// Anchors: witnesses and time-stamps.
	Witnesses []WitnessReport `json:"witnesses,omitempty"`
	// Anchor says what anchors the log outside the bucket ("none",
	// "witnesses", "timestamps", "witnesses+timestamps"); AnchoredSize is the
	// log size up to which it does.
	Anchor       string `json:"anchor"`
	AnchoredSize uint64 `json:"anchored_size"`

	// Emitters: each LiteLLM plugin emitter's sequence coverage in the sealed
	// records verified (completeness.go).
	Emitters []EmitterReport `json:"emitters"`
	// Rules: each rule set the verified records carry, and whether its
	// sealed object is there (rules.go).
	Rules []RulesReport `json:"rules"`
	// Erased: in a raw log verified with Options.ErasedKeys, the sealed
	// events whose key was erased, per batch (erased.go).
	Erased []ErasedBatch `json:"erased,omitempty"`

	Failures []Failure     `json:"failures"`
	Warnings []Failure     `json:"warnings"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	mu       sync.Mutex
}

// SinceReport is one kept checkpoint checked against the bucket's log.
type SinceReport struct {
	Source   string   `json:"source"`   // the file (or its index)
	Size     uint64   `json:"size"`     // the kept checkpoint's log size
	ToSize   uint64   `json:"to_size"`  // the bucket's newest log size
	Proof    []string `json:"proof"`    // RFC 6962 consistency proof, hex, from Size to ToSize
	Verified bool     `json:"verified"` // the proof verified against both roots
}

// OK reports whether no failure was found.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

// LeavesPerSecond is the verification rate.
func (r *Report) LeavesPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

func (r *Report) fail(f Failure) {
	r.mu.Lock()
	r.Failures = append(r.Failures, f)
	r.mu.Unlock()
}

func (r *Report) warn(f Failure) {
	r.mu.Lock()
	r.Warnings = append(r.Warnings, f)
	r.mu.Unlock()
}

// Has reports whether a failure of the given check names key (for tests).
func (r *Report) Has(check Check, key string) bool {
	for _, f := range r.Failures {
		if f.Check == check && (key == "" || f.Key == key) {
			return true
		}
	}
	return false
}

// WriteText prints the report for a person: a summary per partition, the
// checkpoints and the global log, the anchors, every failure with its key,
// partition and offset range, and the verdict on the last line.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "archive   s3://%s/%s\n", r.Bucket, r.Prefix)
	fmt.Fprintf(w, "keys      %s (from %s)\n", strings.Join(r.Keys, ", "), r.KeySource)
	for _, p := range r.Partitions {
		if p.Batches == 0 {
			fmt.Fprintf(w, "partition %-4d no manifest verifies\n", p.Partition)
			continue
		}
		fmt.Fprintf(w, "partition %-4d %6d batches, offsets [%d, %d); %d batches read, %d records verified\n",
			p.Partition, p.Batches, p.From, p.To, p.Checked, p.Records)
	}
	fmt.Fprintf(w, "checkpoints %d (%d time-stamped), latest %s; %d batches sealed after it\n",
		r.Checkpoints, r.Timestamped, r.LatestCheck, r.Uncovered)
	if r.LogSize > 0 {
		fmt.Fprintf(w, "log       %d leaves, root %s; %d checkpoint(s) recomputed from their batches\n", r.LogSize, r.LogRoot, r.LogVerified)
	}
	for _, s := range r.Since {
		verdict := "NOT verified"
		if s.Verified {
			verdict = "verified"
		}
		fmt.Fprintf(w, "since     %s: %d → %d leaves, consistency proof of %d hashes %s\n", s.Source, s.Size, s.ToSize, len(s.Proof), verdict)
	}
	for _, wr := range r.Witnesses {
		online := "not asked (no URL)"
		switch {
		case wr.Error != "":
			online = "unreachable: " + wr.Error
		case wr.Online:
			online = fmt.Sprintf("has seen %d leaves", wr.Seen)
		}
		fmt.Fprintf(w, "witness   %s: %d checkpoint(s) cosigned in the bucket, up to %d leaves; %s\n", wr.Name, wr.Cosigned, wr.LatestCosigned, online)
	}
	fmt.Fprintf(w, "anchor    %s", r.Anchor)
	if r.Anchor != "none" {
		fmt.Fprintf(w, ", up to %d of %d leaves", r.AnchoredSize, r.LogSize)
	}
	fmt.Fprintln(w)
	r.writeEmitters(w)
	r.writeRules(w)
	fmt.Fprintf(w, "verified  %d batches, %d leaves, %.1f MB in %s (%.0f leaves/s)\n",
		r.Checked, r.Records, float64(r.Bytes)/1e6, r.Elapsed.Round(1e6), r.LeavesPerSecond())
	if r.LatestNote != "" {
		fmt.Fprintf(w, "\nnewest checkpoint as a C2SP note (keep it, or --save-checkpoint FILE, for `auditline verify --since FILE`):\n%s", r.LatestNote)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "\nwarnings (%d):\n", len(r.Warnings))
		for _, f := range r.Warnings {
			fmt.Fprintf(w, "  %s\n", f.Error())
		}
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(w, "\nFAILURES (%d):\n", len(r.Failures))
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  %s\n", f.Error())
		}
		fmt.Fprintf(w, "\nFAILED: %d problem(s) found\n", len(r.Failures))
		return
	}
	fmt.Fprintln(w, "\nOK: every signature, checksum, Merkle root, chain link, log checkpoint and retention checked")
}
