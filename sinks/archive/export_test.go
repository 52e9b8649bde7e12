package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/evidence"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/verify"
	"github.com/auditline/auditline/sinks/archive/witness"
	"github.com/auditline/auditline/sinks/archive/witness/witnesstest"
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
	if len(blocks) < 11 {
		t.Fatalf("README has %d sh blocks, want the preamble and the 10 steps", len(blocks))
	}
	var s strings.Builder
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

// signer returns the test archive's key as a pack signer.
func (e *env) signer(t *testing.T) *keys.Signer {
	priv, err := keys.Load(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewSigner(e.cfg.OriginName(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) export(t *testing.T, o evidence.Options) ([]byte, *evidence.Summary) {
	t.Helper()
	o.Bucket, o.Layout, o.Origin, o.Keys, o.Signer = e.b, e.layout(), e.cfg.OriginName(), e.verifyOpts().Keys, e.signer(t)
	var buf bytes.Buffer
	sum, err := evidence.Export(context.Background(), o, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sum
}

// TestExportPack writes evidence packs (all teams, one team, one tenant, two
// record ids), unpacks them, and runs the README's standard-tool steps (bash,
// sha256sum, openssl, python3) exactly as written and our offline check; then
// checks that the same export gives the same bytes, and that tampering with a
// pack — even with SHA256SUMS recomputed — fails both.
func TestExportPack(t *testing.T) {
	e := newEnv(t, 2)
	e.cfg.Batch.MaxRecords = 150
	start := time.Now().Add(-time.Second)
	e.produce(0, 800)
	lg := e.logOf(t)
	own := witnesstest.StartServer(t, "witness.example/own", lg)
	e.cfg.Witness = WitnessConfig{Witnesses: []WitnessEntry{entry(own.Witness)}, Quorum: 1, Timeout: 5 * time.Second}
	r := e.start(e.cfg)
	waitFor(t, "sealed", 60*time.Second, func() bool { return r.sealed() == 800 })
	r.waitCheckpointed(t, 800)
	waitFor(t, "every checkpoint cosigned", 90*time.Second, func() bool {
		n, by := e.cosignatures(t)
		return n > 0 && by[own.Witness.Key.KeyHash()] == n
	})
	r.stop(t)
	end := time.Now().Add(time.Second)
	o := e.verifyOpts()
	ws := []witness.Witness{own.Witness}
	ids := []string{record.ID(archivetest.Decision(8).Request.RequestKey), record.ID(archivetest.Decision(333).Request.RequestKey)}

	for _, tc := range []struct {
		name string
		opt  evidence.Options
		want int
	}{
		{"all teams", evidence.Options{From: start, To: end}, 800},
		{"team " + archivetest.Team(2), evidence.Options{From: start, To: end, Team: archivetest.Team(2)}, 200},
		{"tenant acme by request time", evidence.Options{RequestFrom: time.UnixMilli(1763807445118), RequestTo: time.UnixMilli(1763807445118 + 400*37), Tenant: "acme"}, 400},
		{"two record ids", evidence.Options{RecordIDs: ids}, 3}, // record 8 has two versions (index 9 amends it)
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Witnesses = ws
			pack, sum := e.export(t, tc.opt)
			if sum.Records != tc.want || sum.Checkpoints == 0 {
				t.Fatalf("pack summary %+v, want %d records and checkpoints", sum, tc.want)
			}
			// Deterministic: the same export gives the same bytes.
			if again, _ := e.export(t, tc.opt); !bytes.Equal(again, pack) {
				t.Fatal("exporting the same scope twice gave different bytes")
			}
			dir := untar(t, pack, t.TempDir())
			out, err := runSteps(t, dir, readmeScript(t, dir))
			if err != nil {
				t.Fatalf("README steps failed: %v\n%s", err, out)
			}
			for step := 1; step <= 10; step++ {
				if !strings.Contains(out, fmt.Sprintf("step %d ", step)) && !strings.Contains(out, fmt.Sprintf("step %d:", step)) {
					t.Fatalf("step %d did not report:\n%s", step, out)
				}
			}
			if !strings.Contains(out, "step 10 OK: 2 witness cosignature(s) verified") && !strings.Contains(out, "step 10 OK: 1 witness cosignature(s) verified") {
				t.Fatalf("the witness cosignatures were not checked:\n%s", out)
			}
			// VERIFY.sh is the README's blocks.
			if vs, err := os.ReadFile(filepath.Join(dir, "VERIFY.sh")); err != nil || string(vs) != evidence.VerifyScript(mustRead(t, filepath.Join(dir, "README.md"))) {
				t.Fatalf("VERIFY.sh is not the README's steps: %v", err)
			}
			if rep, err := evidence.VerifyPack(dir, o.Keys); err != nil || !rep.OK() || rep.Proofs != tc.want {
				t.Fatalf("verify-proof --pack: %+v, %v", rep, err)
			}
			pm := readPackManifest(t, dir)
			if pm.Retention.MinPeriodHours != 0 || len(pm.Retention.Modes) != 1 || pm.Retention.Modes[0] != "GOVERNANCE" || pm.Anchors.Cosignatures == 0 {
				t.Fatalf("the pack states retention %+v and anchors %+v; the test archive is GOVERNANCE, locked for a minute, and cosigned", pm.Retention, pm.Anchors)
			}
			eu := string(mustRead(t, filepath.Join(dir, "EU-AI-ACT.md")))
			if !strings.Contains(eu, "S3 Object Lock GOVERNANCE") || strings.Contains(eu, "7 years") || !strings.Contains(eu, "witness cosignature") {
				t.Fatalf("EU-AI-ACT.md does not state the real retention and anchors:\n%s", eu)
			}
			if tc.name != "all teams" {
				if matches, _ := filepath.Glob(filepath.Join(dir, "bucket", "*", "batches", "*", "*.parquet")); len(matches) != 0 {
					t.Fatalf("a scoped pack holds whole batch objects (records outside the scope): %v", matches)
				}
				return
			}
			tamperPack(t, dir, o)
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readPackManifest(t *testing.T, dir string) *evidence.PackManifest {
	line, _, _ := bytes.Cut(mustRead(t, filepath.Join(dir, evidence.PackManifestFile)), []byte("\n"))
	var pm evidence.PackManifest
	if err := json.Unmarshal(line, &pm); err != nil {
		t.Fatal(err)
	}
	return &pm
}

// tamperPack damages copies of an unpacked pack the ways an insider would to
// hide something, recomputing SHA256SUMS each time, and checks that the
// README steps stop with a non-zero exit naming what is wrong and that
// verify-proof --pack fails too.
func tamperPack(t *testing.T, dir string, o verify.Options) {
	pm := readPackManifest(t, dir)
	lastBatch := pm.Batches[len(pm.Batches)-1]
	objectOf := func(d, manifestKey string) string {
		line, _, _ := bytes.Cut(mustRead(t, filepath.Join(d, "bucket", manifestKey)), []byte("\n"))
		var m struct {
			ObjectKey string `json:"object_key"`
		}
		json.Unmarshal(line, &m)
		return filepath.Join(d, "bucket", m.ObjectKey)
	}
	dropLine := func(p string, n int) {
		lines := strings.SplitAfter(string(mustRead(t, p)), "\n")
		os.WriteFile(p, []byte(strings.Join(append(lines[:n:n], lines[n+1:]...), "")), 0o644)
	}
	for _, tc := range []struct {
		name   string
		damage func(d string)
		want   string // in the README steps' output
	}{
		{"a record altered", func(d string) {
			p := filepath.Join(d, "records", "records.jsonl")
			os.WriteFile(p, bytes.Replace(mustRead(t, p), []byte(`"cost_usd":0.0042`), []byte(`"cost_usd":0.0001`), 1), 0o644)
		}, "FILE ALTERED: records/records.jsonl"},
		{"a record and its proof removed", func(d string) {
			dropLine(filepath.Join(d, "records", "records.jsonl"), 5)
			dropLine(filepath.Join(d, "proofs", "proofs.jsonl"), 5)
		}, "FILE ALTERED: proofs/proofs.jsonl"},
		{"a batch object removed", func(d string) { os.Remove(objectOf(d, pm.Batches[1].Manifest)) }, "FILE MISSING: bucket/"},
		{"the latest checkpoint removed", func(d string) { os.Remove(filepath.Join(d, "bucket", pm.Checkpoints.Latest.Key)) }, "FILE MISSING: " + "bucket/" + pm.Checkpoints.Latest.Key},
		{"the whole tail batch removed", func(d string) {
			// Its object, manifest, Parquet copy, records and proofs: as if it had never been packed.
			os.Remove(objectOf(d, lastBatch.Manifest))
			os.Remove(filepath.Join(d, "bucket", lastBatch.Manifest))
			os.Remove(filepath.Join(d, "records", fmt.Sprintf("p%010d-%020d.parquet", lastBatch.Partition, lastBatch.From)))
			for _, f := range []string{"proofs/proofs.jsonl", "records/records.jsonl"} {
				proofs := strings.SplitAfter(string(mustRead(t, filepath.Join(d, "proofs", "proofs.jsonl"))), "\n")
				lines := strings.SplitAfter(string(mustRead(t, filepath.Join(d, f))), "\n")
				var keep []string
				for i, l := range lines {
					if i < len(proofs) && strings.Contains(proofs[i], `"manifest_key":"`+lastBatch.Manifest+`"`) {
						continue
					}
					keep = append(keep, l)
				}
				os.WriteFile(filepath.Join(d, f), []byte(strings.Join(keep, "")), 0o644)
			}
		}, "FILE MISSING: bucket/" + lastBatch.Manifest},
		{"the pack manifest re-signed with another key", func(d string) {
			other, _ := keys.Generate(nil)
			s, _ := keys.NewSigner("x", other)
			p := filepath.Join(d, evidence.PackManifestFile)
			line, _, _ := bytes.Cut(mustRead(t, p), []byte("\n"))
			signed, _ := note.Sign(&note.Note{Text: string(line) + "\n"}, s)
			os.WriteFile(p, signed, 0o644)
		}, "BAD SIGNATURE: pack.manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			copyDir(t, dir, d)
			tc.damage(d)
			// SHA256SUMS recomputed to hide it.
			cmd := exec.Command("bash", "-c", "s=$(mktemp) && find . -type f ! -name SHA256SUMS ! -name pack.manifest | sed 's|^./||' | sort | xargs sha256sum > \"$s\" && mv \"$s\" SHA256SUMS && sha256sum --quiet -c SHA256SUMS")
			cmd.Dir = d
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("recomputing SHA256SUMS: %v %s", err, out)
			}
			out, err := runSteps(t, d, readmeScript(t, d))
			if err == nil || !strings.Contains(out, tc.want) || strings.Contains(out, "step 10 OK") {
				t.Fatalf("README steps on a pack with %s: %v (want a failure naming %q)\n%s", tc.name, err, tc.want, out)
			}
			t.Logf("%s: %s", tc.name, lastLine(out))
			if rep, err := evidence.VerifyPack(d, o.Keys); err == nil && rep.OK() {
				t.Fatalf("verify-proof --pack accepted a pack with %s", tc.name)
			} else if err == nil {
				t.Logf("verify-proof --pack: %s", rep.Failures[0])
			}
		})
	}
	// The leaf step alone still names an altered record (a verifier that
	// skipped the pack manifest would rely on it).
	d := t.TempDir()
	copyDir(t, dir, d)
	p := filepath.Join(d, "records", "records.jsonl")
	os.WriteFile(p, bytes.Replace(mustRead(t, p), []byte(`"cost_usd":0.0042`), []byte(`"cost_usd":0.0001`), 1), 0o644)
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(mustRead(t, filepath.Join(d, "README.md"))), -1)
	if out, err := runSteps(t, d, blocks[0][1]+blocks[7][1]); err == nil || !strings.Contains(out, "RECORD ALTERED") {
		t.Fatalf("step 7 did not name the altered record (%v):\n%s", err, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func copyDir(t *testing.T, from, to string) {
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
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
