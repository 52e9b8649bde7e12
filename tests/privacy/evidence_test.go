package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/sinks/archive"
)

// TestRawEvidencePipeline: the whole pipeline (ingest, enrich, archive with
// archive.raw) on real Kafka and MinIO. A LiteLLM event posted to ingest
// becomes a record; `auditline evidence` gets the event back from the
// archive's raw log by the record's own evidence pointer (topic, partition,
// offset, SHA-256) and writes its original bytes; `auditline erase --team`
// destroys the team's key and evidence then says erased.
func TestRawEvidencePipeline(t *testing.T) {
	s := stacktest.New(t, stacktest.Shared(t), "")
	c := &s.Config
	c.Enrich.LiteLLMWait = 2 * time.Second
	c.Archive.Batch.MaxAge = time.Second
	c.Archive.Raw = archive.RawConfig{Enabled: true, KeyStore: archive.KeyStoreConfig{Dir: filepath.Join(s.Dir, "raw-keys")}, KeyBy: "team"}
	s.Migrate()
	example, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "ingest/testdata/examples/01_success_plain_openai.json"))
	if err != nil {
		t.Fatal(err)
	}
	key := "evidence-" + filepath.Base(s.Dir)
	body := bytes.ReplaceAll(example, []byte("b980db26-9512-45cc-b1da-c511a363b83f"), []byte(key))
	run := s.RunInProcess("archive", "enrich", "ingest")
	s.WaitReady(s.IngestURL())
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, s.IngestURL()+"/v1/litellm", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+stacktest.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || attempt == 30 {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		time.Sleep(2 * time.Second)
	}
	ctx := context.Background()
	var id string
	stacktest.WaitFor(t, "the record of "+key, 3*time.Minute, func() error {
		ds, _, err := stacktest.Decisions(ctx, c.Kafka, c.Topics().Decisions())
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Request.RequestKey == key && len(d.Evidence.Sources) > 0 {
				id = d.RecordID
				return nil
			}
		}
		return fmt.Errorf("no record of %s yet", key)
	})
	conf := s.ConfigFile()
	out := filepath.Join(s.Dir, "evidence")
	var got string
	stacktest.WaitFor(t, "the record and its raw evidence sealed", 3*time.Minute, func() error {
		o, err := s.Auditline("evidence", "--config", conf, "--key", s.PublicKey(), "--out", out, id)
		got = o
		if err != nil {
			return fmt.Errorf("%v: %s", err, o)
		}
		return nil
	})
	if !strings.HasPrefix(got, "ok  "+c.Topics().RawLiteLLM()+"/") {
		t.Fatalf("evidence:\n%s", got)
	}
	files, err := filepath.Glob(filepath.Join(out, "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("evidence files: %v %v", files, err)
	}
	// "ok" means their SHA-256 is the record's pointer; they are the event
	// as ingest put it on the raw topic (the object of the POSTed body).
	if b, err := os.ReadFile(files[0]); err != nil || !bytes.Contains(b, []byte(`"`+key+`"`)) || !json.Valid(b) {
		t.Fatalf("the bytes evidence wrote are not the event posted: %v\n%s", err, b)
	}
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}

	o := s.Must("erase", "--config", conf, "--team", "0b9f6c3e-5d8a-4f8e-9c61-2a7e4d1b3f90")
	if !strings.HasPrefix(o, "erased: key ") {
		t.Fatalf("erase: %s", o)
	}
	o, err = s.Auditline("evidence", "--config", conf, "--key", s.PublicKey(), id)
	if err != nil || !strings.HasPrefix(o, "erased  ") {
		t.Fatalf("evidence after erase: %v\n%s", err, o)
	}
}
