package event

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/loadgen"
	"github.com/auditline/auditline/ingest/raw"
)

// sameWithoutContent checks parseLiteLLM without content against
// ParseLiteLLM followed by DropContent (what enrich did before it hashed
// content in place), and that ParseLiteLLM's result keeps no reference to
// the payload: overwriting the bytes after the decode changes nothing.
func sameWithoutContent(t *testing.T, b []byte) {
	t.Helper()
	want, werr := ParseLiteLLM(bytes.Clone(b))
	got, gerr := parseLiteLLM(bytes.Clone(b), false)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("errors differ: with content %v, without %v\ninput %.2000s", werr, gerr, b)
	}
	if werr != nil {
		return
	}
	scribbled := bytes.Clone(b)
	kept, err := ParseLiteLLM(scribbled)
	if err != nil {
		t.Fatal(err)
	}
	for i := range scribbled {
		scribbled[i] = 'x'
	}
	if !reflect.DeepEqual(kept, want) {
		t.Fatalf("ParseLiteLLM's result changed with the payload's bytes:\ngot  %+v\nwant %+v", kept, want)
	}
	want.DropContent()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("without content:\ngot  %+v\nwant %+v\ninput %.2000s", got, want, b)
	}
}

// TestParseWithoutContent: on every payload of the test data and on loadgen's
// traffic, decoding without content gives what decoding with it and then
// dropping it gave, and results decoded one after another (the wire form is
// pooled) equal results decoded alone.
func TestParseWithoutContent(t *testing.T) {
	var payloads [][]byte
	for _, b := range corpus(t) {
		payloads = append(payloads, b)
	}
	for seed := range int64(2) {
		g, err := loadgen.New(loadgen.Config{Seed: seed, Gateway: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		for len(payloads) < 4000*(int(seed)+1) {
			payloads = append(payloads, g.Next().LiteLLM...)
		}
	}
	var seq []*LiteLLM
	for _, b := range payloads {
		sameWithoutContent(t, b)
		l, _ := ParseLiteLLM(b)
		seq = append(seq, l)
	}
	for i, b := range payloads {
		alone, _ := ParseLiteLLM(b)
		if !reflect.DeepEqual(seq[i], alone) {
			t.Fatalf("payload %d decoded in sequence differs from alone:\n%+v\n%+v", i, seq[i], alone)
		}
	}
}

// FuzzParseWithoutContent: the same on any input (scripts/fuzz.sh runs it).
func FuzzParseWithoutContent(f *testing.F) {
	for _, b := range corpus(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameWithoutContent(t, b) })
}

// TestSourceOf: sourceOf reads the header as raw.Header does, for every
// known source, an unknown one, a missing header and a repeated one (the
// first wins).
func TestSourceOf(t *testing.T) {
	rec := func(hs ...string) *kgo.Record {
		r := &kgo.Record{}
		for i := 0; i < len(hs); i += 2 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: hs[i], Value: []byte(hs[i+1])})
		}
		return r
	}
	cases := []*kgo.Record{rec(), rec("x", "litellm"), rec(raw.HeaderSource, "unknown"), rec(raw.HeaderSource, ""),
		rec(raw.HeaderSource, "gateway", raw.HeaderSource, "litellm"), rec("x", "y", raw.HeaderSource, "access")}
	for _, s := range sources {
		cases = append(cases, rec(raw.HeaderSource, string(s)), rec(raw.HeaderSource, string(s)+"x"))
	}
	for _, r := range cases {
		if got, want := sourceOf(r), raw.Source(raw.Header(r, raw.HeaderSource)); got != want {
			t.Errorf("headers %v: sourceOf %q, raw.Header %q", r.Headers, got, want)
		}
	}
}
