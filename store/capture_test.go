package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/privacy/capture"
)

// TestRawRowsCapture: raw_events keeps what the capture policy keeps of a
// body (hash: no content), with the SHA-256 and size of the original bytes;
// body_stored says 1 for the original bytes, 2 for a captured form.
func TestRawRowsCapture(t *testing.T) {
	body := []byte(`{"id":"x","messages":[{"content":"secret prompt"}],"model":"m"}`)
	plain := []byte(`{"id":"y","model":"m"}`)
	sum := sha256.Sum256(body)
	for _, tc := range []struct {
		policy capture.Policy
		secret bool
		stored uint8
	}{{capture.Hash, false, 2}, {capture.None, false, 2}, {capture.Full, true, 1}} {
		r := newRawRows(0, capture.New(tc.policy))
		for _, v := range [][]byte{body, plain} {
			if err := r.add(&kgo.Record{Topic: "t.raw.litellm", Value: v, Headers: []kgo.RecordHeader{{Key: raw.HeaderReason, Value: []byte("bad: a@b.com")}}}); err != nil {
				t.Fatal(err)
			}
		}
		if got := strings.Contains(r.body[0], "secret"); got != tc.secret {
			t.Errorf("%s: content kept = %v: %s", tc.policy, got, r.body[0])
		}
		if r.sum[0] != hex.EncodeToString(sum[:]) || r.size[0] != uint32(len(body)) {
			t.Errorf("%s: sha256/size are not the original bytes'", tc.policy)
		}
		if r.stored[0] != tc.stored || r.stored[1] != 1 || r.body[1] != string(plain) {
			t.Errorf("%s: body_stored %v, want [%d 1]", tc.policy, r.stored, tc.stored)
		}
		if masked := r.reason[0] == "bad: [EMAIL]"; masked == (tc.policy == capture.Full) {
			t.Errorf("%s: dlq_reason %q", tc.policy, r.reason[0])
		}
	}
}
