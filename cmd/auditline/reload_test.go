package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/stacktest"
)

// TestIngestSIGHUPRotatesTokens runs `auditline ingest` on the real broker
// and rotates its token with two SIGHUPs and no restart: old → old + new →
// new. The process keeps its pid and its port throughout.
func TestIngestSIGHUPRotatesTokens(t *testing.T) {
	s := stacktest.New(t, stacktest.Servers{Kafka: testenv.Kafka(t)}, "")
	const oldTok, newTok = "sighup-old-token", "sighup-new-token"
	var config string
	write := func(toks ...string) {
		t.Helper()
		s.Config.Ingest.Auth.Tokens = nil
		for _, tok := range toks {
			s.Config.Ingest.Auth.Tokens = append(s.Config.Ingest.Auth.Tokens, auth.Token{Name: tok, SHA256: auth.Hash(tok), Scopes: []auth.Scope{auth.ScopeLiteLLM}})
		}
		config = s.ConfigFile()
	}
	write(oldTok)
	ingest := s.Start("ingest")
	pid := ingest.Pid()
	base := s.IngestURL()
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
	stacktest.WaitFor(t, "ingest ready", time.Minute, func() error { return stacktest.Ready(nil, base) })
	reloads := 0
	hup := func() {
		t.Helper()
		reloads++
		if err := ingest.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		stacktest.WaitFor(t, "reload logged", 30*time.Second, func() error {
			if n := ingest.LogCount("credentials reloaded"); n < reloads {
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
	_ = ingest.Signal(syscall.SIGHUP)
	stacktest.WaitFor(t, "refused reload logged", 30*time.Second, func() error {
		if !strings.Contains(string(ingest.Log()), "credentials not reloaded") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if c := post(newTok); c != 200 {
		t.Fatalf("after a refused reload: %d", c)
	}
	if !ingest.Running() || ingest.Pid() != pid {
		t.Fatalf("auditline ingest exited or was replaced (pid %d, was %d)", ingest.Pid(), pid)
	}
}
