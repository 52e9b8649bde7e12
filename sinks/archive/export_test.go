package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/evidence"
	"github.com/auditline/auditline/sinks/archive/verify"
)

func untar(t *testing.T, data []byte, dir string) string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	top := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, "..") {
			t.Fatalf("unsafe path %s", h.Name)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			if top == "" {
				top = p
			}
			os.MkdirAll(p, 0o755)
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return top
}

// readmeScript returns the ```sh blocks of a pack's README: the auditor's
// standard-tool steps.
func readmeScript(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 7 {
		t.Fatalf("README has %d sh blocks, want the 7 steps", len(blocks))
	}
	var s strings.Builder
	s.WriteString("set -euo pipefail\n")
	for _, bl := range blocks {
		s.WriteString(bl[1])
	}
	return s.String()
}

func runSteps(t *testing.T, dir, script string) (string, error) {
	t.Helper()
	for _, tool := range []string{"bash", "sha256sum", "openssl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("AUDITLINE_REQUIRE_SERVERS") == "1" {
				t.Fatalf("%s is required to run the README steps", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestExportPack writes evidence packs (all teams, then one team), unpacks
// them, and runs the README's standard-tool steps (sha256sum, openssl,
// python3) exactly as written; then damages a record and checks that the
// steps fail.
func TestExportPack(t *testing.T) {
	e := newEnv(t, 2)
	e.cfg.Batch.MaxRecords = 150
	start := time.Now().Add(-time.Second)
	e.produce(0, 800)
	r := e.start(e.cfg)
	waitFor(t, "sealed", 60*time.Second, func() bool { return r.sealed() == 800 })
	time.Sleep(3 * e.cfg.Checkpoint.Interval)
	r.stop(t)
	end := time.Now().Add(time.Second)
	ctx := context.Background()
	o := e.verifyOpts()

	for _, team := range []string{"", archivetest.Team(2)} {
		name := "all teams"
		if team != "" {
			name = "team " + team
		}
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			sum, err := evidence.Export(ctx, evidence.Options{Bucket: e.b, Layout: e.layout(), Origin: e.cfg.OriginName(), Keys: o.Keys,
				From: start, To: end, Team: team}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			want := 800
			if team != "" {
				want = 200
			}
			if sum.Records != want || sum.Checkpoints == 0 {
				t.Fatalf("pack summary %+v, want %d records and checkpoints", sum, want)
			}
			dir := untar(t, buf.Bytes(), t.TempDir())
			script := readmeScript(t, dir)
			out, err := runSteps(t, dir, script)
			if err != nil {
				t.Fatalf("README steps failed: %v\n%s", err, out)
			}
			for step := 1; step <= 7; step++ {
				if !strings.Contains(out, "step "+string(rune('0'+step))) {
					t.Fatalf("step %d did not report:\n%s", step, out)
				}
			}
			t.Logf("README steps:\n%s", out)
			// Our CLI's offline check of the same pack.
			n := 0
			err = evidence.ReadProofs(dir, func(p *verify.Proof, rec, md []byte) error {
				n++
				_, err := verify.VerifyProof(p, o.Keys, md, rec)
				return err
			})
			if err != nil || n != want {
				t.Fatalf("verify-proof --pack: %d proofs, %v", n, err)
			}
			if team != "" {
				if matches, _ := filepath.Glob(filepath.Join(dir, "bucket", "*", "batches", "*", "*.parquet")); len(matches) != 0 {
					t.Fatalf("a team pack holds whole batch objects (other teams' records): %v", matches)
				}
				recs, _ := os.ReadFile(filepath.Join(dir, "records", "records.jsonl"))
				if strings.Count(string(recs), `"team_id":"`+team+`"`) != want {
					t.Fatal("the team pack holds records of other teams")
				}
				return
			}
			// Damage one record: step 1 (SHA256SUMS) fails …
			recPath := filepath.Join(dir, "records", "records.jsonl")
			recs, _ := os.ReadFile(recPath)
			damaged := bytes.Replace(recs, []byte(`"cost_usd":0.0042`), []byte(`"cost_usd":0.0001`), 1)
			os.WriteFile(recPath, damaged, 0o644)
			if out, err := runSteps(t, dir, script); err == nil {
				t.Fatalf("steps passed on a damaged record:\n%s", out)
			}
			// … and with SHA256SUMS recomputed to match, step 6 still fails.
			cmd := exec.Command("bash", "-c", "grep -v ' SHA256SUMS$' SHA256SUMS | cut -c67- | xargs sha256sum > S && mv S SHA256SUMS")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v %s", err, out)
			}
			out, err = runSteps(t, dir, script)
			if err == nil || !strings.Contains(out, "RECORD ALTERED") {
				t.Fatalf("step 6 did not catch an altered record (%v):\n%s", err, out)
			}
		})
	}
}

// TestMappingFieldsExist checks that every record field the EU AI Act mapping
// names exists in record.Decision.
func TestMappingFieldsExist(t *testing.T) {
	paths := map[string]bool{}
	var walk func(prefix string, fs []recordField)
	walk = func(prefix string, fs []recordField) {
		for _, f := range fs {
			paths[prefix+f.JSON] = true
			if f.Elem != nil {
				paths[prefix+f.JSON+"[]"] = true
				walk(prefix+f.JSON+"[].", f.Elem)
			}
		}
	}
	walk("", fields())
	// Prefixes of paths are objects ("budget.key"); accept them too.
	for p := range paths {
		for i := range p {
			if p[i] == '.' {
				paths[p[:i]] = true
			}
		}
	}
	re := regexp.MustCompile("`([a-z_]+(?:\\[\\])?(?:\\.[a-z_]+(?:\\[\\])?)*)`")
	n := 0
	for _, m := range re.FindAllStringSubmatch(evidence.Mapping, -1) {
		tok := m[1]
		if !strings.Contains(tok, ".") && !strings.Contains(tok, "[]") && !paths[tok] {
			continue // a value such as `full` or `hash`
		}
		n++
		if !paths[tok] {
			t.Errorf("EU-AI-ACT.md names %s, which is not a record field", tok)
		}
	}
	if n < 40 {
		t.Fatalf("only %d field paths found in the mapping", n)
	}
}
