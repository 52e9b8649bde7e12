package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ledger"
)

// TestLiveLedger: the live completeness ledger on ClickHouse. Records of one
// emitter account for its numbers (sources and the gateway_config they ran
// under); a missing number is a gap in `sequence_gaps`, in ledger.Read and in
// the monitor's metrics; once older than alarm_after it is an alarm with an
// ERROR line; a record that arrives later fills it and the alarm clears.
func TestLiveLedger(t *testing.T) { testenv.ForEachClickHouse(t, testLiveLedger) }

func testLiveLedger(t *testing.T) {
	conn, db, _ := testDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	// One record per request: marker seq 2k, outcome seq 2k+1 (k = 1 … 6),
	// gateway_config at 1; request 4 (numbers 8 and 9) is lost.
	insertRecords := func(ks ...int) {
		rows := newDecisionRows()
		for _, k := range ks {
			d := genDecision(k)
			d.Emitter = record.Emitter{ID: "gw-w0-test", ConfigHash: "sha256:" + strings.Repeat("ab", 32), ConfigSeq: 1}
			at := record.TimeOf(base.Add(time.Duration(k) * time.Second))
			d.Evidence.Sources = []record.Source{
				{EventID: "request_started:x", Source: "request_started", Emitter: d.Emitter.ID, Seq: int64(2 * k), ReceivedAt: at},
				{EventID: "litellm:x", Source: "litellm", Emitter: d.Emitter.ID, Seq: int64(2*k + 1), ReceivedAt: at + 1},
			}
			d.Evidence.FirstReceivedAt = at
			if err := rows.add(&kgo.Record{Topic: "t", Offset: int64(k), Value: mustJSON(t, d)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := insert(ctx, conn, db, TableDecisions, rows.columns(), rows.values(), ""); err != nil {
			t.Fatal(err)
		}
	}
	insertRecords(1, 2, 3, 5, 6)

	b, err := ledger.Read(ctx, conn, db, time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	es := b.Emitters()
	if len(es) != 1 || es[0].Summary() != "sequence 1..13: 2 missing: 8..9" {
		t.Fatalf("ledger: %+v", es)
	}
	if g := es[0].Gaps[0]; !g.Since.Equal(base.Add(5 * time.Second)) {
		t.Errorf("gap known since %s, want the receipt of number 10 (%s)", g.Since, base.Add(5*time.Second))
	}
	var first, last, missing int64
	q := "SELECT first_missing, last_missing, missing FROM " + quote(db) + "." + ViewSequenceGaps + " WHERE emitter = 'gw-w0-test'"
	if err := conn.QueryRow(ctx, q).Scan(&first, &last, &missing); err != nil {
		t.Fatal(err)
	}
	if first != 8 || last != 9 || missing != 2 {
		t.Errorf("sequence_gaps: %d..%d (%d)", first, last, missing)
	}

	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	cfg := ledger.Config{Interval: time.Minute, AlarmAfter: 10 * time.Minute, Window: 0}
	m, err := ledger.NewMonitor(cfg, conn, db, reg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := base.Add(5 * time.Minute)
	ledger.SetClock(m, func() time.Time { return now })
	check := func() {
		t.Helper()
		if err := m.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	metric := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				var sum float64
				for _, m := range mf.GetMetric() {
					sum += m.GetGauge().GetValue()
				}
				return sum
			}
		}
		return 0
	}
	check()
	if metric("auditline_ledger_missing_events") != 2 || metric("auditline_ledger_gaps") != 1 || metric("auditline_ledger_alarm") != 0 {
		t.Fatalf("young gap: missing %v gaps %v alarm %v", metric("auditline_ledger_missing_events"), metric("auditline_ledger_gaps"), metric("auditline_ledger_alarm"))
	}
	now = base.Add(20 * time.Minute) // the gap is now 20 min old
	check()
	if metric("auditline_ledger_alarm") != 1 || !strings.Contains(logs.String(), "sequence gap") || !strings.Contains(logs.String(), "missing=8..9") {
		t.Fatalf("old gap: alarm %v, log:\n%s", metric("auditline_ledger_alarm"), logs.String())
	}
	if age := metric("auditline_ledger_oldest_gap_seconds"); age != 1195 {
		t.Errorf("oldest gap %v s, want 1195 (known since number 10 arrived, 5 s after base)", age)
	}
	insertRecords(4) // the lost request arrives after all (the plugin re-sent it)
	check()
	if metric("auditline_ledger_missing_events") != 0 || metric("auditline_ledger_alarm") != 0 || !strings.Contains(logs.String(), "sequence gap filled") {
		t.Fatalf("filled gap: missing %v alarm %v, log:\n%s", metric("auditline_ledger_missing_events"), metric("auditline_ledger_alarm"), logs.String())
	}
}
