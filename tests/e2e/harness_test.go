package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/store"
)

const ingestToken = "e2e-litellm-ingest-token"

// stack is auditline's ingest, enrich, store and archive as child processes
// on the real Kafka, ClickHouse and MinIO, with a unique topic prefix,
// database and archive prefix.
type stack struct {
	*stacktest.Stack
	t      *testing.T
	ingest string // base URL
	db     string
	conn   driver.Conn
	stages map[string]*stacktest.Proc
}

func newStack(t *testing.T) *stack {
	t.Helper()
	st := stacktest.New(t, stacktest.Shared(t), "")
	c := &st.Config
	c.Ingest.Auth.Tokens = []auth.Token{{Name: "litellm", SHA256: auth.Hash(ingestToken), Scopes: []auth.Scope{auth.ScopeLiteLLM, auth.ScopeAlerts}}}
	c.Ingest.Auth.QueryToken = true
	c.Archive.Prefix = "e2e-litellm/" + st.Name + "/"
	st.Migrate()
	s := &stack{Stack: st, t: t, ingest: st.IngestURL(), db: st.Name, conn: st.ClickHouse()}
	s.stages = st.StartStages(false, "ingest", "enrich", "store", "archive")
	st.WaitReady(s.ingest)
	return s
}

// run runs `auditline <command> --config <the stack's> args...` to
// completion.
func (s *stack) run(command string, args ...string) (string, error) {
	return s.Auditline(append([]string{command, "--config", s.ConfigFile()}, args...)...)
}

// row is the latest version of one decision record in ClickHouse.
type row struct {
	RecordID, CallID, Completeness, Alias, ServedGroup, ServedModel string
	Deployment, Provider, Outcome, BlockedBy, GuardrailStatus       string
	EndUser                                                         string
	Tags                                                            []string
	GuardrailNames, GuardrailStatuses                               []string
	Version                                                         uint32
	Attempts, Retries                                               int32
	Fallback, CacheHit, Stream                                      uint8
	CostUSD, SavedUSD                                               float64
	Rows                                                            uint64
}

// latest reads every record's latest version without FINAL (argMax by
// version, which ClickHouse 18.16 has too).
func (s *stack) latest(ctx context.Context) (map[string]row, error) {
	q := "SELECT record_id, argMax(call_id, version), argMax(completeness, version), argMax(requested_alias, version), " +
		"argMax(served_model_group, version), argMax(served_model, version), argMax(deployment_id, version), argMax(provider, version), " +
		"argMax(outcome, version), argMax(blocked_by, version), argMax(guardrail_status, version), argMax(end_user, version), " +
		"argMax(tags, version), argMax(`guardrails.name`, version), argMax(`guardrails.status`, version), max(version), " +
		"argMax(attempt_count, version), argMax(retry_count, version), argMax(fallback_used, version), argMax(cache_hit, version), " +
		"argMax(stream, version), argMax(cost_usd, version), argMax(saved_cost_usd, version), count() FROM `" + s.db + "`." + store.TableDecisions + " GROUP BY record_id"
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.RecordID, &r.CallID, &r.Completeness, &r.Alias, &r.ServedGroup, &r.ServedModel, &r.Deployment, &r.Provider,
			&r.Outcome, &r.BlockedBy, &r.GuardrailStatus, &r.EndUser, &r.Tags, &r.GuardrailNames, &r.GuardrailStatuses, &r.Version,
			&r.Attempts, &r.Retries, &r.Fallback, &r.CacheHit, &r.Stream, &r.CostUSD, &r.SavedUSD, &r.Rows); err != nil {
			return nil, err
		}
		out[r.CallID] = r
	}
	return out, rows.Err()
}

// waitRecords polls ClickHouse until every call id has a record.
func (s *stack) waitRecords(callIDs []string, within time.Duration) map[string]row {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		got, err := s.latest(ctx)
		cancel()
		missing := 0
		if err == nil {
			for _, id := range callIDs {
				if _, ok := got[id]; !ok {
					missing++
				}
			}
			if missing == 0 {
				return got
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s: %d of %d requests have no decision record in ClickHouse (err %v); have %d records", within, missing, len(callIDs), err, len(got))
		}
		time.Sleep(2 * time.Second)
	}
}

// waitAnyRecord polls ClickHouse until one of the call ids has a record.
func (s *stack) waitAnyRecord(callIDs []string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		got, err := s.latest(ctx)
		cancel()
		for _, id := range callIDs {
			if _, ok := got[id]; ok && err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s: none of %d requests has a decision record in ClickHouse (err %v)", within, len(callIDs), err)
		}
		time.Sleep(2 * time.Second)
	}
}
