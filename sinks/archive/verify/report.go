package verify

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the report for a person: a summary per partition, the
// checkpoints, every failure with its key, partition and offset range, and
// the verdict on the last line.
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
	fmt.Fprintf(w, "verified  %d batches, %d leaves, %.1f MB in %s (%.0f leaves/s)\n",
		r.Checked, r.Records, float64(r.Bytes)/1e6, r.Elapsed.Round(1e6), r.LeavesPerSecond())
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
	fmt.Fprintln(w, "\nOK: every signature, checksum, Merkle root, chain link and retention checked")
}
