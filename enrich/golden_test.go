package enrich

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden/")

type input struct {
	src   raw.Source
	file  string
	delay time.Duration // receive time after the event's own time
}

func lite(file string) input {
	return input{raw.SourceLiteLLM, "litellm/" + file + ".json", 2 * time.Second}
}
func own(src raw.Source, file string) input {
	return input{src, "events/" + file + ".json", 100 * time.Millisecond}
}

type alertInput struct {
	file string
	at   time.Time
}

type goldenCase struct {
	name   string
	events []input
	alerts []alertInput
	cfg    func(*Config)
}

// goldenCases are the example payload sets of the issue, plus the shapes
// LiteLLM's history adds (legacy v1, NaN, call_id) and our own events.
func goldenCases() []goldenCase {
	beforeCall := time.Date(2025, 11, 22, 10, 41, 0, 0, time.UTC)
	return []goldenCase{
		{name: "01_plain", events: []input{lite("01_success_plain_openai")}},
		{name: "01_plain_capture_full", events: []input{lite("01_success_plain_openai")},
			cfg: func(c *Config) { c.Content.Policy = fold.CaptureFull }},
		{name: "02_streaming", events: []input{lite("02_success_streaming_azure")}},
		{name: "03_fallback_pair", events: []input{lite("03a_fallback_attempt1_failure_azure_429"),
			lite("03b_fallback_attempt2_success_anthropic"), own(raw.SourceGateway, "gateway_allow")}},
		{name: "05_guardrail_block", events: []input{lite("05_guardrail_pre_call_block"), own(raw.SourceGateway, "gateway_block")}},
		{name: "05_guardrail_block_redacted", events: []input{lite("05_guardrail_pre_call_block")},
			cfg: func(c *Config) { c.Content.Policy = fold.CaptureRedacted }},
		{name: "07_cache_hit", events: []input{lite("07_cache_hit")}},
		{name: "08_budget_near_limit_alerts", events: []input{lite("08_budget_near_limit_key_user_team_end_user"), own(raw.SourceGateway, "gateway_review")},
			alerts: []alertInput{
				{"litellm/10_alert_webhook_budget_crossed_key.json", beforeCall},
				{"litellm/11_alert_webhook_threshold_crossed_team.json", beforeCall.Add(time.Second)},
				{"litellm/13_alert_webhook_spend_tracked_end_user.json", beforeCall.Add(2 * time.Second)},
				// Received after the call ended: not attached.
				{"litellm/13_alert_webhook_spend_tracked_end_user.json", beforeCall.Add(time.Hour)},
			}},
		{name: "budget_denied", events: []input{own(raw.SourceLiteLLM, "litellm_budget_denied")},
			alerts: []alertInput{{"litellm/10_alert_webhook_budget_crossed_key.json", beforeCall}},
			cfg:    func(c *Config) { c.Content.Policy = fold.CaptureRedacted }},
		{name: "retry_same_group", events: []input{own(raw.SourceLiteLLM, "litellm_retry_attempt1_503"), own(raw.SourceLiteLLM, "litellm_retry_attempt2_success")}},
		{name: "legacy_v1", events: []input{own(raw.SourceLiteLLM, "litellm_legacy_v1")}},
		{name: "python_nan_guardrail_object", events: []input{own(raw.SourceLiteLLM, "litellm_python_nan")}},
		{name: "old_call_id", events: []input{own(raw.SourceLiteLLM, "litellm_old_call_id")}},
		{name: "gateway_only_timed_out", events: []input{own(raw.SourceGateway, "gateway_orphan")}},
	}
}

// run feeds a case's events (in the given order) to a fresh Processor, lets
// stream time pass every wait, and returns every decision produced.
func (c goldenCase) run(t testing.TB, order []int, batch bool) []record.Decision {
	cfg := testConfig()
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	alerts := newAlertTable()
	r := newRig(t, cfg, nil, alerts)
	af := r.f
	for _, a := range c.alerts {
		b, err := os.ReadFile(filepath.Join("testdata", a.file))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := af.Record(raw.SourceAlert, b, a.at)
		if err != nil {
			t.Fatal(err)
		}
		if !alerts.add(rec) {
			t.Fatalf("alert %s not added", a.file)
		}
	}
	recs := make([]*kgo.Record, len(c.events))
	for i, in := range c.events {
		recs[i] = r.rec(in.src, in.file, in.delay)
	}
	if order == nil {
		order = make([]int, len(recs))
		for i := range order {
			order[i] = i
		}
	}
	ordered := make([]*kgo.Record, 0, len(order))
	for _, i := range order {
		ordered = append(ordered, recs[i])
	}
	if batch {
		r.feedBatch(ordered...)
	} else {
		r.feed(ordered...)
	}
	r.idle(2 * time.Hour)
	return r.k.decisions(t)
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			ds := c.run(t, nil, true)
			if len(ds) == 0 {
				t.Fatal("no decision emitted")
			}
			var got bytes.Buffer
			got.WriteString("[\n")
			for i, d := range ds {
				cb, err := d.Canonical()
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Indent(&got, cb, "", "  "); err != nil {
					t.Fatal(err)
				}
				if i < len(ds)-1 {
					got.WriteString(",")
				}
				got.WriteString("\n")
			}
			got.WriteString("]\n")
			path := filepath.Join("testdata", "golden", c.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diffs := fieldDiff(want, got.Bytes()); len(diffs) > 0 {
				t.Errorf("%s differs field by field (run with -update if intended):\n%s", path, joinLines(diffs))
			}
		})
	}
}

// fieldDiff flattens two JSON documents to path → value and lists every path
// whose value differs.
func fieldDiff(want, got []byte) []string {
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		return []string{"golden: " + err.Error()}
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return []string{"got: " + err.Error()}
	}
	wm, gm := map[string]string{}, map[string]string{}
	flatten("", w, wm)
	flatten("", g, gm)
	keys := map[string]bool{}
	for k := range wm {
		keys[k] = true
	}
	for k := range gm {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if wm[k] != gm[k] {
			out = append(out, fmt.Sprintf("  %s: want %s, got %s", k, orMissing(wm, k), orMissing(gm, k)))
		}
	}
	sort.Strings(out)
	return out
}

func orMissing(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "(missing)"
}

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			flatten(prefix+"."+k, e, out)
		}
	case []any:
		if len(t) == 0 {
			out[prefix] = "[]"
		}
		for i, e := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	default:
		b, _ := json.Marshal(t)
		out[prefix] = string(b)
	}
}

func joinLines(ss []string) string {
	var b bytes.Buffer
	for _, s := range ss {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}
