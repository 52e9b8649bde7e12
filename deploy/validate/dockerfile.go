package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/opencontainers/go-digest"
)

// offlineImages answers BuildKit's image lookups with an empty Linux image
// config, so the lint runs without a registry (rules that need the base
// image's own ENV or platform then see none).
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)
	return ref, digest.FromBytes(cfg), cfg, nil
}

// checkDockerfiles parses and lints every Dockerfile in dir with BuildKit's
// front end: a parse error or any lint warning fails. The final stage must
// set a numeric non-root USER and take its base by tag or digest.
func checkDockerfiles(r *report, dir string, p pins) {
	files, _ := filepath.Glob(filepath.Join(dir, "*Dockerfile"))
	if len(files) == 0 {
		r.fail("dockerfile: none in %s", dir)
	}
	for _, f := range files {
		name := "dockerfile " + filepath.Base(f)
		b, err := readFile(f)
		if err != nil {
			r.fail("%s: %v", name, err)
			continue
		}
		problems := lintDockerfile(b)
		for _, pr := range problems {
			r.fail("%s: %s", name, pr)
		}
		if filepath.Base(f) == "minio.Dockerfile" && !strings.Contains(string(b), "ARG MINIO_VERSION="+p["MINIO_VERSION"]+"\n") {
			r.fail("%s: MINIO_VERSION differs from deploy/local/lib.sh (%s)", name, p["MINIO_VERSION"])
		}
		if len(problems) == 0 {
			r.note("%s: parsed and linted by BuildKit, final stage non-root", name)
		}
	}
}

var numericUser = regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`)

// lintDockerfile returns every problem of one Dockerfile.
func lintDockerfile(b []byte) []string {
	var out []string
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	for _, w := range res.Warnings {
		out = append(out, fmt.Sprintf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	// The same checks as `docker build --check`, on every stage: the
	// Dockerfile is converted to LLB (nothing is built or pulled).
	_, err = dockerfile2llb.Dockerfile2LLB(context.Background(), b, dockerfile2llb.ConvertOpt{
		MetaResolver: offlineImages{},
		AllStages:    true,
		Warn: func(rule, _, _, msg string, loc []parser.Range) {
			line := 0
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			out = append(out, fmt.Sprintf("line %d: lint %s: %s", line, rule, msg))
		},
	})
	if err != nil {
		return append(out, "convert: "+err.Error())
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return append(out, "instructions: "+err.Error())
	}
	if len(stages) == 0 {
		return append(out, "no stage")
	}
	names := map[string]bool{}
	for _, s := range stages {
		if s.Name != "" {
			names[strings.ToLower(s.Name)] = true
		}
		base := s.BaseName
		if base != "scratch" && !strings.Contains(base, "$") && (strings.HasSuffix(base, ":latest") || !strings.ContainsAny(base, ":@")) {
			out = append(out, fmt.Sprintf("stage %q: base image %q is not pinned by tag or digest", s.Name, base))
		}
		for _, cmd := range s.Commands {
			if c, ok := cmd.(*instructions.CopyCommand); ok && c.From != "" && !names[strings.ToLower(c.From)] && !strings.Contains(c.From, ":") {
				out = append(out, fmt.Sprintf("COPY --from=%s names no earlier stage", c.From))
			}
		}
	}
	final := stages[len(stages)-1]
	user := ""
	for _, cmd := range final.Commands {
		if u, ok := cmd.(*instructions.UserCommand); ok {
			user = u.User
		}
	}
	if !numericUser.MatchString(user) {
		out = append(out, fmt.Sprintf("final stage USER %q, want a numeric non-root uid (Kubernetes runAsNonRoot can only verify a number)", user))
	}
	return out
}
