// Command dashbench measures dashboard page loads on a large table: it loads N
// synthetic decision records (default 1,000,000) into a fresh ClickHouse
// database, serves the dashboards over it in-process, logs in over HTTP and
// times every page, cold and warm, end to end (HTTP request to last byte,
// which includes every ClickHouse query and the HTML render).
//
//	source .data/env && go run ./dashboards/cmd/dashbench            # 1M records
//	go run ./dashboards/cmd/dashbench -records 200000 -keep          # keep the database
//	go run ./dashboards/cmd/dashbench -reuse -db auditline_bench     # time an existing load
//
// The target is under 1 s per page on a 2-core machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/ingest/topic"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dashbench:", err)
		os.Exit(1)
	}
}

type nopPoster struct{}

func (nopPoster) Post(context.Context, oversight.Event) error {
	return errors.New("dashbench: read-only")
}

func run() error {
	addr := flag.String("clickhouse", os.Getenv("AUDITLINE_CLICKHOUSE"), "ClickHouse native host:port (env AUDITLINE_CLICKHOUSE)")
	n := flag.Int("records", 1_000_000, "records to load")
	db := flag.String("db", "auditline_bench", "database to (re)create")
	keep := flag.Bool("keep", false, "keep the database afterwards")
	reuse := flag.Bool("reuse", false, "do not load: time pages over the existing database")
	runs := flag.Int("runs", 5, "timed loads per page after the first (cold) one")
	span := flag.Duration("span", 30*24*time.Hour, "time span the records cover, ending now")
	amended := flag.Float64("amended", 0.05, "share of records that also get a version 2 (a later review)")
	flag.Parse()
	if *addr == "" {
		return errors.New("no ClickHouse: set -clickhouse or AUDITLINE_CLICKHOUSE (source .data/env)")
	}
	ctx := context.Background()
	conn, err := seed.Open(ctx, *addr, *db)
	if err != nil {
		return err
	}
	defer conn.Close()
	end := time.Now().UTC()
	if !*reuse {
		// A fresh database: the store's migrations record what they created.
		if err := seed.Drop(ctx, conn, *db); err != nil {
			return err
		}
		if err := seed.CreateSchema(ctx, conn, *db); err != nil {
			return err
		}
		const chunk = 100_000
		t0 := time.Now()
		for done := 0; done < *n; done += chunk {
			k := min(chunk, *n-done)
			recs := seed.Generate(k, seed.Options{End: end, Span: *span, Seed: uint64(done/chunk + 1), Amended: *amended})
			if err := seed.Insert(ctx, conn, *db, seed.Table, recs); err != nil {
				return err
			}
			fmt.Printf("\rloaded %d / %d records (%d rows with later versions, %.0f rows/s)", done+k, *n, len(recs)-k, float64(done+k)/time.Since(t0).Seconds())
		}
		fmt.Printf("\nload: %d records in %s\n", *n, time.Since(t0).Round(time.Millisecond))
	}
	if !*keep && !*reuse {
		defer func() { _ = seed.Drop(context.Background(), conn, *db) }()
	}
	var rows, parts uint64
	var bytes uint64
	_ = conn.QueryRow(ctx, "SELECT count() FROM `"+*db+"`.`"+seed.Table+"`").Scan(&rows)
	_ = conn.QueryRow(ctx, "SELECT count(), sum(bytes) FROM system.parts WHERE database = ? AND table = ? AND active", *db, seed.Table).Scan(&parts, &bytes)
	fmt.Printf("table: %d rows, %d active parts, %.0f MiB on disk; %d CPUs; load average %s\n", rows, parts, float64(bytes)/(1<<20), runtime.NumCPU(), loadavg())

	hash, _ := bcrypt.GenerateFromPassword([]byte("bench"), bcrypt.MinCost)
	cfg := dashboards.NewDefaultConfig()
	cfg.CookieSecure = "never"
	cfg.Ingest.Token = "unused"
	cfg.ClickHouse = query.Config{Addr: []string{*addr}, Database: *db, Username: "default", Table: seed.Table, Timeout: 30 * time.Second}
	cfg.Auth.Users = []auth.UserConfig{{Name: "bench", PasswordHash: string(hash), Role: "viewer", Tenants: []string{"acme", "globex"}}}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ch, err := query.Open(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer ch.Close()
	srv, err := dashboards.New(cfg, topic.Shared{}, dashboards.Settings{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Sources: dashboards.Sources{NearMiss: ch, Records: ch, Record: ch, Sampling: ch, Events: nopPoster{}}})
	if err != nil {
		return err
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute}
	page, err := get(hc, ts.URL+"/login")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		return errors.New("no login form")
	}
	resp, err := hc.PostForm(ts.URL+"/login", url.Values{"user": {"bench"}, "password": {"bench"}, "csrf": {m[1]}})
	if err != nil {
		return err
	}
	resp.Body.Close()

	// A record and a cursor to open.
	list, err := get(hc, ts.URL+"/records?range=30d&category=flagged")
	if err != nil {
		return err
	}
	id := regexp.MustCompile(`href="/records/([0-9a-f]{32})"`).FindStringSubmatch(list)
	next := regexp.MustCompile(`href="(/records\?[^"]*cursor=[^"]+)"`).FindStringSubmatch(list)
	pages := []string{
		"/near-miss?range=24h", "/near-miss?range=7d", "/near-miss?range=30d", "/near-miss?range=30d&team=payments&provider=azure",
		"/near-miss?range=30d&tenant=acme", "/sampling?range=7d", "/sampling?range=30d",
		"/records?range=30d", "/records?range=30d&category=flagged", "/records?range=30d&reason=fallback_after_429",
		"/records?range=30d&sampled=1&review=pending&tier=high",
	}
	if next != nil {
		pages = append(pages, strings.ReplaceAll(next[1], "&amp;", "&"))
	}
	if id != nil {
		pages = append(pages, "/records/"+id[1])
	}
	fmt.Printf("\n%-60s %9s %9s %9s %9s\n", "page", "cold", "median", "p90", "max")
	worst := time.Duration(0)
	for _, p := range pages {
		var ds []time.Duration
		for i := 0; i <= *runs; i++ {
			t0 := time.Now()
			body, err := get(hc, ts.URL+p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if !strings.Contains(body, "</html>") {
				return fmt.Errorf("%s: incomplete page", p)
			}
			ds = append(ds, time.Since(t0))
		}
		cold := ds[0]
		warm := slices.Clone(ds[1:])
		slices.Sort(warm)
		med, p90, mx := warm[len(warm)/2], warm[min(len(warm)-1, len(warm)*9/10)], warm[len(warm)-1]
		worst = max(worst, cold, mx)
		name := p
		if len(name) > 60 {
			name = name[:57] + "..."
		}
		fmt.Printf("%-60s %9s %9s %9s %9s\n", name, ms(cold), ms(med), ms(p90), ms(mx))
	}
	verdict := "PASS"
	if worst >= time.Second {
		verdict = "FAIL"
	}
	fmt.Printf("\nslowest page load: %s (target < 1 s): %s; load average now %s\n", ms(worst), verdict, loadavg())
	if verdict == "FAIL" {
		return errors.New("a page took 1 s or more")
	}
	return nil
}

// loadavg is the 1-, 5- and 15-minute load average (Linux), for context: the
// machine may be shared with other work.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func get(hc *http.Client, u string) (string, error) {
	resp, err := hc.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b), nil
}
