package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	dauth "github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/store"
)

// TestAllVerticalSlice is the foundation's end-to-end proof, on the real
// Kafka, ClickHouse and MinIO, through the binary as a user runs it:
// `auditline migrate`, then `auditline all`; one LiteLLM generic_api body in
// its default array form (a fallback request: azure 429 then anthropic, and a
// plain OpenAI request) posted to ingest becomes one decision record per
// request in ClickHouse and one leaf each in a sealed Parquet batch on the
// Object Lock bucket, in COMPLIANCE mode, which `auditline verify` and an
// offline inclusion proof accept.
func TestAllVerticalSlice(t *testing.T) { testenv.ForEachClickHouse(t, testAllVerticalSlice) }

func testAllVerticalSlice(t *testing.T) {
	srv := stacktest.Shared(t)
	s := stacktest.New(t, srv, "")
	dir, name := s.Dir, s.Name
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, err := s.AuditlineIn(stdin, args...)
		if err != nil {
			t.Fatalf("auditline %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	key := filepath.Join(dir, "archive.pem")
	run("", "keys", "generate", "--out", key)
	hash := strings.TrimSpace(run("admin-pw\n", "passwd"))
	const token = "slice-ingest-token"
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &s.Config
	c.Kafka.Partitions = 2
	c.Ingest.Auth.Tokens = []auth.Token{{Name: "litellm", File: filepath.Join(dir, "token"), Scopes: []auth.Scope{auth.ScopeLiteLLM, auth.ScopeOversight, auth.ScopeAccess}, Reviewer: auth.AnyReviewer}}
	c.Archive.Prefix = "slice/" + name + "/"
	c.Archive.SigningKeyFile = key
	// COMPLIANCE for 10 minutes: the lock must still hold when the test
	// tries to delete the sealed batch, after the waits for ClickHouse and
	// for the proofs (up to 2 minutes each) and five CLI runs; the batch can
	// be sealed before the first of those waits starts, and on a loaded box
	// 2 minutes could pass first.
	c.Archive.Retention.Mode, c.Archive.Retention.Period = "COMPLIANCE", retention.Exactly(10*time.Minute)
	c.Dashboard.Ingest.TokenFile = filepath.Join(dir, "token")
	c.Dashboard.Auth.Users = []dauth.UserConfig{{Name: "admin", PasswordHash: hash, Role: "admin", Tenants: []string{"*"}}}
	config := s.ConfigFile()

	run("", "migrate", "--config", config)
	conn := s.ClickHouse()
	s.Start("all")
	ingest := s.IngestURL()
	stacktest.WaitFor(t, "ingest and dashboard ready", time.Minute, func() error {
		for _, u := range []string{ingest, s.DashboardURL()} {
			if err := stacktest.Ready(nil, u); err != nil {
				return err
			}
		}
		return nil
	})

	// One LiteLLM callback body, array form, as the proxy posts it.
	body, err := os.ReadFile("../../ingest/testdata/examples/09_generic_api_batch_post_body_json_array.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, ingest+"/v1/litellm", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(reply), `"accepted":3`) {
		t.Fatalf("POST /v1/litellm: %s %s", resp.Status, reply)
	}

	// ClickHouse: one record per request, joined across its two payloads.
	type row struct {
		requested, served, provider, outcome, team string
		fallback                                   uint8
		attempts                                   int32
		cost                                       float64
	}
	want := map[string]row{
		"7d2c3b9e-0f4a-4e1b-a3c5-9e8f1d2c6b47": {requested: "gpt-4o", served: "claude-sonnet-4-5-20250929", provider: "anthropic", outcome: "success", fallback: 1, attempts: 2},
		"b980db26-9512-45cc-b1da-c511a363b83f": {requested: "gpt-4o", served: "gpt-4o", provider: "openai", outcome: "success", attempts: 1},
	}
	got := map[string]row{}
	stacktest.WaitFor(t, "both decision records in ClickHouse", 2*time.Minute, func() error {
		rows, err := conn.Query(context.Background(), fmt.Sprintf(
			"SELECT request_key, requested_alias, served_model, provider, outcome, team_id, fallback_used, attempt_count, cost_usd FROM `%s`."+store.ViewLatest, name))
		if err != nil {
			return err
		}
		defer rows.Close()
		clear(got)
		for rows.Next() {
			var k string
			var r row
			if err := rows.Scan(&k, &r.requested, &r.served, &r.provider, &r.outcome, &r.team, &r.fallback, &r.attempts, &r.cost); err != nil {
				return err
			}
			got[k] = r
		}
		if len(got) < len(want) {
			return fmt.Errorf("%d of %d records", len(got), len(want))
		}
		return rows.Err()
	})
	if len(got) != len(want) {
		t.Fatalf("records %v, want exactly the keys of %v", got, want)
	}
	for k, w := range want {
		g := got[k]
		if g.requested != w.requested || g.served != w.served || g.provider != w.provider || g.outcome != w.outcome ||
			g.fallback != w.fallback || g.attempts != w.attempts || g.team != "0b9f6c3e-5d8a-4f8e-9c61-2a7e4d1b3f90" || g.cost <= 0 {
			t.Errorf("record %s: got %+v, want %+v with the team and a cost", k, g, w)
		}
	}

	// The archive: each record is a leaf of a sealed batch, provable offline.
	var batch string
	for k := range want {
		id := record.ID(k)
		proof := filepath.Join(dir, id+".json")
		stacktest.WaitFor(t, "record "+id+" sealed", 2*time.Minute, func() error {
			if out, err := s.Auditline("prove", "--config", config, "--out", proof, id); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		out := run("", "verify-proof", "--key", key+".pub", proof)
		m := regexp.MustCompile(`is leaf \d+ of \d+ in (\S+\.parquet)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("verify-proof: %s", out)
		}
		batch = m[1]
	}
	out := run("", "verify", "--config", config, "--min-retention", "1m")
	if !strings.Contains(out, "OK") || !strings.Contains(out, "2 leaves") {
		t.Errorf("verify:\n%s", out)
	}
	t.Logf("verify:\n%s", out)

	// The batch object is under Object Lock, COMPLIANCE: no one can delete it.
	s3 := srv.S3
	mc, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Secure: s3.Secure})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := mc.StatObject(ctx, s3.Bucket, batch, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mode, until, err := mc.GetObjectRetention(ctx, s3.Bucket, batch, st.VersionID)
	if err != nil || mode == nil || *mode != minio.Compliance || until == nil || until.Before(time.Now()) {
		t.Fatalf("batch %s retention: %v %v %v", batch, mode, until, err)
	}
	if err := mc.RemoveObject(ctx, s3.Bucket, batch, minio.RemoveObjectOptions{VersionID: st.VersionID, GovernanceBypass: true}); err == nil {
		t.Fatalf("deleting the sealed batch %s version %s succeeded", batch, st.VersionID)
	}
	t.Logf("sealed batch s3://%s/%s: COMPLIANCE until %s; delete refused", s3.Bucket, batch, until.Format(time.RFC3339))
}
