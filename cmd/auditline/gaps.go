package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/auditline/auditline/ledger"
	"github.com/auditline/auditline/store"
)

func init() {
	register(command{"gaps", "per emitter of the LiteLLM plugin: the sequence numbers recorded and what is missing", runGaps})
}

// errGaps makes `auditline gaps --check` exit non-zero without a second message.
var errGaps = errors.New("sequence gaps older than --alarm-after")

func runGaps(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gaps", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline gaps [flags]

Reads the completeness ledger from ClickHouse (store.clickhouse): for every
emitter of auditline's LiteLLM plugin (one per proxy worker), the sequence
numbers its records account for, and each run of numbers none accounts for,
with since when it is known. A gap is an event that never reached auditline,
or one still on its way (the plugin re-sends after an outage; a request waits
up to enrich.outcome_wait). Runbook: docs/litellm.md, "Runbook: sequence gaps".

The sealed archive has the same view: 'auditline verify' reports each
emitter's coverage from sealed records alone.

Exit status: 0; with --check, 1 when a gap is older than --alarm-after.

Flags:
`)
		fs.PrintDefaults()
	}
	configPath := configFlag(fs)
	emitter := fs.String("emitter", "", "only this emitter")
	sinceFlag := fs.String("since", "", "only records first received since then: a duration back from now (24h) or a time (RFC 3339 / YYYY-MM-DD); numbers before the lowest seen are then not in question. Default: all history, counted from 1")
	alarmAfter := fs.Duration("alarm-after", 0, "gaps known for longer are marked ALARM (default store.ledger.alarm_after)")
	check := fs.Bool("check", false, "exit 1 when a gap is older than --alarm-after")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if err := cfg.Validate("store"); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	var since time.Time
	if *sinceFlag != "" {
		if d, err := time.ParseDuration(*sinceFlag); err == nil {
			since = time.Now().Add(-d)
		} else if since, err = parseTime("since", *sinceFlag); err != nil {
			return err
		}
	}
	if *alarmAfter == 0 {
		*alarmAfter = cfg.Store.Ledger.AlarmAfter
	}
	conn, err := store.Open(cfg.Store.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	b, err := ledger.Read(ctx, conn, cfg.Store.ClickHouse.Database, since, *emitter)
	if err != nil {
		return fmt.Errorf("%w (is store.clickhouse right, and has 'auditline migrate' run?)", err)
	}
	es := b.Emitters()
	if !since.IsZero() {
		es = b.Within()
	}
	alarms := printGaps(os.Stdout, es, *asJSON, *alarmAfter, time.Now())
	if *check && alarms > 0 {
		fmt.Fprintf(os.Stderr, "auditline gaps: %d gap(s) older than %s\n", alarms, *alarmAfter)
		return errGaps
	}
	return nil
}

type gapJSON struct {
	First      int64     `json:"first"`
	Last       int64     `json:"last"`
	Count      int64     `json:"count"`
	KnownSince time.Time `json:"known_since,omitzero"`
	Alarm      bool      `json:"alarm"`
}

type emitterJSON struct {
	Emitter  string    `json:"emitter"`
	First    int64     `json:"first"`
	Last     int64     `json:"last"`
	Seen     int64     `json:"seen"`
	Missing  int64     `json:"missing"`
	Complete bool      `json:"complete"`
	FirstAt  time.Time `json:"first_received_at,omitzero"`
	LastAt   time.Time `json:"last_received_at,omitzero"`
	Gaps     []gapJSON `json:"gaps"`
}

// printGaps writes the report and returns how many gaps are alarms.
func printGaps(w io.Writer, es []ledger.Emitter, asJSON bool, alarmAfter time.Duration, now time.Time) int {
	alarms := 0
	out := make([]emitterJSON, 0, len(es))
	for _, e := range es {
		j := emitterJSON{Emitter: e.ID, First: e.First, Last: e.Last, Seen: e.Seen, Missing: e.Missing(), Complete: e.Complete(),
			FirstAt: e.FirstAt, LastAt: e.LastAt, Gaps: []gapJSON{}}
		for _, g := range e.Gaps {
			alarm := !g.Since.IsZero() && now.Sub(g.Since) >= alarmAfter
			if alarm {
				alarms++
			}
			j.Gaps = append(j.Gaps, gapJSON{First: g.First, Last: g.Last, Count: g.Len(), KnownSince: g.Since, Alarm: alarm})
		}
		out = append(out, j)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return alarms
	}
	if len(es) == 0 {
		fmt.Fprintln(w, "no emitter: no record carries a LiteLLM plugin sequence number (the stock generic_api callback has none)")
		return 0
	}
	for i, e := range es {
		last := ""
		if !e.LastAt.IsZero() {
			last = ", last received " + e.LastAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "emitter %s: %s%s\n", e.ID, e.Summary(), last)
		for _, g := range out[i].Gaps {
			mark := ""
			if g.Alarm {
				mark = fmt.Sprintf("  ALARM: missing for more than %s", alarmAfter)
			}
			since := "known since: unknown"
			if !g.KnownSince.IsZero() {
				since = fmt.Sprintf("known since %s (%s ago)", g.KnownSince.Format(time.RFC3339), now.Sub(g.KnownSince).Round(time.Second))
			}
			fmt.Fprintf(w, "    missing %-20s %d event(s), %s%s\n", ledger.Range{First: g.First, Last: g.Last}, g.Count, since, mark)
		}
	}
	return alarms
}
