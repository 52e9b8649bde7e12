package verify

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/batch"
)

// pluginValue is archivetest's record i as the LiteLLM plugin's emitter em
// would have produced it: a marker and an outcome (seqs) and the
// gateway_config that announced its configuration (configSeq).
func pluginValue(t *testing.T, i int, em string, configSeq int64, seqs ...int64) []byte {
	t.Helper()
	d := archivetest.Decision(i)
	d.Emitter = record.Emitter{ID: em, ConfigHash: "sha256:00", ConfigSeq: configSeq}
	d.Evidence.Sources = nil
	for _, s := range seqs {
		d.Evidence.Sources = append(d.Evidence.Sources, record.Source{EventID: "e", Source: "litellm", Emitter: em, Seq: s,
			ReceivedAt: record.Time(1763807445118 + s)})
	}
	b, err := d.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func completenessOf(t *testing.T, o Options, values ...[]byte) *Report {
	t.Helper()
	var rows []batch.Row
	for i, v := range values {
		rows = append(rows, batch.NewRow("d", 1, int64(i), time.UnixMilli(1763807445118+int64(i)), v))
	}
	var buf bytes.Buffer
	if err := batch.Encode(&buf, rows, batch.Meta{}, batch.Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := batch.Open(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := newCompleteness(o)
	// two batches, as the verifier drives a recordCheck: each record's
	// canonical bytes during the leaf pass, then commit
	for range 2 {
		visit, commit := c.records(&mentry{})
		if err := f.VisitBinaries(context.Background(), batch.ColCanonical, func(i int, rec []byte) error { visit(i, rec); return nil }); err != nil {
			t.Fatal(err)
		}
		commit()
		if err := c.batch(context.Background(), &mentry{}, f); err != nil {
			t.Fatal(err)
		}
	}
	rep := &Report{}
	c.finish(rep)
	return rep
}

// TestCompleteness: the sealed records' emitter sequences, read from their
// canonical bytes; a gap is a warning, or a failure with RequireComplete;
// records of the stock callback carry none.
func TestCompleteness(t *testing.T) {
	full := [][]byte{
		pluginValue(t, 0, "em-a", 1, 2, 3),
		pluginValue(t, 1, "em-a", 1, 4, 5),
		pluginValue(t, 2, "em-b", 1, 2, 3),
		archivetest.Value(3), // stock callback: no emitter
	}
	rep := completenessOf(t, Options{}, full...)
	if len(rep.Emitters) != 2 || !rep.Emitters[0].Complete || !rep.Emitters[1].Complete || len(rep.Warnings) != 0 {
		t.Fatalf("complete archive: %+v, warnings %v", rep.Emitters, rep.Warnings)
	}
	if got := rep.Emitters[0].Summary; got != "sequence 1..5 complete (5 events)" {
		t.Errorf("em-a summary %q", got)
	}

	gappy := append(full, pluginValue(t, 4, "em-a", 1, 9, 10)) // 6..8 missing
	rep = completenessOf(t, Options{}, gappy...)
	a := rep.Emitters[0]
	if a.Complete || a.Missing != 3 || len(a.Gaps) != 1 || a.Gaps[0].First != 6 || a.Gaps[0].Last != 8 {
		t.Fatalf("gap 6..8: %+v", a)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Check != CheckCompleteness || !rep.OK() {
		t.Fatalf("gap without RequireComplete: warnings %v failures %v", rep.Warnings, rep.Failures)
	}
	if !strings.Contains(rep.Warnings[0].Error(), "sequence 1..10: 3 missing: 6..8") {
		t.Errorf("warning %q", rep.Warnings[0].Error())
	}
	rep = completenessOf(t, Options{RequireComplete: true}, gappy...)
	if rep.OK() || !rep.Has(CheckCompleteness, "emitter em-a") {
		t.Fatalf("gap with RequireComplete: failures %v", rep.Failures)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"emitter   em-a: sequence 1..10: 3 missing: 6..8", "emitter   em-b: sequence 1..3 complete (3 events)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}

	// A windowed check starts at the lowest number sealed in the window.
	rep = completenessOf(t, Options{Partitions: []int32{1}}, pluginValue(t, 0, "em-a", 0, 7, 8))
	if e := rep.Emitters[0]; !e.Complete || e.First != 7 {
		t.Errorf("windowed: %+v", e)
	}
}

func TestHasEmitter(t *testing.T) {
	for in, want := range map[string]bool{
		`{"emitter":""}`: false, `{"a":1}`: false, `{"emitter":"x"}`: true,
		`{"sources":[{"emitter":"","seq":0},{"emitter":"em","seq":3}]}`: true, `"emitter":"`: false,
	} {
		if got := hasEmitter([]byte(in)); got != want {
			t.Errorf("hasEmitter(%s) = %v, want %v", in, got, want)
		}
	}
}
