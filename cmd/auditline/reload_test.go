package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/auth"
)

// TestIngestSIGHUPRotatesTokens runs `auditline ingest` on the real broker
// and rotates its token with two SIGHUPs and no restart: old → old + new →
// new. The process keeps its pid and its port throughout.
func TestIngestSIGHUPRotatesTokens(t *testing.T) {
	kafka := testenv.Kafka(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	const oldTok, newTok = "sighup-old-token", "sighup-new-token"
	port := testenv.FreePort(t)
	config := filepath.Join(dir, "auditline.yaml")
	write := func(toks ...string) {
		t.Helper()
		var entries strings.Builder
		for _, tok := range toks {
			fmt.Fprintf(&entries, "      - {name: %s, sha256: %s, scopes: [litellm]}\n", tok, auth.Hash(tok))
		}
		cfg := fmt.Sprintf("kafka:\n  brokers: [%s]\ntopic_prefix: %s.\nops:\n  listen: \"\"\ningest:\n  listen: 127.0.0.1:%d\n  auth:\n    tokens:\n%s",
			strings.Join(kafka, ", "), testenv.Name(t), port, entries.String())
		if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(oldTok)
	ingest := startProc(t, bin, dir, "ingest", config)
	cmd, logf := ingest.cmd, ingest.logf
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	body, err := os.ReadFile("../../ingest/testdata/examples/01_success_plain_openai.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(tok string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/litellm", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, logf, "ingest ready", time.Minute, func() error {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	})
	reloads := 0
	hup := func() {
		t.Helper()
		reloads++
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, logf, "reload logged", 30*time.Second, func() error {
			b, _ := os.ReadFile(logf)
			if n := strings.Count(string(b), "credentials reloaded"); n < reloads {
				return fmt.Errorf("%d reloads logged", n)
			}
			return nil
		})
	}
	if c := post(oldTok); c != 200 {
		t.Fatalf("old token at start: %d", c)
	}
	if c := post(newTok); c != 401 {
		t.Fatalf("new token before it is configured: %d", c)
	}
	write(oldTok, newTok)
	hup()
	if a, b := post(oldTok), post(newTok); a != 200 || b != 200 {
		t.Fatalf("both tokens configured: old %d, new %d", a, b)
	}
	write(newTok)
	hup()
	if a, b := post(oldTok), post(newTok); a != 401 || b != 200 {
		t.Fatalf("old token retired: old %d (want 401), new %d", a, b)
	}
	// A broken file keeps the current credentials and says why.
	if err := os.WriteFile(config, []byte("ingest: [not, a, map]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, logf, "refused reload logged", 30*time.Second, func() error {
		b, _ := os.ReadFile(logf)
		if !strings.Contains(string(b), "credentials not reloaded") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if c := post(newTok); c != 200 {
		t.Fatalf("after a refused reload: %d", c)
	}
	select {
	case <-ingest.exited:
		t.Fatalf("auditline ingest exited: %v", ingest.err)
	default:
	}
}
