package app

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/enrich"
	"github.com/auditline/auditline/enrich/fold"
)

func TestEnrichConfig(t *testing.T) {
	cfg, err := Load("testdata/enrich.yaml", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate("enrich"); err != nil {
		t.Fatalf("the example config is invalid: %v", err)
	}
	e := cfg.Enrich
	if e.Group != "audit-enrich" || e.FailureGrace != 15*time.Second || e.LiteLLMWait != 2*time.Minute || e.Content.Policy != fold.CaptureRedacted ||
		len(e.Risk.Tiers) != 2 || e.Risk.Tiers[0].Tier != "critical" || e.Sampling.Rates["critical"] != 1 || e.Sampling.Auto.Enabled {
		t.Fatalf("enrich section: %+v", e)
	}
	// Keys the file leaves out keep their defaults.
	if e.SuccessDelay != time.Second || e.MaxPending != enrich.DefaultMaxPending {
		t.Fatalf("defaults lost: success_delay %s, max_pending %d", e.SuccessDelay, e.MaxPending)
	}

	t.Setenv("AUDITLINE_ENRICH_FAILURE_GRACE", "3s")
	t.Setenv("AUDITLINE_ENRICH_CONTENT_POLICY", "hash")
	t.Setenv("AUDITLINE_ENRICH_SAMPLING_AUTO_BURST_SHARE", "0.5")
	cfg, err = Load("testdata/enrich.yaml", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Enrich.FailureGrace != 3*time.Second || cfg.Enrich.Content.Policy != "hash" || cfg.Enrich.Sampling.Auto.Share != 0.5 {
		t.Fatalf("env overrides: %+v", cfg.Enrich)
	}

	t.Setenv("AUDITLINE_ENRICH_CONTENT_POLICY", "everything")
	t.Setenv("AUDITLINE_ENRICH_LITELLM_WAIT", "0s")
	cfg, err = Load("testdata/enrich.yaml", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate("enrich")
	for _, want := range []string{`enrich.content.policy: "everything"`, "enrich.litellm_wait: 0s, want > 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate = %v, want it to name %q", err, want)
		}
	}
}

func TestEnrichStageBuilds(t *testing.T) {
	cfg, err := Load("testdata/enrich.yaml", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	st, err := buildEnrich(cfg, Settings{Registry: prometheus.NewRegistry()})
	if err != nil || st == nil {
		t.Fatalf("buildEnrich = %v, %v", st, err)
	}
	if _, ok := st.(readier); !ok {
		t.Error("the enrich stage does not feed /readyz")
	}
}

// TestDefaultGroups: consumer groups left unset follow the topic prefix;
// set ones are kept.
func TestDefaultGroups(t *testing.T) {
	t.Setenv("AUDITLINE_CONFIG", "")
	for _, tc := range []struct{ yaml, enrich, store, archive string }{
		{"", "auditline-enrich", "auditline-store", "auditline-archive"},
		{"topic_prefix: eu.prod.\n", "eu.prod-enrich", "eu.prod-store", "eu.prod-archive"},
		{"topic_prefix: eu.\nstore:\n  group: mine\n", "eu-enrich", "mine", "eu-archive"},
	} {
		path := t.TempDir() + "/c.yaml"
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Enrich.Group != tc.enrich || cfg.Store.Group != tc.store || cfg.Archive.Group != tc.archive {
			t.Errorf("%q: groups %s %s %s, want %s %s %s", tc.yaml, cfg.Enrich.Group, cfg.Store.Group, cfg.Archive.Group, tc.enrich, tc.store, tc.archive)
		}
	}
}
