package main

import (
	"regexp"
	"strings"
)

// Kept blocks: figures other work measures by its own means (the LiteLLM
// plugin's overhead, the archive's verify throughput, …) live in
// BENCHMARKS.md between
//
//	<!-- kept: NAME -->
//	…
//	<!-- /kept: NAME -->
//
// The harness does not measure them, so when it rewrites the file it copies
// every such block of the previous file, verbatim and in order, into the new
// one (in a section of their own) instead of dropping them. NAME is any
// text without "-->"; a block without its closing line is kept to the end of
// the file, so nothing is lost to a typo.

var keptOpen = regexp.MustCompile(`(?m)^<!-- kept: (.+?) -->[ \t]*$`)

// keptBlock is one kept block: its name and its whole text, both marker
// lines included.
type keptBlock struct {
	Name string
	Text string
}

// keptBlocks returns the kept blocks of a previous BENCHMARKS.md.
func keptBlocks(doc string) []keptBlock {
	var out []keptBlock
	for {
		loc := keptOpen.FindStringSubmatchIndex(doc)
		if loc == nil {
			return out
		}
		name := strings.TrimSpace(doc[loc[2]:loc[3]])
		rest := doc[loc[0]:]
		end := len(rest)
		closing := "<!-- /kept: " + name + " -->"
		if i := strings.Index(rest, closing); i >= 0 {
			end = i + len(closing)
		}
		out = append(out, keptBlock{Name: name, Text: strings.TrimRight(rest[:end], "\n")})
		doc = rest[end:]
	}
}
