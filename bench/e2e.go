package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/loadgen"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/store"
)

const benchToken = "bench-litellm-token"

// proc is one running auditline stage process.
type proc struct {
	stage string
	p     *stacktest.Proc
	hwmKB int64
	cpu   float64 // user+system CPU seconds
}

// pipeline is a set of auditline processes sharing one configuration with a
// unique topic prefix, database, consumer groups and archive prefix (an
// internal/stacktest Stack, run as a program rather than a test).
type pipeline struct {
	o          options
	name       string
	db         string
	partitions int
	url        string
	procs      []*proc
	prog       *stacktest.Program
	st         *stacktest.Stack
	bk         *bucket.Bucket
	lay        layout.Layout
	ch         driver.Conn
	// config is the configuration file, written once: every process reads
	// it, and rewriting it for each start (os.WriteFile truncates first)
	// let a process starting on a busy machine read it half-written.
	config string
}

func newPipeline(o options, name string, partitions int) (*pipeline, error) {
	p := &pipeline{o: o, name: name, db: name, partitions: partitions, prog: &stacktest.Program{}}
	err := p.prog.Try(func(t stacktest.TB) {
		p.st = stacktest.New(t, o.servers, name)
		c := &p.st.Config
		c.Kafka.Partitions = partitions
		c.Log.Level = "warn"
		c.Ingest.Auth.Tokens = []auth.Token{{Name: "bench", SHA256: auth.Hash(benchToken),
			Scopes: []auth.Scope{auth.ScopeLiteLLM, auth.ScopeAlerts, auth.ScopeAudit, auth.ScopeGateway}}}
		c.Enrich.TickInterval = 200 * time.Millisecond
		// The store at its shipped linger, not stacktest's 200 ms for tests:
		// linger is most of what the store adds to webhook → queryable, and
		// 200 ms made about twice the default's INSERTs into
		// decision_records on the loaded box (issue 17, seventh pass).
		// AUDITLINE_STORE_LINGER still overrides it for a trial.
		c.Store.Linger = store.DefaultLinger
		c.Archive.Prefix = "bench/" + name + "/"
		c.Archive.Checkpoint.Interval = 10 * time.Second
		p.st.Migrate()
		p.ch, p.bk = p.st.ClickHouse(), p.st.Bucket()
		p.url, p.lay = p.st.IngestURL(), layout.New(c.Archive.Prefix)
		p.config = p.st.ConfigFile()
	})
	if err != nil {
		_ = p.prog.Close()
		return nil, err
	}
	return p, nil
}

// start starts one process of stage; instance numbers its log.
func (p *pipeline) start(stage string, instance int) error {
	return p.prog.Try(func(t stacktest.TB) {
		pr := p.st.AuditlineProc(fmt.Sprintf("%s-%d", stage, instance), stage, "--config", p.config)
		pr.StopTimeout = 30 * time.Second
		pr.Start()
		p.procs = append(p.procs, &proc{stage: stage, p: pr})
	})
}

// alive reports the first process that has exited, with its log's tail.
func (p *pipeline) alive() error {
	for _, pr := range p.procs {
		if died, err := pr.p.Died(); died {
			return fmt.Errorf("auditline %s exited: %v\n%s", pr.stage, err, stacktest.Tail(pr.p.Log(), 2000))
		}
	}
	return nil
}

func (p *pipeline) waitReady() error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.alive(); err != nil {
			return err
		}
		if stacktest.Ready(nil, p.url) == nil {
			time.Sleep(2 * time.Second) // let the consumers join their groups
			return p.alive()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("ingest not ready after 60s")
}

var hwmRE = regexp.MustCompile(`(?m)^VmHWM:\s*(\d+) kB`)

// readHWM records each live process's peak resident set (VmHWM) and the CPU
// time it used so far.
func (p *pipeline) readHWM() {
	for _, pr := range p.procs {
		if v, ok := procCPU(pr.p.Pid()); ok {
			pr.cpu = v
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pr.p.Pid()))
		if err != nil {
			continue
		}
		if s := hwmRE.FindSubmatch(b); s != nil {
			pr.hwmKB, _ = strconv.ParseInt(string(s[1]), 10, 64)
		}
	}
}

// stop stops every process (SIGTERM, then SIGKILL) and drops what the run
// made, except the archive's objects (Object Lock keeps them a minute).
func (p *pipeline) stop() {
	if err := p.prog.Close(); err != nil { // stops the processes, drops the database
		logf("stopping %s: %v", p.name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = stacktest.DeleteTopics(ctx, p.st.Config.Kafka, func(t string) bool { return strings.HasPrefix(t, p.name+".") })
}

// rss returns the largest peak RSS (MB) of each stage's processes.
func (p *pipeline) rss() map[string]float64 {
	out := map[string]float64{}
	for _, pr := range p.procs {
		out[pr.stage] = max(out[pr.stage], float64(pr.hwmKB)/1024)
	}
	return out
}

// cpuNow reads the CPU seconds each stage's processes have used so far.
func (p *pipeline) cpuNow() map[string]float64 {
	out := map[string]float64{}
	for _, pr := range p.procs {
		if v, ok := procCPU(pr.p.Pid()); ok {
			out[pr.stage] += v
		}
	}
	return out
}

// cpu returns the CPU seconds of each stage, summed over its processes.
func (p *pipeline) cpu() map[string]float64 {
	out := map[string]float64{}
	for _, pr := range p.procs {
		out[pr.stage] += pr.cpu
	}
	return out
}

// load sends loadgen traffic to the pipeline's ingest.
func (p *pipeline) load(ctx context.Context, rate float64, d time.Duration, seed int64, accepted func([]string)) (loadgen.Summary, error) {
	return loadgen.Run(ctx, loadgen.Options{URL: p.url, Token: benchToken, Rate: rate, Duration: d, Batch: 512, Concurrency: 4,
		Alerts: true, Generator: loadgen.Config{Seed: seed}, Accepted: accepted})
}

// ingestLatency is ingest alone (one process, default 4 partitions) driven by
// loadgen: its maximum rate, then response times at 50 % and 90 % of it.
type ingestLatency struct {
	Max      loadgen.Summary
	At       []loadgen.Summary // at 50 %, 90 %
	Targets  []float64
	RSSMB    float64
	Err      string
	Duration time.Duration
}

func runIngestLatency(ctx context.Context, o options) (res ingestLatency) {
	res.Duration = o.duration
	name := "benchingest" + strconv.FormatInt(time.Now().Unix()%1e6, 10)
	logf("ingest latency: %s", name)
	p, err := newPipeline(o, name, 4)
	if err != nil {
		res.Err = err.Error()
		return
	}
	defer p.stop()
	if err := p.start("ingest", 0); err != nil {
		res.Err = err.Error()
		return
	}
	if err := p.waitReady(); err != nil {
		res.Err = err.Error()
		return
	}
	if _, err := p.load(ctx, 0, 2*time.Second, 100, nil); err != nil { // warm up
		res.Err = err.Error()
		return
	}
	if res.Max, err = p.load(ctx, 0, o.duration, 1, nil); err != nil {
		res.Err = err.Error()
		return
	}
	logf("ingest max: %.0f payloads/s, p50 %s p99 %s", res.Max.PayloadsPerSec(), res.Max.P50, res.Max.P99)
	for i, f := range []float64{0.5, 0.9} {
		rate := f * res.Max.PayloadsPerSec()
		s, err := p.load(ctx, rate, o.duration, int64(2+i), nil)
		if err != nil {
			res.Err = err.Error()
			return
		}
		logf("ingest at %.0f%% (%.0f/s): %.0f payloads/s, p50 %s p99 %s", 100*f, rate, s.PayloadsPerSec(), s.P50, s.P99)
		res.At = append(res.At, s)
		res.Targets = append(res.Targets, rate)
	}
	p.readHWM()
	res.RSSMB = p.rss()["ingest"]
	return res
}

// e2eRun is the whole pipeline with n partitions and n processes of each
// consumer stage.
type e2eRun struct {
	Partitions int
	// Throughput phase: loadgen as fast as ingest answers.
	Fill        loadgen.Summary
	Drain       time.Duration // from the first send until every record is queryable
	Sustained   float64       // the headline: Slope (else Span1090, else Overall)
	Span1090    float64       // payloads/s while 10 % → 90 % of the records became queryable
	Overall     float64       // payloads/s: accepted / Drain (includes start-up and the failure_grace tail)
	Slope       float64       // payloads/s becoming queryable over the fill's second half
	Complete    bool
	QueryableAt uint64 // records queryable when the phase ended
	// Latency phase: a fixed rate.
	Rate      float64
	Paced     loadgen.Summary
	Queryable []time.Duration // sampled webhook → queryable latencies
	QuerySucc []time.Duration // … of records with outcome success
	Missing   int             // sampled records never seen in ClickHouse
	Sealed    []time.Duration // the same samples: webhook → sealed (manifest signed)
	Unsealed  int
	RSS       map[string]float64
	CPU       map[string]float64 // CPU seconds per stage over both phases

	// QuerySucc split at the decision's Kafka record (tracker.breakdown):
	// received → produced by enrich, produced → queryable.
	SuccEnrich, SuccStore []time.Duration

	// ServerCPU is the CPU seconds of each local server (kafka, clickhouse,
	// minio) and of the harness itself ("harness": loadgen and the polls)
	// over the same span. The servers are shared: on a busy machine other
	// users' work is counted too.
	ServerCPU map[string]float64
	// FillCPU is the CPU seconds of each stage (and, as "kafka",
	// "clickhouse", "minio", "harness", of the servers and the harness)
	// from the fill's first send until its last record was queryable: the
	// pipeline working flat out, without the idle waits of the rest of the
	// run, over Fill.Accepted payloads.
	FillCPU  map[string]float64
	Payloads int           // accepted payloads over both phases
	Wall     time.Duration // from the first process start to the CPU reading
	Err      string
}

const targetRate = 10000

func runE2E(ctx context.Context, o options, n int) (res e2eRun) {
	res.Partitions = n
	name := fmt.Sprintf("benchp%d%d", n, time.Now().Unix()%1e6)
	logf("end to end, %d partition(s): %s", n, name)
	p, err := newPipeline(o, name, n)
	if err != nil {
		res.Err = err.Error()
		return
	}
	defer p.stop()
	fail := func(err error) e2eRun {
		res.Err = err.Error()
		logf("end to end %d: %v", n, err)
		return res
	}
	t0 := time.Now()
	meter := newCPUMeter()
	if err := p.start("ingest", 0); err != nil {
		return fail(err)
	}
	if err := p.waitReady(); err != nil { // ingest creates the topics
		return fail(err)
	}
	startConsumers := func() error {
		for i := range n {
			for _, st := range []string{"enrich", "store", "archive"} {
				if err := p.start(st, i); err != nil {
					return err
				}
			}
		}
		return p.waitReady()
	}
	if !o.backlog {
		if err := startConsumers(); err != nil {
			return fail(err)
		}
		time.Sleep(3 * time.Second) // group joins and partition assignment
	}

	// Throughput: send as fast as ingest answers, then time until every
	// record is queryable.
	start := time.Now()
	// Count queryable records during the fill: the slope over its second
	// half is the pipeline's steady rate (constant delays such as
	// success_delay and failure_grace shift the curve but not its slope).
	type point struct {
		at time.Time
		n  uint64
	}
	var curve []point
	countCtx, stopCount := context.WithCancel(ctx)
	countDone := make(chan struct{})
	go func() {
		defer close(countDone)
		for countCtx.Err() == nil {
			var got uint64
			if p.ch.QueryRow(countCtx, "SELECT uniqExact(request_key) FROM `"+p.db+"`."+store.TableDecisions).Scan(&got) == nil {
				curve = append(curve, point{time.Now(), got})
			}
			select {
			case <-countCtx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	fillStage, fillMeter := p.cpuNow(), newCPUMeter()
	var perfWait []func()
	if o.perfDir != "" {
		for i, pr := range p.procs {
			f := filepath.Join(o.perfDir, fmt.Sprintf("%s-p%d-%d.data", pr.stage, n, i))
			perfWait = append(perfWait, perfRecord(f, pr.p.Pid(), o.duration))
		}
	}
	res.Fill, err = p.load(ctx, 0, o.duration, 1, nil)
	for _, w := range perfWait {
		w()
	}
	if o.backlog && err == nil {
		// The whole fill waits in Kafka: the consumers start now and catch
		// up (their CPU is counted from their start).
		logf("  backlog of %d payloads; starting enrich, store and archive", res.Fill.Accepted)
		if err = startConsumers(); err != nil {
			stopCount()
			<-countDone
			return fail(err)
		}
	}
	stopCount()
	<-countDone
	if err != nil {
		return fail(err)
	}
	if len(curve) > 2 && res.Fill.Records > 0 {
		mid := start.Add(o.duration / 2)
		a := curve[0]
		for _, c := range curve {
			if !c.at.Before(mid) {
				a = c
				break
			}
		}
		b := curve[len(curve)-1]
		if b.at.After(a.at) {
			perRecord := float64(res.Fill.Accepted) / float64(res.Fill.Records)
			res.Slope = float64(b.n-a.n) * perRecord / b.at.Sub(a.at).Seconds()
		}
	}
	want := uint64(res.Fill.Records)
	var last uint64
	moved := time.Now()
	for {
		var got uint64
		if err := p.ch.QueryRow(ctx, "SELECT uniqExact(request_key) FROM `"+p.db+"`."+store.TableDecisions).Scan(&got); err != nil {
			return fail(err)
		}
		curve = append(curve, point{time.Now(), got})
		if got >= want {
			res.Complete = true
			res.QueryableAt = got
			break
		}
		if got != last {
			last, moved = got, time.Now()
		}
		if time.Since(moved) > 30*time.Second {
			res.QueryableAt = got
			break
		}
		if err := p.alive(); err != nil {
			return fail(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.Drain = time.Since(start)
	res.FillCPU = fillMeter.used()
	for k, v := range p.cpuNow() {
		res.FillCPU[k] = v - fillStage[k]
	}
	if !res.Complete {
		res.Drain -= 30 * time.Second
	}
	res.Overall = float64(res.Fill.Accepted) / res.Drain.Seconds()
	var t10, t90 time.Time
	for _, c := range curve {
		if t10.IsZero() && c.n*10 >= want {
			t10 = c.at
		}
		if t90.IsZero() && c.n*10 >= want*9 {
			t90 = c.at
		}
	}
	if !t10.IsZero() && t90.After(t10) {
		res.Sustained = 0.8 * float64(res.Fill.Accepted) / t90.Sub(t10).Seconds()
	}
	logf("  throughput: ingest answered %.0f payloads/s; %d/%d records queryable after %s (%.0f payloads/s overall); 10 %%→90 %% at %.0f payloads/s; during the fill's second half %.0f payloads/s",
		res.Fill.PayloadsPerSec(), res.QueryableAt, want, res.Drain.Round(time.Millisecond), res.Overall, res.Sustained, res.Slope)
	time.Sleep(3 * time.Second) // let the archive seal the tail

	// Latency at a fixed rate: the target, or 80 % of what the pipeline
	// sustained when that is less.
	res.Span1090 = res.Sustained
	if res.Slope > 0 {
		res.Sustained = res.Slope
	}
	if res.Sustained == 0 {
		res.Sustained = res.Overall
	}
	res.Rate = min(targetRate, 0.8*res.Sustained)
	tr := newTracker(p, 50)
	latStart, latStage, latMeter := time.Now(), p.cpuNow(), newCPUMeter()
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() { tr.poll(pollCtx); close(pollDone) }()
	res.Paced, err = p.load(ctx, res.Rate, o.duration, 2, tr.accepted)
	if err != nil {
		stopPoll()
		return fail(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for tr.pendingN() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	stopPoll()
	<-pollDone
	p.latencyPhaseCost(ctx, latStart, latStage, latMeter, res.Paced.Accepted, o.duration)
	res.Queryable, res.QuerySucc, res.Missing = tr.latencies()
	logf("  at %.0f/s: accepted %.0f payloads/s, %d samples, queryable p50 %s p99 %s (successes p50 %s p99 %s), %d missing",
		res.Rate, res.Paced.PayloadsPerSec(), len(res.Queryable), pct(res.Queryable, 0.5), pct(res.Queryable, 0.99),
		pct(res.QuerySucc, 0.5), pct(res.QuerySucc, 0.99), res.Missing)
	if en, sto, qu, err := tr.breakdown(ctx); err != nil {
		logf("  breakdown: %v", err)
	} else {
		res.SuccEnrich, res.SuccStore = en, sto
		logf("  successes by stage (%d): received → produced by enrich p50 %s p99 %s; produced → queryable (query sent) p50 %s p99 %s; the query itself (not counted) p50 %s p99 %s",
			len(en), pct(en, 0.5), pct(en, 0.99), pct(sto, 0.5), pct(sto, 0.99), pct(qu, 0.5), pct(qu, 0.99))
	}
	res.Sealed, res.Unsealed = tr.sealed(ctx, 60*time.Second)
	logf("  sealed p50 %s p99 %s, %d unsealed", pct(res.Sealed, 0.5), pct(res.Sealed, 0.99), res.Unsealed)
	p.readHWM()
	res.RSS = p.rss()
	res.CPU = p.cpu()
	res.ServerCPU = meter.used()
	res.Wall = time.Since(t0)
	res.Payloads = res.Fill.Accepted + res.Paced.Accepted
	logf("  peak RSS MB: %v; CPU s: %v; servers and harness CPU s: %v", res.RSS, res.CPU, res.ServerCPU)
	if err := p.alive(); err != nil {
		return fail(err)
	}
	return res
}

// latencyPhaseCost logs what the latency phase cost: the store's, enrich's,
// ClickHouse's and Kafka's CPU per accepted payload, and the INSERTs made
// for each topic since the phase began (store_progress has one row per
// INSERT block), also per second of paced load. On the shared machine the
// servers' figures count other users' work too.
func (p *pipeline) latencyPhaseCost(ctx context.Context, start time.Time, stage map[string]float64, meter *cpuMeter, payloads int, load time.Duration) {
	secs := time.Since(start).Seconds()
	srv := meter.used()
	now := p.cpuNow()
	per := func(cpu float64) float64 { return cpu * 1e6 / float64(max(payloads, 1)) }
	var inserts []string
	rows, err := p.ch.Query(ctx, "SELECT topic, count(), sum(rows) FROM `"+p.db+"`.store_progress FINAL WHERE inserted_at >= toDateTime(?) GROUP BY topic ORDER BY topic", start.Unix())
	if err == nil {
		for rows.Next() {
			var t string
			var n, r uint64
			if rows.Scan(&t, &n, &r) == nil {
				inserts = append(inserts, fmt.Sprintf("%s %d (%.2f per s of load, %d rows each)", strings.TrimPrefix(t, p.name+"."), n, float64(n)/load.Seconds(), r/max(n, 1)))
			}
		}
		rows.Close()
	}
	logf("  latency phase (%.0f s, %d payloads): CPU µs per payload store %.0f, enrich %.0f, clickhouse %.0f, kafka %.0f; INSERTs: %s",
		secs, payloads, per(now["store"]-stage["store"]), per(now["enrich"]-stage["enrich"]), per(srv["clickhouse"]), per(srv["kafka"]), strings.Join(inserts, ", "))
}

// tracker samples accepted request keys (1 in mod, by hash) and polls
// ClickHouse for them: queryable latency = when the first poll that sees the
// record was sent − evidence.first_received_at (when ingest read the body).
// A query sees what was stored when it started, so the record was queryable
// by its send time: that is an upper bound, off by up to one poll period
// (the previous poll did not see it), never by the poll's own time — which
// the figure counted until issue 17's seventh pass (p50 8–115 ms, p99
// 60–493 ms on the loaded box; the "by stage" log line still prints it).
type tracker struct {
	p       *pipeline
	mod     uint32
	mu      sync.Mutex
	pending map[string]bool
	found   map[string]sample
}

type sample struct {
	outcome string
	recvMS  int64
	seen    time.Time // when the query that first returned it answered
	sent    time.Time // when that query was sent: the record was queryable by then
	part    int32
	off     int64
}

func newTracker(p *pipeline, mod uint32) *tracker {
	return &tracker{p: p, mod: mod, pending: map[string]bool{}, found: map[string]sample{}}
}

func (t *tracker) accepted(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		h := fnv.New32a()
		h.Write([]byte(k))
		if h.Sum32()%t.mod != 0 {
			continue
		}
		if _, ok := t.found[k]; !ok {
			t.pending[k] = true
		}
	}
}

func (t *tracker) pendingN() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func (t *tracker) poll(ctx context.Context) {
	for ctx.Err() == nil {
		t.mu.Lock()
		var keys []string
		for k := range t.pending {
			keys = append(keys, "'"+strings.ReplaceAll(k, "'", "")+"'")
			if len(keys) == 2000 {
				break
			}
		}
		t.mu.Unlock()
		if len(keys) > 0 {
			q := "SELECT request_key, argMax(outcome, version), min(first_received_at_ms), min(kafka_partition), min(kafka_offset) FROM `" + t.p.db +
				"`." + store.TableDecisions + " WHERE request_key IN (" + strings.Join(keys, ",") + ") GROUP BY request_key"
			sent := time.Now()
			rows, err := t.p.ch.Query(ctx, q)
			now := time.Now()
			if err == nil {
				for rows.Next() {
					var k string
					var s sample
					if rows.Scan(&k, &s.outcome, &s.recvMS, &s.part, &s.off) == nil {
						s.seen, s.sent = now, sent
						t.mu.Lock()
						delete(t.pending, k)
						t.found[k] = s
						t.mu.Unlock()
					}
				}
				rows.Close()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// latencies returns every sample's webhook → queryable latency, those of
// records with outcome success, and how many samples were never seen.
func (t *tracker) latencies() (all, success []time.Duration, missing int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.found {
		d := s.sent.Sub(time.UnixMilli(s.recvMS))
		all = append(all, d)
		if s.outcome == "success" {
			success = append(success, d)
		}
	}
	slices.Sort(all)
	slices.Sort(success)
	return all, success, len(t.pending)
}

// breakdown splits the found success samples' webhook → queryable latency
// at their decision's Kafka record, whose timestamp the producer set when
// enrich produced it: received → produced (enrich: success_delay, the
// watermarks' interval and Kafka's times), produced → sent (the store's
// fetch, linger and INSERT, and the wait for the next poll: the first query
// that saw the record was sent at sent, so the record was queryable by
// then), and sent → seen (that query's own time, which the latency figure
// no longer counts).
func (t *tracker) breakdown(ctx context.Context) (enrich, store, query []time.Duration, err error) {
	type po struct {
		part int32
		off  int64
	}
	t.mu.Lock()
	want := map[po]sample{}
	for _, s := range t.found {
		if s.outcome == "success" {
			want[po{s.part, s.off}] = s
		}
	}
	t.mu.Unlock()
	sc := topic.NewScanner(t.p.st.Config.Kafka)
	defer sc.Close()
	err = sc.ReadToEnd(ctx, t.p.name+".decisions", nil, topic.FromStart(), func(r *kgo.Record) error {
		s, ok := want[po{r.Partition, r.Offset}]
		if !ok {
			return nil
		}
		enrich = append(enrich, r.Timestamp.Sub(time.UnixMilli(s.recvMS)))
		store = append(store, s.sent.Sub(r.Timestamp))
		query = append(query, s.seen.Sub(s.sent))
		return nil
	})
	slices.Sort(enrich)
	slices.Sort(store)
	slices.Sort(query)
	return enrich, store, query, err
}

// sealed waits until the archive's manifests cover every found sample and
// returns sealed_at − first received for each.
func (t *tracker) sealed(ctx context.Context, wait time.Duration) ([]time.Duration, int) {
	type rng struct {
		from, to int64
		at       int64
	}
	seen := map[string]bool{}
	byPart := map[int32][]rng{}
	deadline := time.Now().Add(wait)
	topic := t.p.name + ".decisions"
	for {
		_ = t.p.bk.List(ctx, t.p.lay.ManifestsPrefix(), "", func(i bucket.Info) error {
			if seen[i.Key] {
				return nil
			}
			b, _, err := t.p.bk.Get(ctx, i.Key)
			if err != nil {
				return nil
			}
			text, _, ok := strings.Cut(string(b), "\n\n") // the note's text; the signatures follow
			if !ok {
				return nil
			}
			var m manifest.Manifest
			if json.Unmarshal([]byte(text), &m) != nil || m.Type != manifest.ManifestType || m.Topic != topic {
				return nil
			}
			seen[i.Key] = true
			byPart[m.Partition] = append(byPart[m.Partition], rng{m.From, m.To, int64(m.SealedAt)})
			return nil
		})
		var out []time.Duration
		missing := 0
		for _, s := range t.found {
			ok := false
			for _, r := range byPart[s.part] {
				if s.off >= r.from && s.off < r.to {
					out = append(out, time.Duration(r.at-s.recvMS)*time.Millisecond)
					ok = true
					break
				}
			}
			if !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			slices.Sort(out)
			return out, missing
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pct is the q-quantile of sorted durations (0 when empty).
func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// cleanLeftovers drops the databases and topics of earlier harness runs that
// did not get to clean up (killed), once they are over an hour old: names
// end in the run's Unix time modulo 1e6.
func cleanLeftovers(ctx context.Context) {
	now := time.Now().Unix() % 1e6
	old := func(name string) bool {
		for _, pre := range []string{"benchingest", "benchp1", "benchp2", "benchp4"} {
			if ts, err := strconv.ParseInt(strings.TrimPrefix(name, pre), 10, 64); strings.HasPrefix(name, pre) && err == nil {
				return (now-ts+1e6)%1e6 > 3600
			}
		}
		return false
	}
	if conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{os.Getenv("AUDITLINE_CLICKHOUSE")}}); err == nil {
		if rows, err := conn.Query(ctx, "SELECT name FROM system.databases WHERE name LIKE 'bench%'"); err == nil {
			var dbs []string
			for rows.Next() {
				var n string
				if rows.Scan(&n) == nil && old(n) {
					dbs = append(dbs, n)
				}
			}
			rows.Close()
			for _, d := range dbs {
				logf("dropping leftover database %s", d)
				_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+d+"`")
			}
		}
		conn.Close()
	}
	kafka := topic.Config{Brokers: strings.Split(os.Getenv("AUDITLINE_KAFKA"), ",")}
	if n, _ := stacktest.DeleteTopics(ctx, kafka, func(t string) bool {
		name, _, ok := strings.Cut(t, ".")
		return ok && old(name)
	}); n > 0 {
		logf("deleted %d leftover topics", n)
	}
}

// generatorRate is how many LiteLLM payloads per second loadgen's generator
// makes (and joins into bodies) on one core, without sending: the ceiling of
// any rate the harness can offer from its own process.
func generatorRate(d time.Duration) float64 {
	g, err := loadgen.New(loadgen.Config{Seed: 99})
	if err != nil {
		return 0
	}
	start := time.Now()
	n := 0
	var batch [][]byte
	for time.Since(start) < d {
		r := g.Next()
		batch = append(batch, r.LiteLLM...)
		n += len(r.LiteLLM)
		if len(batch) >= 512 {
			_ = loadgen.Body(loadgen.FormatJSONArray, batch)
			batch = batch[:0]
		}
	}
	return float64(n) / time.Since(start).Seconds()
}
