package batch

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/auditline/auditline/sinks/archive/archivetest"
)

// TestRecordBeforeIssue21 (eng-21): a record published before the route
// fields existed (no routing.completeness, routing.fallback_targets,
// attempts[].kind/fallback_from/timeout) keeps its own bytes as evidence: the
// archive canonicalises the value it got, never a re-encoding with the new
// fields zeroed, so the leaves of batches sealed before the change verify
// unchanged.
func TestRecordBeforeIssue21(t *testing.T) {
	for i := range 10 {
		var m map[string]any
		if err := json.Unmarshal(archivetest.Value(i), &m); err != nil {
			t.Fatal(err)
		}
		rt := m["routing"].(map[string]any)
		delete(rt, "completeness")
		delete(rt, "fallback_targets")
		for _, a := range rt["attempts"].([]any) {
			for _, k := range []string{"kind", "fallback_from", "timeout"} {
				delete(a.(map[string]any), k)
			}
		}
		old, _ := json.Marshal(m)
		want := jsontext.Value(bytes.Clone(old))
		if err := want.Canonicalize(); err != nil {
			t.Fatal(err)
		}
		r := NewRow("auditline.decisions", 0, 1, time.UnixMilli(1), old)
		if r.Error != "" || r.Decision == nil {
			t.Fatalf("record %d: %q", i, r.Error)
		}
		if !bytes.Equal(r.Canonical, want) {
			t.Fatalf("record %d: the evidence is not the old value's own canonical bytes:\n%s\n%s", i, r.Canonical, want)
		}
		if r.Decision.Routing.Completeness != "" {
			t.Fatalf("record %d: an old record reads as routing %q", i, r.Decision.Routing.Completeness)
		}
	}
}
