package hostile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/stacktest"
)

// TestHostileDownstream sends every case of the corpus that ingest accepts
// through the whole pipeline — `auditline ingest`, `enrich`, `store` and
// `archive` processes on the real Kafka, ClickHouse and MinIO — and checks
// that no accepted event is lost after ingest: every request key on the raw
// topics has exactly one latest decision record in ClickHouse and one leaf
// at that version in the archive, no stage panicked, and `auditline verify`
// passes. (The replayed case is delivered twice; enrich drops the copy, so
// it still yields one record.)
func TestHostileDownstream(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the whole pipeline")
	}
	st := stacktest.New(t, stacktest.Shared(t), "")
	cfg := &st.Config
	cfg.Ingest.ReadTimeout, cfg.Ingest.ProduceTimeout = 3*time.Second, 30*time.Second
	cfg.Ingest.Auth.Tokens = []auth.Token{
		{Name: "all", SHA256: auth.Hash(tokAll), Scopes: auth.Scopes, Reviewer: auth.AnyReviewer},
		{Name: "oversight", SHA256: auth.Hash(tokDash), Scopes: []auth.Scope{auth.ScopeOversight}, Reviewer: auth.AnyReviewer},
	}
	cfg.Enrich.LiteLLMWait = 10 * time.Second
	cfg.Archive.Prefix = "hostile/" + st.Name + "/"
	st.Migrate()
	stages := st.StartStages(false, "ingest", "enrich", "store", "archive")
	order := []string{"ingest", "enrich", "store", "archive"}
	s := &server{url: st.IngestURL()}
	st.WaitReadyClient(client, s.url)

	// Every case ingest accepts (2xx), as the corpus states.
	sent := 0
	for _, c := range loadCorpus(t) {
		if c.Status/100 != 2 || strings.HasPrefix(c.Client, "slow") {
			continue
		}
		body := buildBody(t, c.Body)
		n := 1
		if c.Client == "replay" {
			n = 2
		}
		for range n {
			if a := s.do(t, c, body); a.status != c.Status {
				t.Fatalf("%s: %d %s, the corpus says %d", c.Name, a.status, a.body, c.Status)
			}
			sent++
		}
	}

	// The request keys ingest put on the raw topics are the records owed.
	topics := cfg.Topics()
	kctx, kcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	rkeys, err := stacktest.TopicKeys(kctx, cfg.Kafka, topics.RawLiteLLM(), topics.RawGateway())
	kcancel()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // record id → request key
	for k := range rkeys {
		want[record.ID(k)] = k
	}
	stacktest.Say("hostile downstream: %d accepted bodies, %d request keys on the raw topics", sent, len(want))
	if len(want) == 0 {
		t.Fatal("nothing reached the raw topics")
	}

	arch := st.Archive()
	ctx := context.Background()
	var ch map[string]stacktest.Record
	var pending []string
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ch, err = st.Records(ctx)
		if err == nil {
			err = arch.Update(ctx)
		}
		pending = pending[:0]
		if err == nil {
			latest := arch.Latest()
			for id, k := range want {
				if c, ok := ch[id]; !ok || latest[id] != c.Latest {
					pending = append(pending, k)
				}
			}
			if len(pending) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 min, %d request keys have no record in both ClickHouse and the archive (err %v): %q", len(pending), err, pending)
		}
		time.Sleep(2 * time.Second)
	}
	st.StopAll()
	latest := arch.Latest()
	for id, k := range want {
		if n := ch[id].RowsAtLatest; n != 1 {
			t.Errorf("request %q: %d rows at its latest version in ClickHouse", k, n)
		}
		if n := arch.Leaves[stacktest.IDVersion{ID: id, V: latest[id]}]; n != 1 {
			t.Errorf("request %q: %d archived leaves at its latest version", k, n)
		}
	}
	for id := range ch {
		if _, ok := want[id]; !ok {
			t.Errorf("record %s in ClickHouse for no request key on the raw topics", id)
		}
	}
	// (A panic in any stage's log fails the test when the stack is cleaned up.)
	for _, name := range order {
		if k, e := stages[name].Counts(); e > 0 {
			t.Errorf("auditline %s exited on its own %d times (killed %d)", name, e, k)
		}
	}
	if out, err := st.Auditline("verify", "--config", st.ConfigFile(), "--key", st.PublicKey(), "--retention-mode", "GOVERNANCE"); err != nil {
		t.Errorf("auditline verify: %v\n%s", err, out)
	}
	t.Logf("%d accepted bodies → %d request keys → %d records in ClickHouse, %d leaves in the archive", sent, len(want), len(ch), len(arch.Leaves))
}
