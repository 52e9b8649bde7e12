package privacy

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/privacy/rules"
)

// TestRulesSealed: every record carries the hash of the enrich rules in
// force; the archive stage seals those rules (content-addressed) when it
// starts; a changed configuration gives new records a new hash, and its
// rules are in the archive too, beside the old ones.
func TestRulesSealed(t *testing.T) {
	s := stacktest.New(t, stacktest.Shared(t), "")
	c := &s.Config
	c.Enrich.LiteLLMWait = 5 * time.Second
	s.Migrate()
	example, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "ingest/testdata/examples/01_success_plain_openai.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := s.Bucket()
	hashOf := func(key string) string {
		var got string
		stacktest.WaitFor(t, "the record of "+key, 3*time.Minute, func() error {
			ds, _, err := stacktest.Decisions(ctx, c.Kafka, c.Topics().Decisions())
			if err != nil {
				return err
			}
			for _, d := range ds {
				if d.Request.RequestKey == key {
					got = d.RulesHash
					return nil
				}
			}
			return fmt.Errorf("no record of %s yet", key)
		})
		return got
	}
	round := func(key string) string {
		t.Helper()
		run := s.RunInProcess("archive", "enrich", "ingest")
		s.WaitReady(s.IngestURL())
		body := bytes.ReplaceAll(example, []byte("b980db26-9512-45cc-b1da-c511a363b83f"), []byte(key))
		for attempt := 0; ; attempt++ {
			req, _ := http.NewRequest(http.MethodPost, s.IngestURL()+"/v1/litellm", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+stacktest.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
			if resp.StatusCode != http.StatusServiceUnavailable || attempt == 30 {
				t.Fatalf("POST: %d", resp.StatusCode)
			}
			time.Sleep(2 * time.Second)
		}
		h := hashOf(key)
		_, want, err := c.Enrich.Rules().Canonical()
		if err != nil || h != want {
			t.Fatalf("record of %s carries rules_hash %q, want the configuration's %q (%v)", key, h, want, err)
		}
		stacktest.WaitFor(t, "rules "+h+" sealed", 2*time.Minute, func() error {
			got, err := rules.Load(ctx, b, c.Archive.Prefix, h)
			if err != nil {
				return err
			}
			want, _, _ := c.Enrich.Rules().Canonical()
			if !bytes.Equal(got, want) {
				return stacktest.StopPolling(fmt.Errorf("sealed rules differ from the configuration's:\n%s\n%s", got, want))
			}
			return nil
		})
		if err := run.Stop(); err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := round(s.Name + "-before")
	c.Enrich.Sampling.Rates = fold.TierRates{"low": 0.25, "high": 1}
	c.Enrich.NearMiss.BudgetPct = 95
	second := round(s.Name + "-after")
	if first == second {
		t.Fatalf("the rules changed, the hash did not: %s", first)
	}
	if _, err := rules.Load(ctx, b, c.Archive.Prefix, first); err != nil {
		t.Errorf("the first rules are no longer in the archive: %v", err)
	}
}
