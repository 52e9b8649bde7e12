package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// report collects problems; a check never stops at the first one.
type report struct {
	problems []string
	notes    []string
}

func (r *report) fail(format string, a ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, a...))
}
func (r *report) note(format string, a ...any) { r.notes = append(r.notes, fmt.Sprintf(format, a...)) }

func main() {
	repo := flag.String("repo", "../..", "repository root")
	helm := flag.String("helm", "", "helm binary (pinned; deploy/local/install.sh helm)")
	auditline := flag.String("auditline", "", "auditline binary built with CGO_ENABLED=0 (checked to be static; loads the configs)")
	maxExposure := flag.Float64("max-exposure", 2.0, "highest systemd-analyze security exposure a unit may have")
	flag.Parse()
	if *helm == "" || *auditline == "" {
		fmt.Fprintln(os.Stderr, "usage: validate -helm HELM -auditline AUDITLINE [-repo DIR]")
		os.Exit(2)
	}
	root, err := filepath.Abs(*repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pins, err := readPins(filepath.Join(root, "deploy", "local", "lib.sh"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r := &report{}
	checkStatic(r, *auditline)
	cfg := configChecker{bin: *auditline}
	checkHelm(r, *helm, filepath.Join(root, "deploy", "helm", "auditline"), filepath.Join(root, "deploy", "validate", "testdata"), cfg)
	checkCompose(r, filepath.Join(root, "deploy", "compose"), pins, cfg)
	checkDockerfiles(r, filepath.Join(root, "deploy", "container"), pins)
	checkSystemd(r, filepath.Join(root, "deploy", "systemd"), *auditline, *maxExposure, cfg)
	for _, n := range r.notes {
		fmt.Println("ok   ", n)
	}
	for _, p := range r.problems {
		fmt.Println("FAIL ", p)
	}
	if len(r.problems) > 0 {
		fmt.Printf("deploy artifacts: %d problem(s)\n", len(r.problems))
		os.Exit(1)
	}
	fmt.Println("deploy artifacts: all checks passed")
}

// pins are the versions deploy/local/lib.sh pins, which the artifacts must
// agree with.
type pins map[string]string

func readPins(path string) (pins, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := pins{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.HasSuffix(k, "_VERSION") || strings.ContainsAny(k, " \t$") {
			continue
		}
		v, _, _ = strings.Cut(v, "#")
		p[k] = strings.TrimSpace(v)
	}
	for _, k := range []string{"KAFKA_VERSION", "MINIO_VERSION"} {
		if p[k] == "" {
			return nil, fmt.Errorf("%s: no %s", path, k)
		}
	}
	return p, nil
}
