package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/ledger"
)

func TestPrintGaps(t *testing.T) {
	base := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	b := ledger.NewBuilder()
	for _, s := range []int64{1, 2, 3, 4} {
		b.Add("gw-w0", s, base)
	}
	for _, s := range []int64{1, 2, 5, 9} {
		b.Add("gw-w1", s, base.Add(time.Duration(s)*time.Minute))
	}
	now := base.Add(30 * time.Minute)
	var out bytes.Buffer
	if n := printGaps(&out, b.Emitters(), false, 25*time.Minute, now); n != 1 {
		t.Errorf("%d alarms, want 1 (3..4 is 25 min old, 6..8 21 min)", n)
	}
	want := `emitter gw-w0: sequence 1..4 complete (4 events), last received 2026-11-30T10:00:00Z
emitter gw-w1: sequence 1..9: 5 missing: 3..4, 6..8, last received 2026-11-30T10:09:00Z
    missing 3..4                 2 event(s), known since 2026-11-30T10:05:00Z (25m0s ago)  ALARM: missing for more than 25m0s
    missing 6..8                 3 event(s), known since 2026-11-30T10:09:00Z (21m0s ago)
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	printGaps(&out, b.Emitters(), true, 25*time.Minute, now)
	var js []emitterJSON
	if err := json.Unmarshal(out.Bytes(), &js); err != nil || len(js) != 2 || !js[0].Complete || js[1].Missing != 5 || !js[1].Gaps[0].Alarm {
		t.Errorf("json %s (%v)", out.String(), err)
	}
	out.Reset()
	printGaps(&out, nil, false, time.Minute, now)
	if !strings.Contains(out.String(), "no emitter") {
		t.Errorf("empty: %q", out.String())
	}
}
