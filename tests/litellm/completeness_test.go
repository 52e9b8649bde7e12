//go:build litellm

package litellm

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/internal/stacktest"
)

// TestCompleteness runs every phase of the suite on one stack (see the
// package doc). Sizes and durations come from the environment (defaults:
// the minimums):
//
//	AUDITLINE_LITELLM_REQUESTS     requests per callback in the same-load phase [1500]
//	AUDITLINE_LITELLM_CONCURRENCY  requests at once in the same-load phase [32]
//	AUDITLINE_LITELLM_OUTAGE       how long ingest is stopped mid-load [60s]
//	AUDITLINE_LITELLM_FAULT        how long ingest answers 503, then how long it hangs [30s]
func TestCompleteness(t *testing.T) {
	n := envInt(t, "AUDITLINE_LITELLM_REQUESTS", 1500)
	conc := envInt(t, "AUDITLINE_LITELLM_CONCURRENCY", 32)
	outage := envDuration(t, "AUDITLINE_LITELLM_OUTAGE", 60*time.Second)
	fault := envDuration(t, "AUDITLINE_LITELLM_FAULT", 30*time.Second)
	begin := time.Now()

	st := stacktest.New(t, stacktest.Shared(t), "")
	st.Config.Archive.Prefix = "litellm-suite/" + st.Name + "/"
	st.Config.Enrich.OutcomeWait = 20 * time.Second
	st.Migrate()
	stages := st.StartStages(false, "ingest", "enrich", "store", "archive")
	st.WaitReady(st.IngestURL())
	g := newGate(t, st.IngestURL())

	// Plugin settings of every plugin proxy: a short send timeout (the
	// hanging gate), short back-off, the plugin's metrics.
	pluginEnv := func(port int) []string {
		return []string{"AUDITLINE_LITELLM_ENDPOINT=" + g.URL + "/v1/litellm", "AUDITLINE_SEND_TIMEOUT=3", "AUDITLINE_RETRY_MAX=2",
			"AUDITLINE_REFUSED_RETRY_MAX=5", fmt.Sprintf("AUDITLINE_PLUGIN_METRICS_PORT=%d", port)}
	}
	metricsPort := stacktest.FreePort()
	ps := stacktest.StartLiteLLMs(t, st.IngestURL(), stacktest.Token,
		stacktest.LiteLLMOptions{Callbacks: stacktest.StockCallbacks},
		stacktest.LiteLLMOptions{Env: pluginEnv(metricsPort)},
		// two workers import LiteLLM twice over: on a busy box that takes minutes
		stacktest.LiteLLMOptions{Workers: 2, Env: append(pluginEnv(stacktest.FreePort()), "LITELLM_START_TIMEOUT=900")})
	stockProxy := &proxy{name: "stock", t: t, LiteLLM: ps[0]}
	plugin := &proxy{name: "plugin", t: t, LiteLLM: ps[1]}
	workers := &proxy{name: "two-workers", t: t, LiteLLM: ps[2]}
	pluginMetrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	stacktest.Say("stack and three proxies up in %s", time.Since(begin).Round(time.Second))

	// expectComplete: every answered request has a record and the proxy's
	// emitters have no gap.
	expectComplete := func(t *testing.T, p *proxy, ok []string, within time.Duration) map[string]rec {
		t.Helper()
		got := waitRecords(t, st, ok, within)
		if n, desc := gapsOf(t, st, p); n != 0 {
			t.Errorf("%s: %d sequence numbers missing: %s", p.name, n, desc)
		} else {
			t.Logf("%s: %s", p.name, desc)
		}
		return got
	}

	t.Run("same_load", func(t *testing.T) {
		start := time.Now()
		var wg sync.WaitGroup
		var stockR, pluginR []reply
		wg.Add(2)
		go func() { defer wg.Done(); stockR = load(context.Background(), stockProxy, "same-load", n, conc) }()
		go func() { defer wg.Done(); pluginR = load(context.Background(), plugin, "same-load", n, conc) }()
		wg.Wait()
		took := time.Since(start)
		stockOK, stockFailed := tally(stockR)
		pluginOK, pluginFailed := tally(pluginR)
		stacktest.Say("same load: %d requests, %d at once, per callback, in %s: stock %d answered 200 (%d not), plugin %d (%d not)",
			n, conc, took.Round(time.Second), len(stockOK), stockFailed, len(pluginOK), pluginFailed)
		if len(pluginOK) < n*99/100 || len(stockOK) < n*99/100 {
			t.Fatalf("the proxies answered too few requests: stock %d, plugin %d of %d", len(stockOK), len(pluginOK), n)
		}
		expectComplete(t, plugin, pluginOK, 5*time.Minute)
		// The stock callback: wait until its records stop coming (LiteLLM
		// flushes every second here), then count what never came.
		var lost []string
		last, stable := -1, 0
		_ = stacktest.Poll(3*time.Minute, 3*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := records(ctx, st)
			if err != nil {
				return err
			}
			lost = missing(stockOK, got)
			if len(lost) == last {
				stable++
			} else {
				last, stable = len(lost), 0
			}
			if len(lost) == 0 || stable >= 5 {
				return nil
			}
			return fmt.Errorf("still arriving")
		})
		fmt.Printf("STOCK generic_api CALLBACK: %d of %d requests answered 200 have NO record (%.2f %%); the plugin: 0 of %d\n",
			len(lost), len(stockOK), 100*float64(len(lost))/float64(len(stockOK)), len(pluginOK))
		t.Logf("stock callback missing %d of %d: %s", len(lost), len(stockOK), strings.Join(first(lost, 10), " "))
	})
	// The stock proxy is done: give its CPU to the rest.
	stopProxy(t, stockProxy)

	t.Run("ingest_outage", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan []reply)
		go func() { done <- load(ctx, plugin, "outage", 0, 8) }()
		time.Sleep(3 * time.Second)
		stages["ingest"].Kill()
		stacktest.Say("ingest stopped for %s under load", outage)
		time.Sleep(outage)
		stages["ingest"].Start()
		st.WaitReady(st.IngestURL())
		time.Sleep(3 * time.Second)
		g.set(fail503)
		stacktest.Say("ingest back; the gate answers 503 for %s", fault)
		time.Sleep(fault)
		g.set(hang)
		stacktest.Say("the gate hangs for %s (plugin send timeout 3 s)", fault)
		time.Sleep(fault)
		g.set(pass)
		time.Sleep(3 * time.Second)
		cancel()
		rs := <-done
		ok, failed := tally(rs)
		stacktest.Say("outage phase: %d answered 200, %d not; gate saw %d 503s and %d hung POSTs", len(ok), failed, g.hits[fail503].Load(), g.hits[hang].Load())
		if failed > 0 {
			t.Errorf("%d requests failed at the client while ingest was away (the proxy must serve)", failed)
		}
		if g.hits[fail503].Load() == 0 || g.hits[hang].Load() == 0 {
			t.Errorf("the plugin never met the 503 or the hang (hits %d, %d)", g.hits[fail503].Load(), g.hits[hang].Load())
		}
		expectComplete(t, plugin, ok, 5*time.Minute)
	})

	// killMidLoad runs load on p, calls kill once requests are in flight
	// (the fake upstream answers after 2 s), and returns the call ids
	// answered 200 and the count of requests that failed at the client.
	killMidLoad := func(t *testing.T, p *proxy, label string, kill func()) ([]string, int) {
		p.Control(`{"reset": true, "delay_ms": 2000}`)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan []reply)
		go func() { done <- load(ctx, p, label, 0, 16) }()
		time.Sleep(8 * time.Second)
		killAt := time.Now()
		kill()
		time.Sleep(2 * time.Second)
		cancel()
		// The requests cut off are those sent before the kill that got no
		// answer; later ones met a closed port (or the other worker).
		var before []reply
		for _, r := range <-done {
			if r.start.Before(killAt) {
				before = append(before, r)
			}
		}
		ok, failed := tally(before)
		p.Control(`{"reset": true}`)
		return ok, failed
	}
	// expectMissingOutcome waits until the requests the kill cut off appear
	// as missing_outcome records of p's emitters and no sequence number of
	// p is missing. A request answered just before the kill may be among
	// them: LiteLLM runs its success callbacks after the response is sent,
	// so its outcome payload may never have been produced (its marker was
	// spooled: known, not silent).
	expectMissingOutcome := func(t *testing.T, p *proxy, ok []string, failed int, before map[string]rec) {
		t.Helper()
		answered := map[string]bool{}
		for _, id := range ok {
			answered[id] = true
		}
		ems := p.emitters()
		var cut, late []string
		err := stacktest.Poll(3*time.Minute, 3*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := records(ctx, st)
			if err != nil {
				return err
			}
			cut, late = cut[:0], late[:0]
			for id, r := range got {
				if _, old := before[id]; !old && r.Completeness == record.MissingOutcome && ems[r.Emitter] {
					if answered[id] {
						late = append(late, id)
					} else {
						cut = append(cut, id)
					}
				}
			}
			if len(cut)+len(late) == 0 {
				return fmt.Errorf("no missing_outcome record yet")
			}
			// every marker of a cut-off request becomes a record after
			// enrich.outcome_wait: then no number is missing
			if n, desc := gapsOf(t, st, p); n != 0 {
				return fmt.Errorf("%d missing_outcome records; %d sequence numbers missing: %s", len(cut)+len(late), n, desc)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(cut) > failed {
			t.Errorf("%d missing_outcome records of unanswered requests, but only %d requests failed at the client", len(cut), failed)
		}
		_, desc := gapsOf(t, st, p)
		stacktest.Say("%s: %d requests cut off by the kill; missing_outcome records: %d of them (marked started) + %d answered just before the kill (outcome hook had not run); %s",
			p.name, failed, len(cut), len(late), desc)
	}
	// smallSpool bounds the plugin proxy's spool from proxy_sigkill on.
	smallSpool := []string{"AUDITLINE_SPOOL_MAX_BYTES=65536", "AUDITLINE_SPOOL_SEGMENT_BYTES=16384"}
	snapshot := func(t *testing.T) map[string]rec {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		got, err := records(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("proxy_sigkill", func(t *testing.T) {
		before := snapshot(t)
		ok, failed := killMidLoad(t, plugin, "sigkill", plugin.kill)
		stacktest.Say("proxy SIGKILLed mid-load: %d answered 200 before, %d cut off", len(ok), failed)
		// Restarted with the small spool of spool_full (one proxy start
		// fewer: starts take minutes on a busy box). It serves nothing
		// until spool_full: the check below is also that a worker that
		// starts and serves nothing leaves no unaccounted number.
		plugin.restart(smallSpool...)
		waitRecords(t, st, ok, 5*time.Minute)
		expectMissingOutcome(t, plugin, ok, failed, before)
	})

	t.Run("worker_sigkill", func(t *testing.T) {
		w := workers
		waitSlots(t, w, 2)
		before := snapshot(t)
		victim := w.slotPid(0)
		ok, failed := killMidLoad(t, w, "worker-kill", func() { killTree(t, victim) })
		stacktest.Say("one of two workers (pid %d) SIGKILLed mid-load: %d answered 200, %d cut off", victim, len(ok), failed)
		// The surviving worker (or the one uvicorn starts instead) drains
		// the dead worker's slot; more traffic lets the proxy settle.
		more, _ := tally(load(context.Background(), w, "after-worker-kill", 40, 4))
		ok = append(ok, more...)
		waitRecords(t, st, ok, 5*time.Minute)
		expectMissingOutcome(t, w, ok, failed, before)
		if len(w.emitters()) != 2 {
			t.Errorf("two workers: emitters %v, want 2", w.emitters())
		}
		stopProxy(t, w)
	})

	t.Run("spool_full", func(t *testing.T) {
		// A spool of 64 KiB (LiteLLM's payloads are ~14 KB here; the proxy
		// runs with smallSpool since proxy_sigkill) while ingest answers
		// 503: the proxy serves every request, the plugin refuses what does
		// not fit, counts it, says so, and the loss is a gap.
		g.set(fail503)
		ok, failed := tally(load(context.Background(), plugin, "spool-full", 20, 2))
		refused := metric(t, pluginMetrics, "events_refused_total", `reason="spool_full"`)
		if failed > 0 {
			t.Errorf("%d requests failed at the client with the spool full (the proxy must serve)", failed)
		}
		if refused == 0 {
			t.Fatalf("spool full: no refused event counted (auditline_litellm_events_refused_total{reason=\"spool_full\"})")
		}
		if plugin.LogCount("SPOOL FULL") == 0 {
			t.Errorf("spool full: no SPOOL FULL log line")
		}
		g.set(pass)
		// What was spooled arrives (a marker whose outcome was refused
		// becomes a missing_outcome record after enrich.outcome_wait); the
		// refused events are gaps, exactly. Later requests put numbers after
		// the last refused one.
		// (only once the spool has drained: sent while it is still full,
		// they would be refused too, and numbers refused last are visible
		// only once a later number arrives)
		stacktest.WaitFor(t, "the spool drains", 3*time.Minute, func() error {
			if n := metric(t, pluginMetrics, "spool_pending_events"); n > 0 {
				return fmt.Errorf("%v events spooled", n)
			}
			return nil
		})
		tally(load(context.Background(), plugin, "after-spool-full", 2, 1))
		var gaps int64
		var desc string
		err := stacktest.Poll(3*time.Minute, 3*time.Second, func() error {
			gaps, desc = gapsOf(t, st, plugin)
			if metric(t, pluginMetrics, "spool_pending_events") > 0 {
				return fmt.Errorf("events still spooled")
			}
			refused = metric(t, pluginMetrics, "events_refused_total", `reason="spool_full"`)
			if gaps != int64(refused) {
				return fmt.Errorf("%d numbers missing, %v refused: %s", gaps, refused, desc)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("spool full: %v", err)
		}
		stacktest.Say("spool full: %d requests served, %v events refused (metric, log line), %d sequence numbers missing: %s",
			len(ok), refused, gaps, desc)
	})

	// explained: the plugin's sequence numbers lost on purpose (spool full,
	// damage); the sealed archive must show exactly these, and nothing
	// missing for the two-worker proxy.
	var explained int64
	t.Run("spool_corrupted", func(t *testing.T) {
		gaps0, _ := gapsOf(t, st, plugin)
		// Events that stay spooled (ingest answers 503), then the proxy dies
		// and the spool is damaged: random bytes over one waiting outcome,
		// a torn record at the end of the newest segment. Exactly that
		// outcome's number is lost.
		g.set(fail503)
		outcomes := metric(t, pluginMetrics, "events_spooled_total", `kind="outcome"`)
		// (3 requests: the spool is still bounded to 64 KiB)
		ok, _ := tally(load(context.Background(), plugin, "corrupt", 3, 1))
		// LiteLLM spools an outcome after it answered: wait for the three
		stacktest.WaitFor(t, "3 outcomes spooled", 2*time.Minute, func() error {
			if n := metric(t, pluginMetrics, "events_spooled_total", `kind="outcome"`) - outcomes; n < float64(len(ok)) {
				return fmt.Errorf("%v of %d", n, len(ok))
			}
			return nil
		})
		plugin.kill()
		seg := damage(t, plugin)
		g.set(pass)
		plugin.restart()
		if r := newClient(1).chat(context.Background(), plugin, "after the damage"); r.err != nil || r.status != 200 {
			t.Fatalf("the proxy does not serve after a damaged spool: %d %v", r.status, r.err)
		}
		report, err := os.ReadFile(filepath.Join(filepath.Dir(seg), "quarantine", "REPORT"))
		if err != nil {
			t.Fatalf("no quarantine report: %v", err)
		}
		if plugin.LogCount("spool damage quarantined") == 0 {
			t.Errorf("no 'spool damage quarantined' log line")
		}
		stacktest.Say("damaged %s: the proxy serves; quarantine REPORT:\n%s", filepath.Base(seg), strings.TrimSpace(string(report)))
		// What survived arrives; what the damage destroyed is a gap.
		var got map[string]rec
		var gaps int64
		var desc string
		// A surviving marker whose outcome the damage destroyed is a gap
		// until enrich turns it into a missing_outcome record: wait until
		// the count has held for longer than enrich.outcome_wait.
		settle := st.Config.Enrich.OutcomeWait + 10*time.Second
		last, since := int64(-1), time.Now()
		err = stacktest.Poll(4*time.Minute, 3*time.Second, func() error {
			if metric(t, pluginMetrics, "spool_pending_events") > 0 {
				return fmt.Errorf("events still spooled")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if got, err = records(ctx, st); err != nil {
				return err
			}
			if gaps, desc = gapsOf(t, st, plugin); gaps == gaps0 {
				return fmt.Errorf("no new sequence gap")
			}
			if gaps != last {
				last, since = gaps, time.Now()
			}
			if time.Since(since) < settle {
				return fmt.Errorf("%d numbers missing, for %s", gaps, time.Since(since).Round(time.Second))
			}
			return nil
		})
		lost := missing(ok, got)
		explained = gaps
		stacktest.Say("after the damage: %d of %d requests without a record, %d sequence numbers missing (before: %d): %s",
			len(lost), len(ok), gaps, gaps0, desc)
		if err != nil {
			t.Errorf("the damage destroyed spooled events, but: %v", err)
		} else if gaps-gaps0 != 1 {
			t.Errorf("one outcome destroyed, but %d new sequence numbers missing: %s", gaps-gaps0, desc)
		}
		if len(lost) == len(ok) {
			t.Errorf("none of the %d requests spooled before the damage has a record: the good records around the damage were not kept", len(ok))
		}
	})
	t.Run("sealed_archive", func(t *testing.T) {
		// auditline verify reports each emitter's coverage from the sealed
		// records alone: the same numbers as the ledger in ClickHouse, the
		// plugin's losses (spool full, damage) as gaps, a failure with
		// --require-complete.
		cov := coverage(t, st)
		verify := func(extra ...string) (verifyReport, string, error) {
			args := append([]string{"verify", "--config", st.ConfigFile(), "--key", st.PublicKey(), "--retention-mode", "GOVERNANCE", "--json"}, extra...)
			out, err := st.Auditline(args...)
			var rep verifyReport
			if i := strings.Index(out, "{"); i >= 0 {
				_ = json.Unmarshal([]byte(out[i:]), &rep)
			}
			return rep, out, err
		}
		var rep verifyReport
		var out string
		err := stacktest.Poll(3*time.Minute, 5*time.Second, func() error {
			var err error
			rep, out, _ = verify()
			if len(rep.Failures) > 0 {
				return stacktest.StopPolling(fmt.Errorf("verify failed: %v", rep.Failures))
			}
			sealed := map[string]verifyEmitter{}
			for _, e := range rep.Emitters {
				sealed[e.Emitter] = e
			}
			for id, e := range cov {
				se, ok := sealed[id]
				if !ok || se.Last != e.Last || se.Missing != e.Missing() {
					return fmt.Errorf("emitter %s: sealed %+v, ClickHouse %s", id, se, e.Summary())
				}
			}
			return err
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, stacktest.Tail([]byte(out), 3000))
		}
		for _, e := range rep.Emitters {
			stacktest.Say("sealed: emitter %s: %s", e.Emitter, e.Summary)
		}
		pluginGaps := int64(0)
		for id := range plugin.emitters() {
			pluginGaps += cov[id].Missing()
		}
		warned := 0
		for _, w := range rep.Warnings {
			if w.Check == "completeness" {
				warned++
			}
		}
		if pluginGaps != explained {
			t.Errorf("the plugin's emitter has %d sealed missing numbers; the spool_full and spool_corrupted phases explain %d", pluginGaps, explained)
		}
		for id := range workers.emitters() {
			if e, ok := cov[id]; !ok || !e.Complete() {
				t.Errorf("two workers: emitter %s: %s (want complete)", id, e.Summary())
			}
		}
		if pluginGaps > 0 && warned == 0 {
			t.Errorf("the plugin's emitter has %d missing numbers but verify warns of none", pluginGaps)
		}
		_, out2, err := verify("--require-complete")
		if pluginGaps > 0 && (err == nil || !strings.Contains(out2, `"completeness"`)) {
			t.Errorf("verify --require-complete passed with %d sealed gaps (err %v):\n%s", pluginGaps, err, stacktest.Tail([]byte(out2), 2000))
		}

		// `auditline gaps` (the operator's CLI on ClickHouse) says the same,
		// and --check fails on gaps older than --alarm-after.
		out, err = st.Auditline("gaps", "--config", st.ConfigFile(), "--json")
		if err != nil {
			t.Fatalf("auditline gaps: %v\n%s", err, stacktest.Tail([]byte(out), 2000))
		}
		var cli []struct {
			Emitter string `json:"emitter"`
			Last    int64  `json:"last"`
			Missing int64  `json:"missing"`
		}
		// (stderr's log lines come first: the JSON starts at a line "[" or "[]")
		i := strings.Index("\n"+out, "\n[")
		if i < 0 || json.Unmarshal([]byte(out[i:]), &cli) != nil {
			t.Fatalf("auditline gaps --json: cannot read:\n%s", stacktest.Tail([]byte(out), 2000))
		}
		listed := map[string]bool{}
		for _, e := range cli {
			listed[e.Emitter] = true
			if c, ok := cov[e.Emitter]; !ok || c.Last != e.Last || c.Missing() != e.Missing {
				t.Errorf("auditline gaps: emitter %s: last %d, %d missing; the ledger: %s", e.Emitter, e.Last, e.Missing, c.Summary())
			}
		}
		for id := range cov {
			if !listed[id] {
				t.Errorf("auditline gaps does not list emitter %s", id)
			}
		}
		out, err = st.Auditline("gaps", "--config", st.ConfigFile(), "--check", "--alarm-after", "1s")
		if pluginGaps > 0 && (err == nil || !strings.Contains(out, "ALARM")) {
			t.Errorf("auditline gaps --check passed with %d gaps (err %v):\n%s", pluginGaps, err, stacktest.Tail([]byte(out), 2000))
		}
		stacktest.Say("auditline gaps: %d emitters, the same as the ledger; --check fails on the plugin's %d old gaps", len(cli), pluginGaps)
	})
	stacktest.Say("suite done in %s", time.Since(begin).Round(time.Second))
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// stopProxy stops a proxy before the end of the test.
func stopProxy(t *testing.T, p *proxy) {
	t.Helper()
	for _, n := range []string{"litellm", "fakeupstream"} {
		cmd := exec.Command(filepath.Join(stacktest.RepoRoot(), "deploy", "local", "stop.sh"), n)
		cmd.Env = p.Env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("stop.sh %s: %v\n%s", n, err, out)
		}
	}
}

// waitSlots waits until n workers of p hold their spool slots.
func waitSlots(t *testing.T, p *proxy, n int) {
	t.Helper()
	stacktest.WaitFor(t, fmt.Sprintf("%s: %d spool slots", p.name, n), 2*time.Minute, func() error {
		// a request per worker makes each claim its slot (the handler starts at import)
		_, _ = tally(load(context.Background(), p, "warm-up", 4, 2))
		if len(p.emitters()) < n {
			return fmt.Errorf("%d slots", len(p.emitters()))
		}
		return nil
	})
}

// damage overwrites 512 random bytes in the middle of the first outcome still
// waiting in p's slot-0 spool (above its acked cursor: bytes of a record
// already delivered would destroy nothing in question) and appends a torn
// half record to the newest segment. It returns the damaged segment. Record
// framing: deploy/litellm/auditline_litellm/spool.py (a 24-byte header:
// "ALsp", kind, version, reserved, seq uint64, length uint32, crc; all big
// endian).
func damage(t *testing.T, p *proxy) string {
	t.Helper()
	dir := filepath.Join(p.spoolDir(), "slot-0")
	var acked uint64
	if b, err := os.ReadFile(filepath.Join(dir, "acked")); err == nil && len(b) == 12 {
		acked = binary.BigEndian.Uint64(b[:8])
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	sort.Strings(segs)
	if len(segs) == 0 {
		t.Fatal("no spool segment")
	}
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+24 <= len(b) && string(b[off:off+4]) == "ALsp"; {
			seq := binary.BigEndian.Uint64(b[off+8 : off+16])
			n := int(binary.BigEndian.Uint32(b[off+16 : off+20]))
			end := off + 24 + n
			if end > len(b) {
				break
			}
			if seq > acked && b[off+4] == 1 && n >= 256 { // kind 1: an outcome
				junk := make([]byte, min(512, n/2))
				_, _ = rand.Read(junk)
				copy(b[off+24+n/4:], junk)
				if err := os.WriteFile(seg, b, 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.Write([]byte("ALsp\x01\x01\x00\x00torn"))
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
				stacktest.Say("damaged record seq %d (%d bytes) in %s; torn tail on %s", seq, n, filepath.Base(seg), filepath.Base(segs[len(segs)-1]))
				return seg
			}
			off = end
		}
	}
	t.Fatalf("no outcome waiting above the acked cursor %d in %s", acked, dir)
	return ""
}

// verifyReport is the part of `auditline verify --json` the suite reads.
type verifyReport struct {
	Emitters []verifyEmitter `json:"emitters"`
	Failures []struct {
		Check, Key, Detail string
	} `json:"failures"`
	Warnings []struct {
		Check, Key, Detail string
	} `json:"warnings"`
}

type verifyEmitter struct {
	Emitter string `json:"emitter"`
	Last    int64  `json:"last"`
	Missing int64  `json:"missing"`
	Summary string `json:"summary"`
}
