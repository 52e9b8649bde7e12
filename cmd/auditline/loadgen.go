package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/auditline/auditline/ingest/loadgen"
)

func init() {
	register(command{"loadgen", "send realistic LiteLLM traffic to ingest", runLoadgen})
}

// runLoadgen sends realistic LiteLLM traffic to ingest and prints a summary.
func runLoadgen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var (
		o       loadgen.Options
		seed    = fs.Int64("seed", 1, "seed of the traffic generator: the same seed sends the same events, byte for byte")
		gateway = fs.Float64("gateway", 0.05, "share (0..1) of requests that also get a security-gateway event (POST /v1/gateway)")
	)
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "ingest base URL (endpoints /v1/litellm, /v1/litellm/alerts, /v1/gateway are appended)")
	fs.StringVar(&o.Token, "token", os.Getenv("AUDITLINE_INGEST_TOKEN"), "bearer token with scopes litellm (+ alerts, gateway); default $AUDITLINE_INGEST_TOKEN")
	fs.Float64Var(&o.Rate, "rate", 0, "LiteLLM payloads per second; 0 sends as fast as the server answers")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (e.g. 30s)")
	fs.IntVar(&o.Payloads, "payloads", 0, "stop after this many LiteLLM payloads (default 10000 when --duration is not set)")
	fs.IntVar(&o.Batch, "batch", 512, "payloads per body (LiteLLM's DEFAULT_BATCH_SIZE is 512); ignored for --format single")
	fs.IntVar(&o.Concurrency, "concurrency", 4, "bodies in flight at once")
	fs.StringVar(&o.Format, "format", loadgen.FormatJSONArray, "wire form: json_array (LiteLLM's default), ndjson or single")
	acceptedKeys := fs.String("accepted-keys", "", "write the request key (litellm_call_id) of every payload answered 2xx to this file, one per line, each key once")
	fs.BoolVar(&o.Alerts, "alerts", true, "also send the budget alerts the traffic triggers (POST /v1/litellm/alerts)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: auditline loadgen [flags]

Sends LiteLLM-shaped traffic to ingest as the LiteLLM proxy does (successes,
streams, fallback pairs, retries, guardrail blocks, cache hits, budget-near
requests and their alerts, a few gateway events), never retrying a refused
body, and prints what was accepted, the rate and the response times.

Flags:
`)
		fs.PrintDefaults()
	}
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if o.Duration == 0 && o.Payloads == 0 {
		o.Payloads = 10_000
	}
	o.Generator = loadgen.Config{Seed: *seed, Gateway: *gateway}
	if *acceptedKeys != "" {
		f, err := os.Create(*acceptedKeys)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		seen := map[string]bool{}
		o.Accepted = func(keys []string) {
			for _, k := range keys {
				if !seen[k] {
					seen[k] = true
					w.WriteString(k + "\n")
				}
			}
		}
		defer func() {
			if err := w.Flush(); err != nil {
				fmt.Fprintf(os.Stderr, "loadgen: --accepted-keys: %v\n", err)
			}
			f.Close()
		}()
	}
	fmt.Fprintf(os.Stderr, "loadgen: %s, format %s, batch %d, concurrency %d, rate %s, seed %d\n",
		o.URL, o.Format, o.Batch, o.Concurrency, rateString(o.Rate), *seed)
	s, err := loadgen.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Print(s.String())
	if s.Sent > 0 && s.Accepted == 0 {
		return fmt.Errorf("nothing was accepted (statuses %v, transport errors %d)", s.Status, s.Errors)
	}
	return nil
}

func rateString(r float64) string {
	if r <= 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f/s", r)
}
