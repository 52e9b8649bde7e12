package fold

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestRulesHash: the hash follows every rule, the capture policy included,
// and not the layout of the YAML that set them.
func TestRulesHash(t *testing.T) {
	base := NewDefaultRules()
	c0, h0, err := base.Canonical()
	if err != nil || !strings.HasPrefix(h0, "sha256:") || !strings.Contains(string(c0), `"near_miss":{`) {
		t.Fatalf("%v %s %s", err, h0, c0)
	}
	for name, change := range map[string]func(r *Rules){
		"capture policy": func(r *Rules) { r.Content.Policy = CaptureRedacted },
		"budget pct":     func(r *Rules) { r.NearMiss.BudgetPct = 90 },
		"tier rule":      func(r *Rules) { r.Risk.Default = "medium" },
		"sampling rate":  func(r *Rules) { r.Sampling.Rates = TierRates{"high": 0.5} },
	} {
		r := NewDefaultRules()
		change(&r)
		if _, h, _ := r.Canonical(); h == h0 {
			t.Errorf("%s: hash unchanged", name)
		}
	}
	var a, b Rules
	if err := yaml.Unmarshal([]byte("content: {policy: hash, max_bytes: 10}\nrisk: {default: low}\n"), &a); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte("risk:\n  default: low\ncontent:\n  max_bytes: 10\n  policy: hash\n"), &b); err != nil {
		t.Fatal(err)
	}
	if _, ha, _ := a.Canonical(); ha != func() string { _, h, _ := b.Canonical(); return h }() {
		t.Error("the order of YAML keys changed the hash")
	}
}
