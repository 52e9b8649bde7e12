package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/rawlog"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// verifyRaw verifies every raw log found under <prefix>raw/ (docs/archive.md
// "Raw evidence") with the options of the decisions log, except witnesses and
// kept checkpoints (which name the decisions log), and lists the erasure
// statements: the events sealed under an erased key verify like every other
// (their sealed bytes are unchanged) and can no longer be decrypted. It
// returns the number of failures.
func verifyRaw(ctx context.Context, cfg *app.Config, o verify.Options, w io.Writer) (int, error) {
	folders, err := o.Bucket.Folders(ctx, cfg.Archive.Prefix+"raw/")
	if err != nil {
		return 0, err
	}
	sort.Strings(folders)
	failures := 0
	ers, erErr := rawlog.Erasures(ctx, o.Bucket, o.Layout)
	erasedKeys := map[string]bool{}
	for id := range ers {
		erasedKeys[id] = true
	}
	for _, f := range folders {
		topicName := strings.TrimSuffix(strings.TrimPrefix(f, cfg.Archive.Prefix+"raw/"), "/")
		ro := o
		ro.Layout = layout.New(cfg.Archive.RawPrefix(topicName))
		ro.Witnesses, ro.Since, ro.RequireAnchor, ro.RequireComplete = nil, nil, false, false
		ro.ErasedKeys = erasedKeys
		rep, err := verify.Run(ctx, ro)
		if err != nil {
			return failures, fmt.Errorf("raw log %s: %w", topicName, err)
		}
		fmt.Fprintf(w, "\nRaw log of %s (%s):\n", topicName, ro.Layout.Prefix)
		rep.WriteText(w)
		failures += len(rep.Failures)
		for _, eb := range rep.Erased {
			fmt.Fprintf(w, "  erased (not altered): %d event(s) under key %s in %s (partition %d, offsets %d…%d)\n",
				len(eb.Offsets), eb.KeyID, eb.ObjectKey, eb.Partition, eb.Offsets[0], eb.Offsets[len(eb.Offsets)-1])
		}
	}
	if erErr != nil {
		failures++
		fmt.Fprintf(w, "\nFAIL erasures: %v\n", erErr)
		return failures, nil
	}
	if len(ers) > 0 {
		ids := make([]string, 0, len(ers))
		for id := range ers {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(w, "\nErased (not altered): %d data subject key(s) destroyed; the raw events sealed under them verify but can no longer be decrypted:\n", len(ids))
		for _, id := range ids {
			e := ers[id]
			line := "  erased: key " + id + " at " + e.ErasedAt
			if e.Reason != "" {
				line += " (" + e.Reason + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
	return failures, nil
}
