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

// TestMemoryLimit: memory.stage_limit is per stage the process runs, enrich
// has none by default (and then neither has a process running it), 0 is
// none, the environment overrides both, and a limit too small to run a
// stage is refused with its key.
func TestMemoryLimit(t *testing.T) {
	cfg := NewDefaultConfig()
	for _, tc := range []struct {
		stages []string
		want   int64
	}{
		{[]string{"store"}, DefaultStageLimit},
		{[]string{"store", "archive"}, 2 * DefaultStageLimit},
		{[]string{"enrich"}, 0},
		{[]string{"ingest", "enrich"}, 0},
		{nil, 0}, // every stage, enrich among them
	} {
		if got := cfg.MemoryLimit(tc.stages...); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.stages, got, tc.want)
		}
	}
	for _, tc := range []struct {
		env     []string
		stages  []string
		limit   int64
		invalid string
	}{
		{[]string{"AUDITLINE_MEMORY_STAGE_LIMIT=0"}, []string{"store"}, 0, ""},
		{[]string{"AUDITLINE_MEMORY_STAGE_LIMIT=104857600"}, []string{"store"}, 100 << 20, ""},
		{[]string{"AUDITLINE_MEMORY_ENRICH_LIMIT=536870912"}, []string{"enrich", "store"}, 512<<20 + DefaultStageLimit, ""},
		{[]string{"AUDITLINE_MEMORY_ENRICH_LIMIT=536870912"}, nil, 512<<20 + int64(len(StageNames())-1)*DefaultStageLimit, ""},
		{[]string{"AUDITLINE_MEMORY_STAGE_LIMIT=1048576"}, []string{"store"}, 1 << 20, "memory.stage_limit"},
		{[]string{"AUDITLINE_MEMORY_ENRICH_LIMIT=1048576"}, []string{"enrich"}, 1 << 20, "memory.enrich_limit"},
	} {
		c, err := Load("", tc.env)
		if err != nil {
			t.Fatalf("%s: %v", tc.env, err)
		}
		if got := c.MemoryLimit(tc.stages...); got != tc.limit {
			t.Errorf("%s %v: limit %d, want %d", tc.env, tc.stages, got, tc.limit)
		}
		err = c.Validate("ingest")
		if got := err != nil && strings.Contains(err.Error(), "memory."); got != (tc.invalid != "") || (got && !strings.Contains(err.Error(), tc.invalid)) {
			t.Errorf("%s: Validate = %v, want an error naming %q", tc.env, err, tc.invalid)
		}
	}
}
