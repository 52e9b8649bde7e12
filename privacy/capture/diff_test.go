package capture

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditline/auditline/ingest/loadgen"
	"github.com/auditline/auditline/privacy/pseudonym"
)

// capturers are every policy, with and without pseudonyms.
func capturers() []*Capturer {
	p := pseudonym.New(pseudonym.Config{Fields: pseudonym.Fields, KeyID: "k1", Secret: strings.Repeat("s", 32)})
	var cs []*Capturer
	for _, pol := range []Policy{Hash, None, Redacted, Full} {
		cs = append(cs, New(pol), New(pol).WithPseudonyms(p))
	}
	return cs
}

// sameAsReference fails t when Body and the reference transform differ on b.
func sameAsReference(t *testing.T, c *Capturer, b []byte, name string) {
	t.Helper()
	got, want := c.Body(b), ref{c}.refBody(b)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s (%s, pseudonyms %v): Body differs from the reference\ninput %q\ngot   %q\nwant  %q", name, c.Policy(), c.pseud != nil, b, got, want)
	}
}

// TestBodyMatchesReference: the fast walk (skipped subtrees, prefiltered
// quotesContent, unescaped names looked up in place) gives the same bytes as
// the token walk it replaced, under every policy, on every captured source
// event and body in the repository's testdata and on loadgen's traffic.
func TestBodyMatchesReference(t *testing.T) {
	var inputs [][]byte
	var names []string
	for _, root := range []string{"../../enrich/testdata", "../../ingest/testdata", "../../reference", "../../schemas", "../../deploy"} {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".ndjson")) {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			inputs, names = append(inputs, b), append(names, path)
			for i, line := range bytes.Split(b, []byte("\n")) { // ndjson, and a line of a file is a hostile input too
				if len(bytes.TrimSpace(line)) > 0 && i < 50 {
					inputs, names = append(inputs, line), append(names, path+" line")
				}
			}
			return nil
		})
	}
	if len(inputs) < 50 {
		t.Fatalf("only %d testdata files found", len(inputs))
	}
	g, err := loadgen.New(loadgen.Config{Seed: 3, Gateway: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		r := g.Next()
		for _, p := range append(append(r.LiteLLM, r.Gateway...), r.Alerts...) {
			inputs, names = append(inputs, p), append(names, "loadgen "+r.Kind)
		}
	}
	inputs = append(inputs, withMarkers(t))
	names = append(names, "withMarkers")
	for _, c := range capturers() {
		for i, b := range inputs {
			sameAsReference(t, c, b, names[i])
			// and a copy of a copy (the store reads DLQ copies)
			sameAsReference(t, c, c.Body(b), names[i]+" (copy)")
		}
	}
}

// FuzzBodyReference: on any input, Body gives the reference transform's
// bytes under every policy, with and without pseudonyms.
func FuzzBodyReference(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"content":"hi"}],"id":"x"}`,
		`[{"response":{}},{"error":"a@b.c"}]`,
		`{"metadata":"{'headers': 1}"}`,
		`{"a":{"b":{"c":{"m\u0065ssages":"x"}}},"d":[{"e":"f"}, {"g":"\"prompt\": 1"}]}`,
		`{"a": {"x": 1} , "b" : [ [1], {"input":2} ] ,"c":{"user":"u","subject":{"id":"s"}}}`,
		`{"a":{"b":"it's"},"c":{"d":"x\"messages\":"}}`,
		`{"a":{"b":"\xff"},"c":[{"messages":1}`,
		"\xff{",
	} {
		f.Add([]byte(s))
	}
	cs := capturers()
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range cs {
			sameAsReference(t, c, b, "fuzz")
		}
	})
}
