package enrich_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich"
	"github.com/auditline/auditline/enrich/internal/fixture"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/loadgen"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/stacktest"
)

// TestCrashMidStream is the delivery proof: `auditline enrich` runs as a
// child process while 100,000 events of many requests stream into the raw
// topics; it is killed with SIGKILL in the middle and started again. In the
// end every request has exactly one latest record (its highest version, never
// two different records under it), none is missing, and each latest record
// carries every event of its request.
func TestCrashMidStream(t *testing.T) {
	brokers := testenv.Kafka(t)
	if testing.Short() {
		t.Skip("-short: skipping the 100,000-event crash test")
	}
	const wantEvents = 100_000
	name := testenv.Name(t)
	topics := raw.Topics{Prefix: name + "."}
	kcfg := topic.NewDefaultConfig()
	kcfg.Brokers = brokers
	kcfg.Partitions = 4
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := topic.EnsureTopics(ctx, kcfg, topics); err != nil {
		t.Fatal(err)
	}

	st := stacktest.New(t, stacktest.Servers{Kafka: brokers}, name)
	c := &st.Config
	c.Kafka.Partitions = 4
	c.Kafka.CommitInterval = 200 * time.Millisecond
	c.Kafka.SessionTimeout = 6 * time.Second
	c.Enrich.FailureGrace, c.Enrich.LiteLLMWait = 2*time.Second, 4*time.Second
	c.Enrich.IdleAfter, c.Enrich.TickInterval = time.Second, 200*time.Millisecond
	var proc *stacktest.Proc
	// run n's log: the part of the process log after its n-th start.
	runLog := func(n int) string {
		parts := strings.Split(string(proc.Log()), "=== stacktest: start ")
		if n < len(parts) {
			return parts[n]
		}
		return ""
	}
	dumpLogs := func() {
		for n := 1; n <= 2; n++ {
			b := runLog(n)
			t.Logf("--- enrich run %d log (last 3000 bytes)\n%s", n, b[max(0, len(b)-3000):])
		}
	}

	// The traffic: loadgen's default mix plus gateway events, received now.
	g, err := loadgen.New(loadgen.Config{Seed: 42, Gateway: 0.2, Start: time.Now(), Interval: 100 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fixture.New(topics, 0)
	if err != nil {
		t.Fatal(err)
	}
	type batch []*kgo.Record
	var batches []batch
	want := map[string][]string{} // request key -> event ids
	var cur batch
	events := 0
	for events < wantEvents {
		r := g.Next()
		for _, b := range r.Gateway {
			ev, err := f.Event(raw.SourceGateway, b)
			if err != nil {
				t.Fatal(err)
			}
			cur = append(cur, f.Topics.Record(ev, time.Time{}, "bench", 0))
			want[ev.Key] = append(want[ev.Key], ev.EventID)
		}
		for _, b := range r.LiteLLM {
			ev, err := f.Event(raw.SourceLiteLLM, b)
			if err != nil {
				t.Fatal(err)
			}
			cur = append(cur, f.Topics.Record(ev, time.Time{}, "bench", 0))
			want[ev.Key] = append(want[ev.Key], ev.EventID)
		}
		events += len(r.Gateway) + len(r.LiteLLM)
		if len(cur) >= 500 {
			batches = append(batches, cur)
			cur = nil
		}
	}
	batches = append(batches, cur)

	w, err := topic.NewWriter(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var produced atomic.Int64
	var wg sync.WaitGroup
	var produceErr error
	wg.Go(func() {
		for _, b := range batches {
			now := []byte(fmt.Sprint(time.Now().UnixMilli()))
			for _, r := range b {
				for i := range r.Headers {
					if r.Headers[i].Key == raw.HeaderReceivedAt {
						r.Headers[i].Value = now
					}
				}
			}
			if err := w.Produce(ctx, b...); err != nil {
				produceErr = err
				return
			}
			produced.Add(int64(len(b)))
			time.Sleep(40 * time.Millisecond) // a stream, not a burst: ~10 s in all
		}
	})

	adm := kadm.NewClient(w.Client())
	decided := func() int64 {
		ends, err := adm.ListEndOffsets(ctx, topics.Decisions())
		if err != nil {
			return 0
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}

	proc = st.Start("enrich")
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				dumpLogs()
				t.Fatalf("timed out waiting for %s (produced %d, decisions %d)", what, produced.Load(), decided())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitUntil("a third of the decisions", 2*time.Minute, func() bool { return decided() > int64(len(want))/3 })
	proc.Kill()
	killedAt := decided()
	t.Logf("SIGKILL after %d decisions; %d of %d events produced", killedAt, produced.Load(), events)

	proc.Start()
	wg.Wait()
	if produceErr != nil {
		t.Fatal(produceErr)
	}

	// Wait until every request's latest record holds all its events (a
	// record emitted early is amended when the rest is read: on a loaded box
	// that can take longer than any fixed pause after the first version),
	// then stop gracefully. If that never happens, the checks below say
	// which requests fell short.
	for key, ids := range want {
		slices.Sort(ids)
		want[key] = slices.Compact(ids)
	}
	var ds []record.Decision
	waitUntil("every request's record", 3*time.Minute, func() bool {
		if decided() < int64(len(want)) {
			return false
		}
		ds = readDecisions(t, kcfg, topics)
		return len(enrich.Latest(ds)) >= len(want)
	})
	for deadline := time.Now().Add(2 * time.Minute); !complete(ds, want) && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		ds = readDecisions(t, kcfg, topics)
	}
	time.Sleep(time.Second) // late amendments, if any, land too
	ds = readDecisions(t, kcfg, topics)
	if err := proc.Stop(); err != nil {
		dumpLogs()
		t.Fatalf("second run ended with %v", err)
	}

	// How long the restarted process took to rebuild its memory.
	for _, line := range strings.Split(runLog(2), "\n") {
		if strings.Contains(line, "partition assigned") {
			t.Logf("restart: %s", line[strings.Index(line, "partition assigned"):])
		}
	}

	// One latest record per request, none missing, each with all its events.
	type top struct {
		version uint32
		bodies  map[string]bool
		d       record.Decision
	}
	tops := map[string]*top{}
	for _, d := range ds {
		tp := tops[d.Request.RequestKey]
		if tp == nil || d.Version > tp.version {
			tp = &top{version: d.Version, bodies: map[string]bool{}}
			tops[d.Request.RequestKey] = tp
		}
		if d.Version == tp.version {
			tp.bodies[enrich.Canonical(t, d)] = true
			tp.d = d
		}
	}
	missing, conflicts, incomplete, extra := 0, 0, 0, 0
	for key, ids := range want {
		tp := tops[key]
		if tp == nil {
			missing++
			continue
		}
		if len(tp.bodies) != 1 {
			conflicts++
			if conflicts <= 3 {
				var bs []string
				for b := range tp.bodies {
					bs = append(bs, b)
				}
				t.Errorf("request %s: %d different records at version %d:\n%s", key, len(bs), tp.version, enrich.FirstDiff(bs[0], bs[1]))
			}
		}
		if got := eventIDs(tp.d); !slices.Equal(got, ids) {
			incomplete++
			if incomplete <= 3 {
				t.Errorf("request %s: latest record v%d has events %v, want %v", key, tp.version, got, ids)
			}
		}
	}
	for key := range tops {
		if _, ok := want[key]; !ok {
			extra++
		}
	}
	seen := map[string]bool{}
	amended, repeated := 0, 0
	for _, d := range ds {
		if d.Version > 1 && d.Completeness == record.Amended {
			amended++
		}
		k := fmt.Sprintf("%s/%d", d.RecordID, d.Version)
		if seen[k] {
			repeated++
		}
		seen[k] = true
	}
	t.Logf("%d events, %d requests; %d decision records: %d amendments, %d versions emitted twice (identical, by the check above)",
		events, len(want), len(ds), amended, repeated)
	if missing+conflicts+incomplete+extra > 0 {
		dumpLogs()
		t.Fatalf("missing %d, conflicting %d, incomplete %d, unexpected %d", missing, conflicts, incomplete, extra)
	}
}

// eventIDs lists the event ids d's evidence holds.
func eventIDs(d record.Decision) []string {
	var ids []string
	for _, s := range d.Evidence.Sources {
		ids = append(ids, s.EventID)
	}
	return ids
}

// complete: the record of the highest version of every request in want
// holds exactly the events want lists for it (sorted, without repeats).
func complete(ds []record.Decision, want map[string][]string) bool {
	latest := map[string]record.Decision{}
	for _, d := range ds {
		if l, ok := latest[d.Request.RequestKey]; !ok || d.Version > l.Version {
			latest[d.Request.RequestKey] = d
		}
	}
	for key, ids := range want {
		d, ok := latest[key]
		if !ok || !slices.Equal(eventIDs(d), ids) {
			return false
		}
	}
	return true
}

// readDecisions reads the whole decisions topic.
func readDecisions(t *testing.T, kcfg topic.Config, topics raw.Topics) []record.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ds, _, err := stacktest.Decisions(ctx, kcfg, topics.Decisions())
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
