package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestKeptBlocks(t *testing.T) {
	doc := "# Benchmarks\n\nold figures\n\n<!-- kept: litellm plugin -->\n## Plugin overhead\n\n| a | b |\n<!-- /kept: litellm plugin -->\n\nmore old text\n" +
		"<!-- kept: verify -->\nverify 150k leaves/s\n<!-- /kept: verify -->\n<!-- kept: unclosed -->\ntail text\n"
	got := keptBlocks(doc)
	want := []keptBlock{
		{"litellm plugin", "<!-- kept: litellm plugin -->\n## Plugin overhead\n\n| a | b |\n<!-- /kept: litellm plugin -->"},
		{"verify", "<!-- kept: verify -->\nverify 150k leaves/s\n<!-- /kept: verify -->"},
		{"unclosed", "<!-- kept: unclosed -->\ntail text"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d blocks: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("block %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if b := keptBlocks("no blocks here\n<!-- kept -->\n"); len(b) != 0 {
		t.Fatalf("found blocks in a file without any: %+v", b)
	}
}

// TestReportKeepsBlocks: a rewrite of BENCHMARKS.md carries the previous
// file's kept blocks, byte for byte, and a second rewrite keeps them once.
func TestReportKeepsBlocks(t *testing.T) {
	block := "<!-- kept: verify -->\n### Verify\n\n| leaves/s | 150,000 |\n<!-- /kept: verify -->"
	r := &report{kept: keptBlocks("old\n\n" + block + "\n")}
	var buf bytes.Buffer
	r.write(&buf)
	if n := strings.Count(buf.String(), block); n != 1 {
		t.Fatalf("block appears %d times in:\n%s", n, buf.String())
	}
	r2 := &report{kept: keptBlocks(buf.String())}
	var buf2 bytes.Buffer
	r2.write(&buf2)
	if n := strings.Count(buf2.String(), block); n != 1 {
		t.Fatalf("after a second rewrite the block appears %d times", n)
	}
}
