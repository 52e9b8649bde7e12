package enrich

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
)

func versions(ds []record.Decision) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("v%d:%s:%s", d.Version, d.Completeness, d.Outcome.Status))
	}
	return strings.Join(parts, " ")
}

// TestLateEventsAmend: an event arriving after emission makes version n+1
// marked amended; a duplicate of any event emits nothing.
func TestLateEventsAmend(t *testing.T) {
	r := newRig(t, testConfig(), nil, nil)
	success := r.rec(raw.SourceLiteLLM, "litellm/05_guardrail_pre_call_block.json", 2*time.Second)
	r.feed(success)
	r.idle(time.Minute) // failure grace passes
	if got := versions(r.k.decisions(t)); got != "v1:complete:blocked" {
		t.Fatalf("after the failure and its grace: %s", got)
	}
	review := r.rec(raw.SourceOversight, "events/oversight_review_05.json", 100*time.Millisecond)
	r.feed(review)
	gw := r.rec(raw.SourceGateway, "events/gateway_block.json", 100*time.Millisecond)
	r.feed(gw)
	r.feed(review, success, gw) // duplicates
	r.idle(time.Minute)
	ds := r.k.decisions(t)
	if got := versions(ds); got != "v1:complete:blocked v2:amended:blocked v3:amended:blocked" {
		t.Fatalf("versions: %s", got)
	}
	v2, v3 := ds[1], ds[2]
	if len(v2.Oversight) != 1 || v2.Risk.ReviewStatus != "flag" || v2.Oversight[0].Reviewer != "rita" {
		t.Errorf("v2 oversight = %+v, review status %q", v2.Oversight, v2.Risk.ReviewStatus)
	}
	if v3.Policy.Decision != "block" || len(v3.Evidence.Sources) != 3 || v3.RecordID != ds[0].RecordID {
		t.Errorf("v3: policy %q, %d sources, id %s vs %s", v3.Policy.Decision, len(v3.Evidence.Sources), v3.RecordID, ds[0].RecordID)
	}
	if n := metricValue(r.p.m.events.WithLabelValues("oversight", "duplicate")); n != 1 {
		t.Errorf("duplicate oversight events counted %v, want 1", n)
	}
}

// TestTimeouts: a failure waits failure_grace of stream time for a fallback;
// gateway-only requests wait litellm_wait and are emitted timed_out; a
// success is final at once.
func TestTimeouts(t *testing.T) {
	cfg := testConfig()
	r := newRig(t, cfg, nil, nil)
	fail := r.rec(raw.SourceLiteLLM, "litellm/03a_fallback_attempt1_failure_azure_429.json", 2*time.Second)
	orphan := r.rec(raw.SourceGateway, "events/gateway_orphan.json", 100*time.Millisecond)
	ok := r.rec(raw.SourceLiteLLM, "litellm/01_success_plain_openai.json", 2*time.Second)

	r.feed(ok)
	if n := len(r.k.decisions(t)); n != 0 {
		t.Fatalf("a success emitted before success_delay: %s", versions(r.k.decisions(t)))
	}
	r.idle(cfg.IdleAfter + cfg.SuccessDelay)
	if got := versions(r.k.decisions(t)); got != "v1:complete:success" {
		t.Fatalf("a success is final after success_delay: %s", got)
	}
	r.feed(fail)
	r.idle(cfg.IdleAfter + cfg.FailureGrace - time.Second) // stream time: grace − 1 s after it
	if n := len(r.k.decisions(t)); n != 1 {
		t.Fatalf("failure emitted before its grace: %s", versions(r.k.decisions(t)))
	}
	r.idle(2 * time.Second)
	ds := r.k.decisions(t)
	if got := versions(ds[1:]); got != "v1:complete:failure" {
		t.Fatalf("failure after grace: %s", got)
	}
	// The fallback's success, too late for the grace: an amendment.
	late := r.rec(raw.SourceLiteLLM, "litellm/03b_fallback_attempt2_success_anthropic.json", 2*time.Second)
	r.feed(late)
	if got := versions(r.k.decisions(t)[2:]); got != "v2:amended:success" {
		t.Fatalf("late success: %s", got)
	}

	r.feed(orphan)
	r.idle(cfg.IdleAfter + cfg.LiteLLMWait - 10*time.Second)
	if n := len(r.k.decisions(t)); n != 3 {
		t.Fatalf("gateway-only request emitted before litellm_wait: %s", versions(r.k.decisions(t)))
	}
	r.idle(20 * time.Second)
	ds = r.k.decisions(t)
	if got := versions(ds[3:]); got != "v1:timed_out:blocked" {
		t.Fatalf("gateway-only request: %s", got)
	}
	if d := ds[3]; d.Outcome.BlockedBy != "policy" || d.Identity.Tenant != "globex" {
		t.Errorf("timed-out record: blocked_by %q tenant %q", d.Outcome.BlockedBy, d.Identity.Tenant)
	}
}

// TestMaxPendingEmitsOldestEarly: beyond max_pending the request due first is
// emitted timed_out at once, and counted.
func TestMaxPendingEmitsOldestEarly(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPending = 2
	r := newRig(t, cfg, nil, nil)
	base, err := readFile("events/gateway_orphan.json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 3 {
		b := strings.ReplaceAll(string(base), "gw-orphan-0001", fmt.Sprintf("gw-orphan-%d", i))
		b = strings.ReplaceAll(b, "9f1b3d5f-7a9c-4b1d-9f3a-5c7e9a1b3d5f", fmt.Sprintf("req-%d", i))
		rec, err := r.f.Record(raw.SourceGateway, []byte(b), time.Date(2025, 11, 22, 10, 50, i, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	r.feed(recs...)
	ds := r.k.decisions(t)
	if len(ds) != 1 || ds[0].Request.RequestKey != "req-0" || ds[0].Completeness != record.TimedOut {
		t.Fatalf("decisions: %s (%d)", versions(ds), len(ds))
	}
	if n := metricValue(r.p.m.early.(prometheus.Metric)); n != 1 {
		t.Errorf("early timeouts = %v, want 1", n)
	}
	if n := metricValue(r.p.m.pending.WithLabelValues("0")); n != 2 {
		t.Errorf("pending gauge = %v, want 2", n)
	}
}

// TestRestartRebuildsFromDecisions: a new owner of the partition re-reads the
// decisions topic, so replaying the raw events from an old committed offset
// emits nothing new, and a late event of a record it only knows from the
// decisions topic is amended from the sources read back from the raw topics
// — the same version the first owner would have emitted.
func TestRestartRebuildsFromDecisions(t *testing.T) {
	k := newMemKafka()
	a := newRig(t, testConfig(), k, nil)
	var recs []*kgo.Record
	for _, c := range goldenCases() {
		if c.cfg != nil || c.alerts != nil {
			continue
		}
		for _, in := range c.events {
			rec := a.rec(in.src, in.file, in.delay)
			k.putRaw(rec)
			recs = append(recs, rec)
		}
	}
	a.feed(recs...)
	a.idle(2 * time.Minute)
	before := len(k.decisions(t))
	if before == 0 {
		t.Fatal("nothing emitted")
	}

	// A control run that never restarts, for the expected amendment.
	ctrl := newRig(t, testConfig(), newMemKafka(), nil)
	ctrl.feed(recs...)
	ctrl.idle(2 * time.Minute)

	b := newRig(t, testConfig(), k, nil) // Assigned: rebuild
	if n := b.state().cache.len(); n == 0 {
		t.Fatal("rebuild cached nothing")
	}
	b.feed(recs...) // replay from offset 0
	b.idle(2 * time.Minute)
	if after := len(k.decisions(t)); after != before {
		t.Fatalf("replay after restart emitted %d new decisions", after-before)
	}

	body := strings.Replace(string(mustRead(t, "events/oversight_review_05.json")), "2025-11-22T11:40:00Z", "2025-11-22T10:53:00Z", 1)
	review, err := a.f.Record(raw.SourceOversight, []byte(body), time.Date(2025, 11, 22, 10, 53, 0, 100e6, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	k.putRaw(review)
	k.scanFail = 2 // the broker does not answer twice: the read is retried
	b.feed(review)
	ctrl.feed(review)
	got, want := k.decisions(t), ctrl.k.decisions(t)
	g, w := got[len(got)-1], want[len(want)-1]
	if g.Completeness != record.Amended || canonical(t, g) != canonical(t, w) {
		t.Fatalf("amendment after restart differs from the one without:\n%s", firstDiff(canonical(t, w), canonical(t, g)))
	}
	if n := metricValue(b.p.m.fetches.WithLabelValues("source", "ok")); n == 0 {
		t.Error("no source fetched back for the cold record")
	}
}

// TestDecisionRef: a review posted long after its record left memory names
// the decision's place in the decisions topic; enrich reads it back and
// amends it.
func TestDecisionRef(t *testing.T) {
	k := newMemKafka()
	a := newRig(t, testConfig(), k, nil)
	blk := a.rec(raw.SourceLiteLLM, "litellm/05_guardrail_pre_call_block.json", 2*time.Second)
	k.putRaw(blk)
	a.feed(blk)
	a.idle(time.Minute)
	ds := k.records(testTopics.Decisions())
	if len(ds) != 1 {
		t.Fatalf("%d decisions", len(ds))
	}

	b := newRig(t, testConfig(), k, nil)
	b.state().cache = newCache(b.p.cfg.CacheBytes, b.p.cfg.AmendWindow.Milliseconds()) // evicted
	body := fmt.Sprintf(`{"schema": "auditline.oversight.v1", "event_id": "dash-late-1", "kind": "review", "request_key": "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", "record_version": 1, "decision_ref": {"partition": 0, "offset": %d}, "outcome": "approve", "reviewer": {"id": "lee", "role": "reviewer"}, "occurred_at": "2025-11-29T09:00:00Z"}`, ds[0].Offset)
	rec, err := a.f.Record(raw.SourceOversight, []byte(body), time.Date(2025, 11, 29, 9, 0, 1, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b.feed(rec)
	got := k.decisions(t)
	if v := versions(got); v != "v1:complete:blocked v2:amended:blocked" {
		t.Fatalf("versions: %s", v)
	}
	if got[1].Risk.ReviewStatus != "approve" || len(got[1].Evidence.Sources) != 2 {
		t.Errorf("v2: review %q, %d sources", got[1].Risk.ReviewStatus, len(got[1].Evidence.Sources))
	}
	if n := metricValue(b.p.m.fetches.WithLabelValues("decision_ref", "ok")); n != 1 {
		t.Errorf("decision_ref fetches = %v", n)
	}
}

// TestLateBeyondWindowGoesToDLQ: a review whose record is neither in memory
// nor reachable by a decision_ref goes to the DLQ with its reason (the raw
// event itself stays in its topic).
func TestLateBeyondWindowGoesToDLQ(t *testing.T) {
	r := newRig(t, testConfig(), nil, nil)
	r.feed(r.rec(raw.SourceLiteLLM, "litellm/05_guardrail_pre_call_block.json", 2*time.Second))
	r.idle(time.Minute)   // emitted after the failure grace
	r.idle(3 * time.Hour) // stream time moves on; the record leaves the cache
	if n := r.state().cache.len(); n != 0 {
		t.Fatalf("cache still holds %d records after the amend window", n)
	}
	review := r.rec(raw.SourceOversight, "events/oversight_review_05.json", 100*time.Millisecond) // no decision_ref
	r.feed(review)
	dlq := r.k.records(testTopics.DLQ())
	if len(dlq) != 1 {
		t.Fatalf("%d DLQ records, want 1", len(dlq))
	}
	if d := dlq[0]; raw.Header(d, raw.HeaderReason) != ReasonLate || raw.Header(d, HeaderOrigin) != "t.raw.gateway/0/0" || string(d.Value) != string(review.Value) {
		t.Errorf("DLQ record: reason %q origin %q", raw.Header(d, raw.HeaderReason), raw.Header(d, HeaderOrigin))
	}
	if n := len(r.k.decisions(t)); n != 1 {
		t.Errorf("%d decisions, want 1", n)
	}
	if n := metricValue(r.p.m.dlq.WithLabelValues(ReasonLate)); n != 1 {
		t.Errorf("dlq metric = %v", n)
	}
}

// TestUndecodableGoesToDLQ: a record enrich cannot read never stops the
// partition.
func TestUndecodableGoesToDLQ(t *testing.T) {
	r := newRig(t, testConfig(), nil, nil)
	bad := r.f.Raw(raw.Event{Source: raw.SourceGateway, Key: "k", EventID: "gateway:x", Value: []byte(`{"schema":"auditline.gateway.v1","event_id":"x","request_key":"k","policy":{"decision":"maybe"}}`)}, time.Now())
	notObject := r.f.Raw(raw.Event{Source: raw.SourceLiteLLM, Key: "k2", EventID: "litellm:a:b", Value: []byte(`[1,2]`)}, time.Now())
	r.feed(bad, notObject)
	dlq := r.k.records(testTopics.DLQ())
	if len(dlq) != 2 || raw.Header(dlq[0], raw.HeaderReason) != ReasonUndecodable {
		t.Fatalf("DLQ: %d records", len(dlq))
	}
}

// TestProduceFailureStopsPartition: nothing is Done when Kafka does not
// acknowledge; the error reaches the Reader, which stops without committing.
func TestProduceFailureStopsPartition(t *testing.T) {
	cfg := testConfig()
	cfg.SuccessDelay = 0
	r := newRig(t, cfg, nil, nil)
	r.k.fail = fmt.Errorf("broker down")
	rec := r.rec(raw.SourceLiteLLM, "litellm/01_success_plain_openai.json", time.Second)
	r.clock = raw.ReceivedAt(rec).Add(time.Minute) // the other topic is idle
	err := r.p.Handle(context.Background(), msgsOf(rec))
	if err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("Handle = %v", err)
	}
}

// TestBurstSampling: a sampling_control event switches burst on for requests
// started at or after its occurred_at; such a record whose sample unit lies
// between the baseline and the burst rate is sampled with reason burst.
func TestBurstSampling(t *testing.T) {
	cfg := testConfig()
	r := newRig(t, cfg, nil, nil)
	low, burst := cfg.Sampling.Rates["low"], cfg.Sampling.BurstRates["low"]
	var keys []string
	for i := 0; len(keys) < 2; i++ {
		k := fmt.Sprintf("burst-key-%d", i)
		if u := fold.SampleUnit(record.ID(k)); u >= low && u < burst {
			keys = append(keys, k)
		}
	}
	base, err := readFile("litellm/01_success_plain_openai.json")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(key string, start float64) *kgo.Record {
		b := strings.ReplaceAll(string(base), "b980db26-9512-45cc-b1da-c511a363b83f", key)
		b = strings.ReplaceAll(b, "chatcmpl-CKq3s5x2Q8kTzWcE1aJ7vLm4pRt9Y", "chatcmpl-"+key)
		b = strings.Replace(b, `"startTime": 1763807445.118402`, fmt.Sprintf(`"startTime": %f`, start), 1)
		rec, err := r.f.Record(raw.SourceLiteLLM, []byte(b), time.Unix(int64(start)+5, 0))
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	control := r.rec(raw.SourceOversight, "events/oversight_sampling.json", 100*time.Millisecond) // 11:05, tiers [high]
	on := strings.ReplaceAll(strings.ReplaceAll(string(mustRead(t, "events/oversight_sampling.json")), `"tiers": ["high"]`, `"tiers": []`), "dash-0c9d", "dash-all")
	controlAll, err := r.f.Record(raw.SourceOversight, []byte(on), time.Date(2025, 11, 22, 11, 5, 1, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	r.feed(control, controlAll)
	before := time.Date(2025, 11, 22, 11, 0, 0, 0, time.UTC)
	after := time.Date(2025, 11, 22, 11, 10, 0, 0, time.UTC)
	r.feed(mk(keys[0], float64(before.Unix())), mk(keys[1], float64(after.Unix())))
	r.idle(time.Minute)
	got := latest(r.k.decisions(t))
	if d := got[keys[0]]; d.Risk.Sampled || d.Risk.SampleRate != low {
		t.Errorf("started before the switch: sampled %v rate %v", d.Risk.Sampled, d.Risk.SampleRate)
	}
	if d := got[keys[1]]; !d.Risk.Sampled || d.Risk.SampleReason != "burst" || d.Risk.SampleRate != burst {
		t.Errorf("started after the switch: sampled %v reason %q rate %v", d.Risk.Sampled, d.Risk.SampleReason, d.Risk.SampleRate)
	}
	// A new owner rebuilds the switches from raw.gateway.
	for _, rec := range []*kgo.Record{control, controlAll} {
		r.k.putRaw(rec)
	}
	b := newRig(t, cfg, r.k, nil)
	if n := len(b.state().burst.controls); n != 2 {
		t.Errorf("rebuilt %d burst switches, want 2", n)
	}
}

// TestAutoBurst: a spike of near misses and failures switches burst on for
// hold, then off.
func TestAutoBurst(t *testing.T) {
	b := burstState{auto: fold.AutoBurstConfig{Enabled: true, Window: time.Minute, Share: 0.5, MinRecords: 4, Hold: 2 * time.Minute}}
	var switches []bool
	b.switched = func(on bool) { switches = append(switches, on) }
	ok := &record.Decision{Outcome: record.Outcome{Status: record.OutcomeSuccess}}
	bad := &record.Decision{Outcome: record.Outcome{Status: record.OutcomeBlocked}, NearMiss: record.NearMiss{Flagged: true}}
	t0 := record.Time(1_000_000)
	b.observe(t0, ok)
	b.observe(t0+1, bad)
	b.observe(t0+2, ok)
	if b.on("low", 0) {
		t.Fatal("on below min_records")
	}
	b.observe(t0+3, bad) // 2 of 4 flagged: share 0.5
	if !b.on("low", 0) {
		t.Fatal("not on at the threshold")
	}
	b.advance(t0 + 3 + 119_000)
	b.update(t0 + 3 + 119_000)
	if !b.on("low", 0) {
		t.Fatal("off before hold ended")
	}
	b.update(t0 + 3 + 120_000)
	if b.on("low", 0) || fmt.Sprint(switches) != "[true false]" {
		t.Fatalf("switches %v", switches)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"grace", func(c *Config) { c.FailureGrace = 0 }, "enrich.failure_grace: 0s, want > 0"},
		{"window shorter than wait", func(c *Config) { c.AmendWindow = time.Second }, "enrich.amend_window: 1s is shorter than enrich.litellm_wait"},
		{"cache", func(c *Config) { c.CacheBytes = 10 }, "enrich.cache_bytes"},
		{"policy", func(c *Config) { c.Content.Policy = "all" }, `enrich.content.policy: "all"`},
		{"reason", func(c *Config) { c.NearMiss.Reasons = []string{"bad"} }, `enrich.near_miss.reasons: unknown reason "bad"`},
		{"condition", func(c *Config) { c.Risk.Tiers[0].Any = []string{"colour:red"} }, `enrich.risk.tiers[0].any: unknown condition "colour:red"`},
		{"rate", func(c *Config) { c.Sampling.Rates["low"] = 2 }, "enrich.sampling.rates.low: 2, want in [0, 1]"},
		{"tier", func(c *Config) { c.Sampling.Always = []string{"critical"} }, `enrich.sampling.always: "critical" is no tier`},
		{"auto", func(c *Config) { c.Sampling.Auto.Share = 0 }, "enrich.sampling.auto_burst.share"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMetricsRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	newMetrics(reg)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// TestSuccessWaitsForTheOtherTopic: a success is emitted once stream time
// reaches its receive time, so a gateway event received before it, but read
// after it from the other topic, is joined into version 1 rather than
// amended in.
func TestSuccessWaitsForTheOtherTopic(t *testing.T) {
	r := newRig(t, testConfig(), nil, nil)
	ok := r.rec(raw.SourceLiteLLM, "litellm/08_budget_near_limit_key_user_team_end_user.json", 2*time.Second)
	at := raw.ReceivedAt(ok)
	other, err := r.f.Record(raw.SourceGateway, mustRead(t, "events/gateway_orphan.json"), at.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := r.f.Record(raw.SourceGateway, mustRead(t, "events/gateway_review.json"), at.Add(-10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r.feed(other) // raw.gateway is active, read up to at − 1 s
	r.feed(ok)
	if n := len(r.k.decisions(t)); n != 0 {
		t.Fatalf("success emitted while raw.gateway was read only up to before it (%d)", n)
	}
	r.feed(gw)              // received before the success, read after it
	r.idle(7 * time.Second) // raw.gateway goes idle: stream time moves on
	ds := r.k.decisions(t)
	if len(ds) != 1 || ds[0].Version != 1 || ds[0].Policy.Decision != "review" {
		t.Fatalf("decisions: %s", versions(ds))
	}
}

// TestCacheBound: the memory of emitted records never exceeds cache_bytes,
// even while a rebuild inserts many records before any flush; the oldest go
// first.
func TestCacheBound(t *testing.T) {
	c := newCache(64<<10, time.Hour.Milliseconds())
	for i := range 2000 {
		c.put(&emitted{key: fmt.Sprintf("k%05d", i), ids: []string{fmt.Sprintf("litellm:%d:success", i)}, emittedAt: record.Time(i)})
		if c.bytes > c.maxBytes {
			t.Fatalf("after %d inserts: %d bytes > %d", i+1, c.bytes, c.maxBytes)
		}
	}
	if c.get("k01999") == nil || c.get("k00000") != nil {
		t.Fatal("kept the oldest or dropped the newest")
	}
}

// TestAmendSourcesGone: a late event for a record known only from the
// decisions topic, whose source events are gone from the raw topics, goes to
// the DLQ (permanent) instead of yielding a record that lacks them.
func TestAmendSourcesGone(t *testing.T) {
	k := newMemKafka()
	a := newRig(t, testConfig(), k, nil)
	a.feed(a.rec(raw.SourceLiteLLM, "litellm/05_guardrail_pre_call_block.json", 2*time.Second)) // never stored in the raw log
	a.idle(time.Minute)
	b := newRig(t, testConfig(), k, nil) // knows the record from the decisions topic only
	review := a.rec(raw.SourceOversight, "events/oversight_review_05.json", 100*time.Millisecond)
	b.feed(review)
	dlq := k.records(testTopics.DLQ())
	if len(dlq) != 1 || raw.Header(dlq[0], raw.HeaderReason) != ReasonSourcesUnavail {
		t.Fatalf("DLQ: %d records", len(dlq))
	}
	if n := len(k.decisions(t)); n != 1 {
		t.Fatalf("%d decisions, want only the first", n)
	}
}

// TestMissingOutcome: auditline's LiteLLM plugin spools a request_started
// marker before the upstream call. With its outcome, the record is complete
// and carries the emitter and both sequence numbers; without one, the marker
// alone becomes a missing_outcome record after outcome_wait (never silence),
// and a late outcome amends it.
func TestMissingOutcome(t *testing.T) {
	cfg := testConfig()
	r := newRig(t, cfg, nil, nil)
	marker := r.rec(raw.SourceRequestStarted, "events/plugin_request_started.json", 50*time.Millisecond)
	outcome := r.rec(raw.SourceLiteLLM, "events/plugin_success.json", 300*time.Millisecond)
	r.feed(marker, outcome)
	r.idle(cfg.IdleAfter + cfg.SuccessDelay)
	ds := r.k.decisions(t)
	if got := versions(ds); got != "v1:complete:success" {
		t.Fatalf("marker + success: %s", got)
	}
	d := ds[0]
	if d.Emitter.ID != "vm-w1-aa753859623e" || d.Emitter.ConfigSeq != 1 || !strings.HasPrefix(d.Emitter.ConfigHash, "sha256:") {
		t.Errorf("emitter block %+v", d.Emitter)
	}
	var seqs []int64
	for _, s := range d.Evidence.Sources {
		if s.Emitter != d.Emitter.ID {
			t.Errorf("source %s: emitter %q", s.EventID, s.Emitter)
		}
		seqs = append(seqs, s.Seq)
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []int64{2, 3}) {
		t.Errorf("sequence numbers in the evidence: %v, want [2 3]", seqs)
	}

	orphan := r.rec(raw.SourceRequestStarted, "events/plugin_request_started_orphan.json", 50*time.Millisecond)
	r.feed(orphan)
	r.idle(cfg.IdleAfter + cfg.OutcomeWait - 10*time.Second)
	if n := len(r.k.decisions(t)); n != 1 {
		t.Fatalf("a marker alone emitted before outcome_wait: %s", versions(r.k.decisions(t)))
	}
	r.idle(20 * time.Second)
	ds = r.k.decisions(t)
	if got := versions(ds[1:]); got != "v1:missing_outcome:pending" {
		t.Fatalf("marker without outcome: %s", got)
	}
	m := ds[1]
	if m.Request.CallID != "00000000-dead-4bee-8000-000000000001" || m.Routing.RequestedAlias != "chat-b" || !m.Request.Stream ||
		m.Identity.KeyHash != "litellm_proxy_master_key" || m.Request.StartTime == 0 || m.Evidence.Sources[0].Seq != 40 {
		t.Errorf("missing_outcome record: %s", mustJSON(m))
	}
}

// TestApprovalFlowInEnrich: a request held for approval waits for its LiteLLM
// events like a gateway-only request; the approval and the execution arrive
// as amendments or joins, and the record says, on ingest's receive times,
// whether it executed after the approval. The same event id with other
// bytes goes to the DLQ, never silently dropped as a duplicate.
func TestApprovalFlowInEnrich(t *testing.T) {
	r := newRig(t, testConfig(), nil, nil)
	r.f.Sender = "gateway-token"
	req := r.rec(raw.SourceApproval, "events/approval_requested.json", time.Second)
	ok := r.rec(raw.SourceApproval, "events/approval_approved.json", time.Second)
	r.feed(req, ok)
	r.idle(2 * time.Minute) // litellm_wait passes: v1, still not executed
	ds := r.k.decisions(t)
	// The gateway asked for two approvers (required_approvals 2).
	if len(ds) != 1 || ds[0].Approval.Status != record.ApprovalPending || ds[0].Completeness != record.TimedOut || ds[0].Approval.Needed != 2 {
		t.Fatalf("one approval of two: %s %+v", versions(ds), ds[0].Approval)
	}
	second, err := r.f.Record(raw.SourceApproval, []byte(strings.NewReplacer(`"id": "lee"`, `"id": "rita"`, "gw-appr-ok-0001", "gw-appr-ok-0002").Replace(
		string(mustRead(t, "events/approval_approved.json")))), r.clock.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r.feed(second)
	r.idle(time.Minute)
	ds = r.k.decisions(t)
	if last := ds[len(ds)-1]; last.Approval.Status != record.ApprovalApproved {
		t.Fatalf("two approvals, not run: %s %+v", versions(ds), last.Approval)
	}
	// The request runs now: LiteLLM's success (same request key) is
	// received after the approval.
	run, err := r.f.Record(raw.SourceLiteLLM, []byte(strings.Replace(string(mustRead(t, "litellm/01_success_plain_openai.json")),
		"b980db26-9512-45cc-b1da-c511a363b83f", "2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24", -1)), r.clock.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r.feed(run)
	r.idle(time.Minute)
	ds = r.k.decisions(t)
	last := ds[len(ds)-1]
	if last.Approval.Status != record.ApprovalExecutedAfter || !slices.Equal(last.Approval.Approvers, []string{"lee", "rita"}) ||
		last.Approval.Decisions[0].Sender != "gateway-token" || last.Approval.RequiredBy != "gateway" || last.Completeness != record.Amended {
		t.Fatalf("after execution: %s %+v", versions(ds), last.Approval)
	}
	// A changed copy under the approval's event id.
	forged, err := r.f.Record(raw.SourceApproval, []byte(strings.Replace(string(mustRead(t, "events/approval_approved.json")), `"id": "lee"`, `"id": "mallory"`, 1)), r.clock.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r.feed(forged)
	r.idle(time.Minute)
	dlq := r.k.records(testTopics.DLQ())
	if len(dlq) != 1 || raw.Header(dlq[0], raw.HeaderReason) != ReasonConflict || string(dlq[0].Value) != string(forged.Value) {
		t.Fatalf("DLQ: %d records", len(dlq))
	}
	if n := len(r.k.decisions(t)); n != len(ds) {
		t.Errorf("the conflicting copy made a new version (%d decisions, had %d)", n, len(ds))
	}
}

// TestAccessEventIsARecord: an access event is emitted at once as a record
// of its own, complete, never waiting for LiteLLM.
func TestAccessEventIsARecord(t *testing.T) {
	r := newRig(t, testConfig(), nil, nil)
	r.f.Sender = "dashboard"
	r.feed(r.rec(raw.SourceAccess, "events/access_record_view.json", time.Second))
	r.idle(10 * time.Second) // raw.litellm is idle: stream time moves on
	ds := r.k.decisions(t)
	if len(ds) != 1 {
		t.Fatalf("%d decisions", len(ds))
	}
	d := ds[0]
	if d.Completeness != record.Complete || d.Access.Action != "record_view" || d.Access.Actor != "lee" || d.Access.Sender != "dashboard" ||
		d.Identity.Tenant != "acme-finance" || d.Request.RequestKey != "access:acc-0001" {
		t.Errorf("access record: %s %+v tenant %q key %q", d.Completeness, d.Access, d.Identity.Tenant, d.Request.RequestKey)
	}
}

// TestRouteFromAttempts (issue 21): LiteLLM logs a request's first failure
// while the router goes on; each later attempt event of the plugin gives the
// request the failure grace again, so version 1 already holds the whole
// route (not an amendment per late attempt), complete and in order.
func TestRouteFromAttempts(t *testing.T) {
	cfg := testConfig()
	r := newRig(t, cfg, nil, nil)
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	mk := func(src raw.Source, body string, at time.Time) *kgo.Record {
		ev, err := r.f.Event(src, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return r.f.Raw(ev, at)
	}
	attempt := func(n int, kind, group, from, status string, at time.Time) *kgo.Record {
		ts := at.Add(-50 * time.Millisecond).Format(time.RFC3339Nano)
		return mk(raw.SourceAttempt, fmt.Sprintf(`{"schema": "auditline.attempt.v1", "event_id": "em/%d", "emitter": "em", "seq": %d, "request_key": "route-k1",
			"attempt": %d, "kind": %q, "model_group": %q, "fallback_from": %q, "deployment_id": "d%d", "model": "openai/m%d", "status": %q,
			"error_class": "ServiceUnavailableError", "error_code": "503", "start_time": %q, "end_time": %q}`,
			10+n, 10+n, n, kind, group, from, n, n, status, ts, ts), at)
	}
	failure := mk(raw.SourceLiteLLM, fmt.Sprintf(`{"id": "p1", "litellm_call_id": "route-k1", "status": "failure", "model_group": "chat-a",
		"startTime": %d, "endTime": %d, "error_information": {"error_code": "503", "error_class": "ServiceUnavailableError"},
		"auditline": {"emitter": "em", "seq": 12, "config_hash": "", "config_seq": 0, "attempts": 1}}`, t0.Unix(), t0.Unix()), t0.Add(200*time.Millisecond))
	r.feed(
		attempt(1, "first", "chat-a", "", "failure", t0.Add(100*time.Millisecond)),
		failure,
		attempt(2, "retry", "chat-a", "", "failure", t0.Add(9*time.Second)),
	)
	// Another request's event moves stream time past the first failure's
	// grace (but not past the second attempt's).
	other := mk(raw.SourceRequestStarted, `{"schema": "auditline.request_started.v1", "event_id": "em/30", "emitter": "em", "seq": 30,
		"request_key": "route-other", "occurred_at": "2026-12-02T12:00:14Z", "config_hash": ""}`, t0.Add(14*time.Second))
	r.feed(other)
	if n := len(r.k.decisions(t)); n != 0 {
		t.Fatalf("emitted before the last attempt's grace: %s", versions(r.k.decisions(t)))
	}
	r.feed(attempt(3, "fallback", "chat-b", "chat-a", "failure", t0.Add(17*time.Second)))
	r.idle(cfg.IdleAfter + cfg.FailureGrace + time.Second)
	ds := r.k.decisions(t)
	if got := versions(ds); got != "v1:complete:failure" {
		t.Fatalf("versions %s, want one complete failure", got)
	}
	rt := ds[0].Routing
	var got []string
	for _, a := range rt.Attempts {
		got = append(got, a.Kind+" "+a.ModelGroup+" "+a.DeploymentID)
	}
	if rt.Completeness != record.RoutingComplete || !slices.Equal(got, []string{"first chat-a d1", "retry chat-a d2", "fallback chat-b d3"}) ||
		!slices.Equal(rt.FallbackTargets, []string{"chat-b"}) || rt.RetryCount != 1 {
		t.Fatalf("routing %s %q targets %q retries %d", rt.Completeness, got, rt.FallbackTargets, rt.RetryCount)
	}
}
