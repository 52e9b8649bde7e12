package archive

import (
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/internal/stacktest/binary"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/keys"
)

// TestCLI runs the auditor's commands as a user would: keys, verify (exit 0,
// then 1 after tampering, naming the object), prove, verify-proof, export.
func TestCLI(t *testing.T) {
	bin := binary.Auditline(t)
	e := newEnv(t, 2)
	start := time.Now().Add(-time.Second)
	e.produce(0, 400)
	r := e.start(e.cfg)
	waitFor(t, "sealed", 60*time.Second, func() bool { return r.sealed() == 400 })
	r.stop(t)
	dir := t.TempDir()
	priv, err := keys.Load(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := keys.MarshalPublic(priv.Public().(ed25519.PublicKey))
	pub := filepath.Join(dir, "archive.pub")
	os.WriteFile(pub, pubPEM, 0o644)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"),
			"AUDITLINE_S3=http://" + e.bcfg.AccessKey + ":" + e.bcfg.SecretKey + "@" + e.bcfg.Endpoint,
			"AUDITLINE_S3_BUCKET=" + e.bcfg.Bucket}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run("keys", "generate", "--out", filepath.Join(dir, "new.key"))
	if err != nil || len(strings.TrimSpace(strings.Split(out, "\n")[0])) != 16 {
		t.Fatalf("keys generate: %v\n%s", err, out)
	}
	// No config: verify requires the default archive.retention.period (7 years);
	// the test archive is locked for one minute, so every object fails it.
	out, err = run("verify", "--key", pub, "--retention-mode", "GOVERNANCE")
	if err == nil || !strings.Contains(out, "want at least 7y") {
		t.Fatalf("verify with the default 7y retention on a 1-minute archive: %v\n%s", err, out)
	}
	out, err = run("verify", "--key", pub, "--retention-mode", "GOVERNANCE", "--min-retention", "60s")
	if err != nil || !strings.Contains(out, "OK:") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	out, err = run("verify", "--key", pub) // COMPLIANCE required, the test bucket is GOVERNANCE
	if err == nil || !strings.Contains(out, "retention mode GOVERNANCE, want COMPLIANCE") {
		t.Fatalf("verify --retention-mode COMPLIANCE on a GOVERNANCE archive: %v\n%s", err, out)
	}

	id := record.ID(archivetest.Decision(8).Request.RequestKey)
	proofPath := filepath.Join(dir, "proof.json")
	if out, err := run("prove", "--key", pub, "--out", proofPath, id); err != nil {
		t.Fatalf("prove: %v\n%s", err, out)
	}
	out, err = run("verify-proof", "--key", pub, proofPath)
	if err != nil || !strings.Contains(out, "OK: record "+id+" version 2") {
		t.Fatalf("verify-proof: %v\n%s", err, out)
	}
	other := filepath.Join(dir, "new.key.pub")
	if out, err := run("verify-proof", "--key", other, proofPath); err == nil {
		t.Fatalf("verify-proof accepted a proof under an untrusted key:\n%s", out)
	}

	pack := filepath.Join(dir, "pack.tar.gz")
	out, err = run("export", "--key", pub, "--sign-key", e.keyFile, "--from", start.UTC().Format(time.RFC3339), "--to", time.Now().Add(time.Second).UTC().Format(time.RFC3339), "--out", pack)
	if err != nil || !strings.Contains(out, "400 records") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if out, err := exec.Command("tar", "-xzf", pack, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	packDirs, _ := filepath.Glob(filepath.Join(dir, "auditline-evidence-*"))
	if len(packDirs) != 1 {
		t.Fatalf("unpacked %v", packDirs)
	}
	out, err = run("verify-proof", "--pack", packDirs[0], "--key", pub)
	if err != nil || !strings.Contains(out, "OK: 400 inclusion proofs") {
		t.Fatalf("verify-proof --pack: %v\n%s", err, out)
	}

	// Tamper: verify exits 1 and names the object.
	mkey, _ := e.b.Last(t.Context(), e.layout().ManifestPrefix(1), 20)
	data := e.get(t, mkey)
	e.replace(t, mkey, []byte(strings.Replace(string(data), `"seq":`, `"seq":9`, 1)))
	out, err = run("verify", "--key", pub, "--retention-mode", "GOVERNANCE", "--min-retention", "60s")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, mkey) || !strings.Contains(out, "FAILED") {
		t.Fatalf("verify after tampering: %v\n%s", err, out)
	}
	t.Logf("verify after tampering:\n%s", out)
}
