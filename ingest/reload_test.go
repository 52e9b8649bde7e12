package ingest

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/auditline/auditline/ingest/auth"
)

// TestReloadAuthRotatesWithoutDowntime rotates a token while senders keep
// posting: old only → old and new → new only. No request with a token valid
// at that moment is refused, the retired token is refused after the last
// reload, and a bad configuration leaves the current credentials in force.
func TestReloadAuthRotatesWithoutDowntime(t *testing.T) {
	const oldTok, newTok = "rotation-old-token", "rotation-new-token"
	tokens := func(ts ...string) auth.Config {
		c := testConfig().Auth
		c.Tokens = nil
		for _, tok := range ts {
			c.Tokens = append(c.Tokens, auth.Token{Name: tok, SHA256: auth.Hash(tok), Scopes: auth.Scopes})
		}
		return c
	}
	h := startFake(t, &fakeProducer{}, func(c *Config) { c.Auth = tokens(oldTok) })
	body := example(t, "01_success_plain_openai.json")

	// Senders on the old token until told to move, then on the new one.
	var moved atomic.Bool
	var refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok := oldTok
				if moved.Load() {
					tok = newTok
				}
				if r := h.post("/v1/litellm", tok, body); r.code != http.StatusOK {
					refused.Add(1)
				}
			}
		}()
	}
	if err := h.srv.ReloadAuth(tokens(oldTok, newTok)); err != nil {
		t.Fatal(err)
	}
	if r := h.post("/v1/litellm", newTok, body); r.code != http.StatusOK {
		t.Fatalf("new token after adding it: %d %s", r.code, r.body)
	}
	moved.Store(true)
	if r := h.post("/v1/litellm", oldTok, body); r.code != http.StatusOK {
		t.Fatalf("old token while both are valid: %d %s", r.code, r.body)
	}
	// Senders still holding the old token finish their request first.
	close(stop)
	wg.Wait()
	if err := h.srv.ReloadAuth(tokens(newTok)); err != nil {
		t.Fatal(err)
	}
	if n := refused.Load(); n != 0 {
		t.Errorf("%d requests with a valid token were refused during the rotation", n)
	}
	if r := h.post("/v1/litellm", oldTok, body); r.code != http.StatusUnauthorized {
		t.Errorf("retired token: %d, want 401", r.code)
	}
	if err := h.srv.ReloadAuth(tokens()); err == nil {
		t.Fatal("an empty token list was accepted")
	}
	if r := h.post("/v1/litellm", newTok, body); r.code != http.StatusOK {
		t.Errorf("after a refused reload the current token must still work: %d", r.code)
	}
}
