//go:build litellm

package litellm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditline/auditline/internal/stacktest"
)

// BenchmarkProxyOverhead measures what each way of feeding auditline costs
// the proxy: the same load (AUDITLINE_LITELLM_OVERHEAD_REQUESTS requests,
// default 1000, 16 at once, after 100 warm-up requests) through a proxy with
// no callback, with LiteLLM's stock generic_api callback and with
// auditline's plugin, both posting to a real ingest; client-side latency
// p50/p99 and the proxy's CPU (all its processes, from /proc) per request.
// The three proxies take turns in rounds so that a change of the machine's
// load hits all of them alike. scripts/litellm-suite.sh --overhead runs it
// and prints the table for BENCHMARKS.md.
func BenchmarkProxyOverhead(b *testing.B) {
	n := 1000
	if v := os.Getenv("AUDITLINE_LITELLM_OVERHEAD_REQUESTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	const conc, rounds = 16, 2
	st := stacktest.New(b, stacktest.Shared(b), "")
	st.Config.Archive.Prefix = "litellm-overhead/" + st.Name + "/"
	st.Migrate()
	st.StartStages(false, "ingest", "enrich", "store")
	st.WaitReady(st.IngestURL())
	type variant struct {
		name string
		opts stacktest.LiteLLMOptions
		p    *proxy
		lat  []time.Duration
		cpu  time.Duration
		n    int
		fail int
	}
	vs := []*variant{
		{name: "no callback", opts: stacktest.LiteLLMOptions{Callbacks: "[]"}},
		{name: "stock generic_api", opts: stacktest.LiteLLMOptions{Callbacks: stacktest.StockCallbacks}},
		{name: "auditline plugin", opts: stacktest.LiteLLMOptions{}},
	}
	var opts []stacktest.LiteLLMOptions
	for _, v := range vs {
		opts = append(opts, v.opts)
	}
	for i, l := range stacktest.StartLiteLLMs(b, st.IngestURL(), stacktest.Token, opts...) {
		vs[i].p = &proxy{name: vs[i].name, LiteLLM: l}
		timed(vs[i].p, 100, conc) // warm-up
	}
	b.ResetTimer()
	for range b.N {
		for r := 0; r < rounds; r++ {
			for _, v := range vs {
				cpu0 := treeCPU(v.p)
				lat, fail := timed(v.p, n/rounds, conc)
				v.cpu += treeCPU(v.p) - cpu0
				v.lat = append(v.lat, lat...)
				v.n += len(lat)
				v.fail += fail
				stacktest.Say("%s round %d: %d requests", v.name, r+1, len(lat))
			}
		}
	}
	b.StopTimer()
	var out strings.Builder
	fmt.Fprintf(&out, "| proxy (LiteLLM %s, 1 worker, %d at once) | requests | p50 ms | p99 ms | proxy CPU ms / request |\n|---|---|---|---|---|\n", "1.106.2", conc)
	base := vs[0]
	for _, v := range vs {
		sort.Slice(v.lat, func(i, j int) bool { return v.lat[i] < v.lat[j] })
		p50, p99 := pct(v.lat, 50), pct(v.lat, 99)
		cpu := float64(v.cpu.Microseconds()) / 1000 / float64(max(v.n, 1))
		extra := ""
		if v != base {
			extra = fmt.Sprintf(" (%+.1f / %+.1f / %+.2f vs no callback)", ms(p50-pct(base.lat, 50)), ms(p99-pct(base.lat, 99)),
				cpu-float64(base.cpu.Microseconds())/1000/float64(max(base.n, 1)))
		}
		fmt.Fprintf(&out, "| %s%s | %d (%d failed) | %.1f | %.1f | %.2f |\n", v.name, extra, v.n, v.fail, ms(p50), ms(p99), cpu)
		b.ReportMetric(ms(p50), strings.ReplaceAll(v.name, " ", "_")+"_p50_ms")
		b.ReportMetric(ms(p99), strings.ReplaceAll(v.name, " ", "_")+"_p99_ms")
		b.ReportMetric(cpu, strings.ReplaceAll(v.name, " ", "_")+"_cpu_ms/req")
	}
	fmt.Print(out.String())
	if f := os.Getenv("AUDITLINE_LITELLM_OVERHEAD_OUT"); f != "" {
		_ = os.WriteFile(f, []byte(out.String()), 0o644)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(s []time.Duration, p int) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}

// timed sends n requests, conc at once, and returns the latency of each
// answered 200 and the count of the others.
func timed(p *proxy, n, conc int) ([]time.Duration, int) {
	c := newClient(conc)
	var mu sync.Mutex
	var lat []time.Duration
	fail := 0
	var wg sync.WaitGroup
	next := make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
	}()
	run := stacktest.NewName()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				r := c.chat(context.Background(), p, fmt.Sprintf("overhead %s %d", run, i))
				d := time.Since(t0)
				mu.Lock()
				if r.err == nil && r.status == 200 {
					lat = append(lat, d)
				} else {
					fail++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, fail
}

// treeCPU is the user+system CPU time of the proxy's processes so far.
func treeCPU(p *proxy) time.Duration {
	b, err := os.ReadFile(filepath.Join(p.Data, "run", "litellm.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	var ticks int64
	for _, q := range append(descendants(pid), pid) {
		s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", q))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(s, ')')
		f := strings.Fields(string(s[i+1:]))
		if len(f) > 13 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			sy, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + sy
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ = 100
}
