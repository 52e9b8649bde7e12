// Package route checks, on the real LiteLLM proxy and the real pipeline, that
// a request's decision record shows its real route (issue 21): every upstream
// call the fake upstream saw for the request, in order, with its model group
// and its error, and nothing else — with auditline's LiteLLM plugin — and,
// with LiteLLM's stock generic_api callback, that the record says its route
// is only partly known instead of claiming there was no fallback.
package route

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/internal/stacktest"
)

// groups maps the model the fake upstream sees to its model group in
// testdata/proxy.yaml.
var groups = map[string]string{
	"gpt-a-east": "chat-a", "gpt-a-west": "chat-a", "gpt-b-1": "chat-b", "gpt-b-2": "chat-b",
	"fail-429": "chat-broken", "fail-500": "chat-broken",
	"fail-503-chain-a": "chain-a", "fail-429-chain-b": "chain-b", "gpt-chain-c": "chain-c",
}

// scenario is one request of issue 21's list.
type scenario struct {
	name    string
	control string // fakeupstream /control body first
	req     map[string]any
	ok      bool     // the client gets 200 (else an error status)
	targets []string // fallback targets the record must name (plugin)
	timeout bool     // every failed attempt is a timeout
}

func scenarios() []scenario {
	return []scenario{
		{name: "all_fail_503", control: `{"reset": true, "fail_next": 40, "status": 503}`, req: map[string]any{"model": "chat-a"},
			targets: []string{"chat-b"}},
		{name: "timeout_fallback_times_out", control: `{"reset": true, "delay_ms": 4000}`, req: map[string]any{"model": "chat-b", "timeout": 1},
			targets: []string{"chat-a"}, timeout: true},
		{name: "429_then_success", control: `{"reset": true, "fail_next": 1, "status": 429}`, req: map[string]any{"model": "chat-a"},
			ok: true, targets: []string{}},
		{name: "fallback_after_2_retries", control: `{"reset": true, "fail_next": 3, "status": 503}`, req: map[string]any{"model": "chat-a"},
			ok: true, targets: []string{"chat-b"}},
		{name: "stream_first_group_fails", control: `{"reset": true}`,
			req: map[string]any{"model": "chat-broken", "stream": true, "stream_options": map[string]any{"include_usage": true}},
			ok:  true, targets: []string{"chat-a"}},
		{name: "chain_a_b_c", control: `{"reset": true}`, req: map[string]any{"model": "chain-a"},
			ok: true, targets: []string{"chain-b", "chain-c"}},
	}
}

// call is one upstream call as the fake upstream logged it.
type call struct {
	Model     string `json:"model"`
	Status    int    `json:"status"`
	Abandoned bool   `json:"abandoned"`
}

// TestRoute sends issue 21's scenarios through one real LiteLLM proxy that
// runs both callbacks, each posting to its own pipeline (ingest + enrich on
// the real Kafka, own topics): auditline's plugin, whose records must show
// exactly the calls the fake upstream logged for each request, and LiteLLM's
// stock generic_api logger, whose records must say their route is
// final_attempt_only. One proxy for both modes: the same requests, and one
// proxy start (the slowest part on a busy box).
func TestRoute(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the real LiteLLM proxy and two pipelines")
	}
	testenv.LiteLLM(t)
	start := time.Now()
	plugin, stock := pipeline(t), pipeline(t)
	t.Setenv("LITELLM_CONFIG", proxyConfig(t, stock.IngestURL()+"/v1/litellm", "Bearer "+stacktest.Token))
	p := stacktest.StartLiteLLM(t, plugin.IngestURL(), stacktest.Token)
	run := stacktest.NewName()
	ids := map[string]string{} // scenario → call id
	for _, sc := range scenarios() {
		tag := run + "-" + sc.name
		p.Control(sc.control)
		req := map[string]any{"messages": []map[string]string{{"role": "user", "content": "route-tag:" + tag + " " + sc.name}}}
		for k, v := range sc.req {
			req[k] = v
		}
		t0 := time.Now()
		r := p.Chat(req)
		if sc.ok != (r.Status == 200) || r.CallID == "" {
			t.Fatalf("%s: HTTP %d (call id %q) after %s: %s", sc.name, r.Status, r.CallID, time.Since(t0).Round(time.Millisecond), stacktest.Tail(r.Body, 600))
		}
		ids[sc.name] = r.CallID
		t.Logf("%-26s HTTP %d in %5s call id %s", sc.name, r.Status, time.Since(t0).Round(time.Millisecond), r.CallID)
	}
	p.Control(`{"reset": true}`)
	upstream := map[string][]call{}
	for _, sc := range scenarios() {
		upstream[sc.name] = calls(t, p.Fake, run+"-"+sc.name)
	}
	t.Run("plugin", func(t *testing.T) {
		recs := waitRecords(t, plugin, ids, func(sc string, d record.Decision) bool {
			return d.Routing.Completeness == record.RoutingComplete && len(d.Routing.Attempts) == len(upstream[sc])
		}, 3*time.Minute, true)
		for _, sc := range scenarios() {
			t.Run(sc.name, func(t *testing.T) { checkRoute(t, sc, recs[sc.name], upstream[sc.name]) })
		}
	})
	t.Run("stock", func(t *testing.T) {
		// LiteLLM's generic_api logger loses payloads under ordinary use (it
		// clears its queue after each POST: docs/litellm.md, issue 14), and a
		// request that fails entirely has one payload: its record can be
		// missing. The records that exist must not claim a complete route.
		recs := waitRecords(t, stock, ids, func(string, record.Decision) bool { return true }, 90*time.Second, false)
		if len(recs) < len(ids)/2 {
			t.Fatalf("only %d of %d requests have a record from the stock callback", len(recs), len(ids))
		}
		for _, sc := range scenarios() {
			d, ok := recs[sc.name]
			if !ok {
				t.Logf("%s: no record (LiteLLM's stock logger lost the payload of call %s)", sc.name, ids[sc.name])
				continue
			}
			t.Run(sc.name, func(t *testing.T) { checkStock(t, d, upstream[sc.name]) })
		}
	})
	t.Logf("done in %s", time.Since(start).Round(time.Second))
}

// pipeline starts ingest and enrich on the shared servers with their own
// topics.
func pipeline(t *testing.T) *stacktest.Stack {
	t.Helper()
	st := stacktest.New(t, stacktest.Shared(t), "")
	st.Migrate()
	st.StartStages(false, "ingest", "enrich")
	st.WaitReady(st.IngestURL())
	return st
}

// checkRoute: the record's attempts are exactly the upstream's calls.
func checkRoute(t *testing.T, sc scenario, d record.Decision, up []call) {
	if len(up) < 2 {
		t.Fatalf("the fake upstream saw %d calls: the scenario did not happen (%+v)", len(up), up)
	}
	rt := d.Routing
	if rt.Completeness != record.RoutingComplete {
		t.Errorf("routing.completeness %q, want complete", rt.Completeness)
	}
	var got, want []string
	prev := ""
	for i, a := range rt.Attempts {
		model := a.Model[strings.Index(a.Model, "/")+1:]
		st := "200"
		switch {
		case a.Timeout:
			st = "timeout"
		case a.Status == "failure":
			st = a.ErrorCode
		}
		kind := "retry"
		switch {
		case i == 0:
			kind = "first"
		case a.ModelGroup != prev:
			kind = "fallback"
		}
		prev = a.ModelGroup
		got = append(got, fmt.Sprintf("%s %s %s %s", a.Kind, a.ModelGroup, model, st))
		if a.Kind != kind || (kind == "fallback") != (a.FallbackFrom != "") {
			t.Errorf("attempt %d: kind %q from %q, want %q", i+1, a.Kind, a.FallbackFrom, kind)
		}
		if a.Timeout && (a.ErrorClass != "Timeout" || a.ErrorCode != "408") {
			t.Errorf("attempt %d: a timeout with class %q code %q", i+1, a.ErrorClass, a.ErrorCode)
		}
	}
	prev = ""
	for i, c := range up {
		st := fmt.Sprint(c.Status)
		if c.Abandoned {
			st = "timeout"
		}
		kind := "retry"
		switch {
		case i == 0:
			kind = "first"
		case groups[c.Model] != prev:
			kind = "fallback"
		}
		prev = groups[c.Model]
		want = append(want, fmt.Sprintf("%s %s %s %s", kind, groups[c.Model], c.Model, st))
	}
	t.Logf("%d attempts = upstream calls: %s", len(got), strings.Join(got, " | "))
	if !slices.Equal(got, want) {
		t.Errorf("record attempts (%d):\n  %s\nupstream calls (%d):\n  %s", len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
	if int(rt.AttemptCount) != len(up) {
		t.Errorf("attempt_count %d, upstream saw %d", rt.AttemptCount, len(up))
	}
	retries := 0
	for _, a := range rt.Attempts {
		if a.Kind == "retry" {
			retries++
		}
	}
	if int(rt.RetryCount) != retries || rt.FallbackUsed != (len(sc.targets) > 0) || !slices.Equal(rt.FallbackTargets, sc.targets) {
		t.Errorf("retry_count %d fallback_used %v fallback_targets %q; want %d %v %q", rt.RetryCount, rt.FallbackUsed, rt.FallbackTargets, retries, len(sc.targets) > 0, sc.targets)
	}
	if want := reasonsOf(sc, up); !slices.Equal(d.NearMiss.Reasons, want) {
		t.Errorf("near_miss.reasons %q, want %q", d.NearMiss.Reasons, want)
	}
	if sc.timeout {
		for i, a := range rt.Attempts {
			if !a.Timeout {
				t.Errorf("attempt %d is not a timeout: %+v", i+1, a)
			}
		}
	}
	if want := map[bool]string{true: record.OutcomeSuccess, false: record.OutcomeFailure}[sc.ok]; d.Outcome.Status != want {
		t.Errorf("outcome %s, want %s", d.Outcome.Status, want)
	}
	if d.Routing.RequestedAlias != sc.req["model"] {
		t.Errorf("requested_alias %q, want %q", d.Routing.RequestedAlias, sc.req["model"])
	}
}

// reasonsOf derives the near-miss reasons from the upstream's own log: the
// status of the calls before the last fallback hop, retries, all failed.
func reasonsOf(sc scenario, up []call) []string {
	var rs []string
	lastHop, retry := 0, false
	for i := 1; i < len(up); i++ {
		if groups[up[i].Model] != groups[up[i-1].Model] {
			lastHop = i
		} else {
			retry = true
		}
	}
	seen := map[string]bool{}
	for _, c := range up[:lastHop] {
		switch {
		case c.Abandoned:
			seen[fold.ReasonFallbackAfterTimeout] = true
		case c.Status == 429:
			seen[fold.ReasonFallbackAfter429] = true
		case c.Status >= 500:
			seen[fold.ReasonFallbackAfter5xx] = true
		}
	}
	seen[fold.ReasonRetries] = retry
	seen[fold.ReasonAllAttemptsFailed] = !sc.ok
	for r, ok := range seen {
		if ok {
			rs = append(rs, r)
		}
	}
	slices.Sort(rs)
	if rs == nil {
		rs = []string{}
	}
	return rs
}

// checkStock: with LiteLLM's payloads only, the record never claims to know
// the whole route.
func checkStock(t *testing.T, d record.Decision, up []call) {
	rt := d.Routing
	t.Logf("routing %s: %d attempts (upstream saw %d calls), retry_count %d, fallback_used %v", rt.Completeness, len(rt.Attempts), len(up), rt.RetryCount, rt.FallbackUsed)
	if rt.Completeness != record.RoutingFinalAttemptOnly {
		t.Errorf("routing.completeness %q, want final_attempt_only (the upstream saw %d calls, the record has %d attempts)", rt.Completeness, len(up), len(rt.Attempts))
	}
	if len(rt.Attempts) > len(up) {
		t.Errorf("%d attempts, more than the %d calls the upstream saw", len(rt.Attempts), len(up))
	}
	for _, a := range rt.Attempts {
		if strings.HasPrefix(a.EventID, "attempt:") {
			t.Errorf("an attempt event with the stock callback: %+v", a)
		}
	}
}

// proxyConfig writes testdata/proxy.yaml, its stock callback posting to
// stockURL with auth, into a fresh folder beside a link to the plugin
// (LiteLLM loads it from the config's folder).
func proxyConfig(t *testing.T, stockURL, auth string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "proxy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plugin := filepath.Join(stacktest.RepoRoot(), "deploy", "litellm", "auditline_litellm")
	if err := os.Symlink(plugin, filepath.Join(dir, "auditline_litellm")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	y := strings.NewReplacer("endpoint: STOCK_ENDPOINT", "endpoint: "+stockURL, "Authorization: STOCK_AUTH", "Authorization: "+auth).Replace(string(b))
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// calls returns the fake upstream's log of the calls tagged tag.
func calls(t *testing.T, fake, tag string) []call {
	t.Helper()
	resp, err := http.Get(fake + "/control/calls?tag=" + tag)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Calls []call }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("fakeupstream /control/calls: %d %v", resp.StatusCode, err)
	}
	return out.Calls
}

// waitRecords reads the decisions topic until every scenario's latest record
// version satisfies done, or within passes: then the latest versions there
// are are returned (the checks say what is wrong); with all, a request
// without any record fails the test.
func waitRecords(t *testing.T, st *stacktest.Stack, ids map[string]string, done func(string, record.Decision) bool, within time.Duration, all bool) map[string]record.Decision {
	t.Helper()
	topics := raw.Topics{Prefix: st.Config.TopicPrefix}
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		ds, _, err := stacktest.Decisions(ctx, st.Config.Kafka, topics.Decisions())
		cancel()
		latest := map[string]record.Decision{}
		for _, d := range ds {
			if l, ok := latest[d.Request.RequestKey]; !ok || d.Version > l.Version {
				latest[d.Request.RequestKey] = d
			}
		}
		out := map[string]record.Decision{}
		var waiting []string
		for sc, id := range ids {
			d, ok := latest[id]
			if ok {
				out[sc] = d
			}
			if !ok || !done(sc, d) {
				waiting = append(waiting, sc)
			}
		}
		if len(waiting) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			slices.Sort(waiting)
			if all && len(out) < len(ids) {
				t.Fatalf("after %s %d of %d requests have a decision record (read error: %v); waiting for %q", within, len(out), len(ids), err, waiting)
			}
			t.Logf("after %s still waiting for %q", within, waiting)
			return out
		}
		time.Sleep(2 * time.Second)
	}
}
