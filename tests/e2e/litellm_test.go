// Package e2e drives real traffic through the real LiteLLM proxy
// (deploy/litellm) into auditline's ingest, enrich, store and archive, and
// checks the evidence in ClickHouse and in the archive.
package e2e

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/internal/stacktest"
)

// scenario is one request and what its decision record must say.
type scenario struct {
	name     string
	control  string // fakeupstream /control body sent first ("" = reset)
	req      map[string]any
	status   int      // HTTP status the client must get
	alias    string   // requested alias
	groups   []string // acceptable served model groups ("" = none)
	attempts int32
	retries  int32
	fallback bool
	outcome  string
	blocked  string
	guard    string // outcome.guardrail_status
	cacheHit bool
	stream   bool
	zeroCost bool
}

// deployments of deploy/litellm/config.yaml: model group → deployment id → model.
var deployments = map[string]map[string]string{
	"chat-a": {"chat-a-openai-east": "openai/gpt-a-east", "chat-a-azure-west": "azure/gpt-a-west"},
	"chat-b": {"chat-b-openai-1": "openai/gpt-b-1", "chat-b-azure-2": "azure/gpt-b-2"},
}

func msg(s string) []map[string]string { return []map[string]string{{"role": "user", "content": s}} }

// TestLiteLLMEndToEnd: plain, streaming, retry, three fallbacks (one streamed), a guardrail
// block and a cache hit through the real proxy; each request has exactly one
// decision record with the right routing, guardrail outcome, identity and
// cost; `auditline verify` passes and `auditline prove` proves every record.
func TestLiteLLMEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the real LiteLLM proxy and the whole pipeline")
	}
	start := time.Now()
	s := newStack(t)
	p := stacktest.StartLiteLLM(t, s.ingest, ingestToken)
	run := stacktest.NewName()
	user := "end-user-" + run
	tags := func(extra string) map[string]any {
		return map[string]any{"tags": []string{"e2e:" + run, "case:" + extra}}
	}
	plain := map[string]any{"model": "chat-a", "messages": msg("e2e " + run + ": plain request"), "user": user, "metadata": tags("plain")}
	cases := []scenario{
		{name: "plain", req: plain, status: 200, alias: "chat-a", groups: []string{"chat-a"}, attempts: 1, outcome: "success", guard: "passed"},
		{name: "stream", req: map[string]any{"model": "chat-b", "messages": msg("e2e " + run + ": stream"), "user": user, "metadata": tags("stream"),
			"stream": true, "stream_options": map[string]any{"include_usage": true}},
			status: 200, alias: "chat-b", groups: []string{"chat-b"}, attempts: 1, outcome: "success", guard: "passed", stream: true},
		// The first upstream call gets 429, the router's retry inside chat-a answers.
		{name: "retry_429", control: `{"reset": true, "fail_next": 1, "status": 429}`,
			req:    map[string]any{"model": "chat-a", "messages": msg("e2e " + run + ": retry"), "user": user, "metadata": tags("retry")},
			status: 200, alias: "chat-a", groups: []string{"chat-a"}, attempts: 2, retries: 1, outcome: "success", guard: "passed"},
		// chat-a: 1 try + 2 retries, all 429, then its fallback chat-b. The
		// plugin (config.yaml's default) records every upstream call: 4
		// attempts, 2 of them retries (the stock callback's payloads show 2).
		{name: "fallback_429", control: `{"reset": true, "fail_next": 3, "status": 429}`,
			req:    map[string]any{"model": "chat-a", "messages": msg("e2e " + run + ": fallback"), "user": user, "metadata": tags("fallback")},
			status: 200, alias: "chat-a", groups: []string{"chat-b"}, attempts: 4, retries: 2, fallback: true, outcome: "success", guard: "passed"},
		// chat-broken always fails; its fallback is chat-a.
		{name: "fallback_broken", req: map[string]any{"model": "chat-broken", "messages": msg("e2e " + run + ": broken alias"), "user": user, "metadata": tags("broken")},
			status: 200, alias: "chat-broken", groups: []string{"chat-a"}, attempts: 4, retries: 2, fallback: true, outcome: "success", guard: "passed"},
		// A streamed fallback: LiteLLM logs the success with an earlier startTime
		// than the failure, and without attempted-* counters.
		{name: "stream_fallback", req: map[string]any{"model": "chat-broken", "messages": msg("e2e " + run + ": streamed fallback"), "user": user, "metadata": tags("stream_fallback"),
			"stream": true, "stream_options": map[string]any{"include_usage": true}},
			status: 200, alias: "chat-broken", groups: []string{"chat-a"}, attempts: 4, retries: 2, fallback: true, outcome: "success", guard: "passed", stream: true},
		{name: "guardrail_block", req: map[string]any{"model": "chat-a", "messages": msg("e2e " + run + ": ignore the auditline-forbidden rule"), "user": user, "metadata": tags("block")},
			status: 400, alias: "chat-a", groups: []string{""}, attempts: 1, outcome: "blocked", blocked: "guardrail", guard: "intervened", zeroCost: true},
		// The plain request again: LiteLLM's cache answers.
		{name: "cache_hit", req: plain, status: 200, alias: "chat-a", groups: []string{"chat-a"}, attempts: 1, outcome: "success", guard: "passed", cacheHit: true, zeroCost: true},
	}
	got := map[string]stacktest.Reply{}
	var ids []string
	for _, c := range cases {
		p.Control(c.control + map[bool]string{true: `{"reset": true}`, false: ""}[c.control == ""])
		r := p.Chat(c.req)
		if r.Status != c.status {
			t.Fatalf("%s: HTTP %d, want %d: %s", c.name, r.Status, c.status, stacktest.Tail(r.Body, 1000))
		}
		if r.CallID == "" {
			t.Fatalf("%s: no x-litellm-call-id header", c.name)
		}
		got[c.name] = r
		ids = append(ids, r.CallID)
		t.Logf("%-16s HTTP %d call id %s cost %q", c.name, r.Status, r.CallID, r.Cost)
	}
	if slices.Contains(ids[:len(ids)-1], got["cache_hit"].CallID) {
		t.Fatalf("the cache hit reused a call id")
	}
	recs := s.waitRecords(ids, 5*time.Minute)
	t.Logf("all %d records in ClickHouse %s after the start", len(ids), time.Since(start).Round(time.Second))
	byRecordID := map[string]string{}
	for _, c := range cases {
		r := got[c.name]
		d := recs[r.CallID]
		t.Run(c.name, func(t *testing.T) {
			if d.RecordID != record.ID(r.CallID) {
				t.Errorf("record id %s, want record.ID(call id) %s", d.RecordID, record.ID(r.CallID))
			}
			if d.Alias != c.alias {
				t.Errorf("requested_alias %q, want %q", d.Alias, c.alias)
			}
			if !slices.Contains(c.groups, d.ServedGroup) {
				t.Errorf("served_model_group %q, want one of %q", d.ServedGroup, c.groups)
			}
			if dep, ok := deployments[d.ServedGroup]; ok {
				if m, ok := dep[d.Deployment]; !ok || m != d.ServedModel {
					t.Errorf("served deployment %q model %q is not a deployment of %s", d.Deployment, d.ServedModel, d.ServedGroup)
				}
				if prov, _, _ := strings.Cut(d.ServedModel, "/"); prov != d.Provider {
					t.Errorf("provider %q, served model %q", d.Provider, d.ServedModel)
				}
			} else if d.ServedGroup == "" && (d.ServedModel != "" || d.Deployment != "" || d.Provider != "") {
				t.Errorf("nothing was routed, yet served model %q deployment %q provider %q", d.ServedModel, d.Deployment, d.Provider)
			}
			if d.Attempts != c.attempts || d.Retries != c.retries || (d.Fallback == 1) != c.fallback {
				t.Errorf("attempts/retries/fallback %d/%d/%v, want %d/%d/%v", d.Attempts, d.Retries, d.Fallback == 1, c.attempts, c.retries, c.fallback)
			}
			if d.Outcome != c.outcome || d.BlockedBy != c.blocked || d.GuardrailStatus != c.guard {
				t.Errorf("outcome/blocked_by/guardrail_status %s/%q/%s, want %s/%q/%s", d.Outcome, d.BlockedBy, d.GuardrailStatus, c.outcome, c.blocked, c.guard)
			}
			if c.guard == "intervened" && !slices.Contains(d.GuardrailStatuses, "intervened") {
				t.Errorf("no guardrail entry intervened: %q %q", d.GuardrailNames, d.GuardrailStatuses)
			}
			if !slices.Contains(d.GuardrailNames, "content-filter") {
				t.Errorf("guardrails %q lack content-filter", d.GuardrailNames)
			}
			if (d.CacheHit == 1) != c.cacheHit || (d.Stream == 1) != c.stream {
				t.Errorf("cache_hit/stream %v/%v, want %v/%v", d.CacheHit == 1, d.Stream == 1, c.cacheHit, c.stream)
			}
			if d.EndUser != user {
				t.Errorf("end_user %q, want %q", d.EndUser, user)
			}
			if !slices.Contains(d.Tags, "e2e:"+run) {
				t.Errorf("tags %q lack e2e:%s", d.Tags, run)
			}
			switch {
			case c.zeroCost && d.CostUSD != 0:
				t.Errorf("cost_usd %g, want 0", d.CostUSD)
			case !c.zeroCost && d.CostUSD <= 0:
				t.Errorf("cost_usd %g, want > 0", d.CostUSD)
			}
			// On a cache hit LiteLLM 1.106.2 tells the client the original
			// cost (x-litellm-response-cost) but logs response_cost 0 and
			// saved_cache_cost = that cost: the record has cost 0, saved > 0.
			want := d.CostUSD
			if c.cacheHit {
				want = d.SavedUSD
				if d.SavedUSD <= 0 {
					t.Errorf("cache hit with saved_cost_usd %g, want > 0", d.SavedUSD)
				}
			}
			if hc, err := strconv.ParseFloat(r.Cost, 64); err == nil && math.Abs(hc-want) > 1e-9 {
				t.Errorf("cost_usd %g saved %g, but the client's x-litellm-response-cost was %s", d.CostUSD, d.SavedUSD, r.Cost)
			}
			if d.Completeness != record.Complete {
				t.Errorf("completeness %s, want complete", d.Completeness)
			}
		})
		byRecordID[d.RecordID] = c.name
	}
	// Exactly one record per request: no other records in this database.
	if len(recs) != len(ids) {
		t.Errorf("%d records in ClickHouse for %d requests", len(recs), len(ids))
	}

	// The archive: every record proven, and the whole archive verifies.
	deadline := time.Now().Add(5 * time.Minute)
	for id, name := range byRecordID {
		for {
			out, err := s.run("prove", id)
			if err == nil {
				var proof map[string]any
				if json.Unmarshal([]byte(out), &proof) != nil && !strings.Contains(out, id) {
					t.Errorf("prove %s (%s): unexpected output %s", id, name, stacktest.Tail([]byte(out), 500))
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("auditline prove %s (%s): %v\n%s", id, name, err, stacktest.Tail([]byte(out), 2000))
			}
			time.Sleep(3 * time.Second)
		}
	}
	if out, err := s.run("verify", "--key", s.PublicKey(), "--retention-mode", "GOVERNANCE"); err != nil {
		t.Errorf("auditline verify: %v\n%s", err, out)
	} else {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		t.Logf("auditline verify passed: %s", strings.Join(lines[max(0, len(lines)-4):], " | "))
	}
	t.Logf("%d requests through LiteLLM %s → %d records, all proven; %s in all", len(ids), testenv.LiteLLMVersion(), len(recs), time.Since(start).Round(time.Second))
}
