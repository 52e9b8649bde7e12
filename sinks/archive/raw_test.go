package archive

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/internal/stacktest/binary"
	"github.com/auditline/auditline/privacy/envelope"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/rawlog"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// TestRawEvidence: raw events sealed by the raw log stay retrievable, byte
// for byte and checked against their SHA-256, after Kafka has deleted them
// (DeleteRecords: what retention does, without waiting for the broker's
// retention check); erasing a team's key makes its events unreadable while
// the raw log still verifies and the erasure is listed.
func TestRawEvidence(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	rawTopic := e.topics.RawLiteLLM()
	const n = 40
	marker := "RAW-CONTENT-" + e.name
	var recs []*kgo.Record
	values := map[string][]byte{}
	for i := range n {
		team := []string{"team-a", "team-b"}[i%2]
		v := fmt.Appendf(nil, `{"id":"chatcmpl-%d","metadata":{"user_api_key_team_id":%q},"messages":[{"role":"user","content":"%s %d"}]}`, i, team, marker, i)
		values[fmt.Sprint(i)] = v
		recs = append(recs, &kgo.Record{Topic: rawTopic, Key: fmt.Appendf(nil, "req-%d", i), Value: v,
			Headers: []kgo.RecordHeader{{Key: raw.HeaderSource, Value: []byte("litellm")}, {Key: raw.HeaderEventID, Value: fmt.Appendf(nil, "litellm:chatcmpl-%d:success", i)}}})
	}
	if err := e.w.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	ksDir := filepath.Join(t.TempDir(), "keys")
	ks, err := envelope.OpenFileStore(ksDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Batch.MaxRecords = 7 // several batches per partition: Fetch searches the chain
	cfg.Raw = RawConfig{Enabled: true, KeyStore: KeyStoreConfig{Dir: ksDir}, KeyBy: envelope.ByTeam}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := NewRaw(cfg, e.shared(), rawTopic, ks, Settings{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("raw archiver: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("raw archiver did not stop within 60s")
		}
	}
	t.Cleanup(stop)
	waitFor(t, "every raw event sealed", 2*time.Minute, func() bool { return testutilValue(a.m.records) >= n })
	stop()

	// Kafka forgets them.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, rawTopic)
	if err != nil {
		t.Fatal(err)
	}
	del := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) { del.AddOffset(o.Topic, o.Partition, o.Offset, -1) })
	resp, err := adm.DeleteRecords(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, rawTopic)
	if err != nil {
		t.Fatal(err)
	}
	where := map[int32]int64{} // next offset per partition
	total := int64(0)
	starts.Each(func(o kadm.ListedOffset) {
		end, _ := ends.Lookup(o.Topic, o.Partition)
		if o.Offset != end.Offset {
			t.Fatalf("partition %d: Kafka still starts at %d, end %d", o.Partition, o.Offset, end.Offset)
		}
		where[o.Partition] = end.Offset
		total += end.Offset
	})
	if total != n {
		t.Fatalf("%d raw events in Kafka, want %d", total, n)
	}

	// Every event comes back from the archive, decrypted and checked.
	priv, err := keys.Load(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(priv.Public().(ed25519.PublicKey))
	lay := layout.New(cfg.RawPrefix(rawTopic))
	teamOf := map[string]string{} // offset → key id
	type pos struct {
		p   int32
		off int64
	}
	at := map[int]pos{} // event → where
	for p, end := range where {
		for off := range end {
			f, err := rawlog.Fetch(ctx, e.b, lay, ring, rawTopic, p, off)
			if err != nil {
				t.Fatalf("partition %d offset %d: %v", p, off, err)
			}
			if bytes.Contains(f.Canonical, []byte(marker)) {
				t.Fatalf("partition %d offset %d: content in clear in the archive", p, off)
			}
			pt, err := envelope.Open(ctx, ks, f.Sealed)
			if err != nil {
				t.Fatalf("partition %d offset %d: %v", p, off, err)
			}
			id := f.Sealed.Headers[raw.HeaderEventID]
			var i int
			if _, err := fmt.Sscanf(id, "litellm:chatcmpl-%d:success", &i); err != nil || !bytes.Equal(pt, values[fmt.Sprint(i)]) {
				t.Fatalf("partition %d offset %d (%s): got %s", p, off, id, pt)
			}
			at[i] = pos{p, off}
			teamOf[fmt.Sprint(p, "/", off)] = f.Sealed.KeyID + "|" + []string{"team-a", "team-b"}[i%2]
		}
	}
	if _, err := rawlog.Fetch(ctx, e.b, lay, ring, rawTopic, 0, where[0]+5); !errors.Is(err, rawlog.ErrNotArchived) {
		t.Fatalf("offset past the end: %v, want ErrNotArchived", err)
	}
	vo := verify.Options{Bucket: e.b, Layout: lay, Keys: ring, RetentionMode: bucket.Governance}
	if rep := e.verify(vo); !rep.OK() {
		t.Fatalf("raw log does not verify:\n%s", reportString(rep))
	}

	// Two decision records whose evidence is event 0 (team-a) and event 1
	// (team-b), sealed by the decisions archiver; the CLI gets their raw
	// evidence back.
	var ids [2]string
	var drecs []*kgo.Record
	for i := range 2 {
		d := archivetest.Decision(i)
		sum := sha256.Sum256(values[fmt.Sprint(i)])
		d.Evidence.Sources = []record.Source{{EventID: fmt.Sprintf("litellm:chatcmpl-%d:success", i), Source: "litellm",
			SHA256: hex.EncodeToString(sum[:]), Topic: rawTopic, Partition: at[i].p, Offset: at[i].off}}
		v, err := d.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = d.RecordID
		drecs = append(drecs, &kgo.Record{Topic: e.topics.Decisions(), Key: []byte(d.Request.RequestKey), Value: v})
	}
	if err := e.w.Produce(ctx, drecs...); err != nil {
		t.Fatal(err)
	}
	r := e.start(e.cfg)
	waitFor(t, "decisions sealed", time.Minute, func() bool { return r.sealed() == 2 })
	r.stop(t)

	bin := binary.Auditline(t)
	dir := t.TempDir()
	pubPEM, _ := keys.MarshalPublic(priv.Public().(ed25519.PublicKey))
	pub := filepath.Join(dir, "archive.pub")
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "auditline.yaml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "archive:\n  prefix: %q\n  retention: {mode: GOVERNANCE, period: 1m}\n  raw: {enabled: true, key_by: team, key_store: {dir: %q}}\n", cfg.Prefix, ksDir), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{args[0], "--config", conf}, args[1:]...)...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"),
			"AUDITLINE_S3=http://" + e.bcfg.AccessKey + ":" + e.bcfg.SecretKey + "@" + e.bcfg.Endpoint,
			"AUDITLINE_S3_BUCKET=" + e.bcfg.Bucket}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	outDir := filepath.Join(dir, "evidence")
	for i, id := range ids {
		out, err := run("evidence", "--key", pub, "--out", outDir, id)
		if err != nil || !strings.HasPrefix(out, "ok  "+rawTopic) {
			t.Fatalf("evidence %s: %v\n%s", id, err, out)
		}
		got, err := os.ReadFile(filepath.Join(outDir, fmt.Sprintf("00-%s-%d-%d.json", rawTopic, at[i].p, at[i].off)))
		if err != nil || !bytes.Equal(got, values[fmt.Sprint(i)]) {
			t.Fatalf("evidence %s: the bytes written are not the event's: %v\n%s", id, err, got)
		}
	}

	// Erase team-a.
	out, err := run("erase", "--team", "team-a", "--reason", "ticket-1")
	if err != nil || !strings.HasPrefix(out, "erased: key ") {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	keyID := strings.Fields(out)[2]
	out, err = run("evidence", "--key", pub, ids[0])
	if err != nil || !strings.HasPrefix(out, "erased  "+rawTopic) {
		t.Fatalf("evidence of an erased subject: %v\n%s", err, out)
	}
	if out, err := run("evidence", "--key", pub, ids[1]); err != nil || !strings.HasPrefix(out, "ok  ") {
		t.Fatalf("evidence of another subject after the erasure: %v\n%s", err, out)
	}
	out, err = run("verify", "--key", pub, "--retention-mode", "GOVERNANCE", "--min-retention", "60s")
	if err != nil || !strings.Contains(out, "Raw log of "+rawTopic) || !strings.Contains(out, "erased: key "+keyID) ||
		strings.Count(out, "erased (not altered): ") < 2 || !strings.Contains(out, "under key "+keyID) {
		t.Fatalf("verify after the erasure: %v\n%s", err, out)
	}
	erased, readable := 0, 0
	for p, end := range where {
		for off := range end {
			f, err := rawlog.Fetch(ctx, e.b, lay, ring, rawTopic, p, off)
			if err != nil {
				t.Fatal(err)
			}
			_, err = envelope.Open(ctx, ks, f.Sealed)
			want := teamOf[fmt.Sprint(p, "/", off)]
			switch {
			case errors.Is(err, envelope.ErrErased) && want == keyID+"|team-a":
				erased++
			case err == nil && want != keyID+"|team-a":
				readable++
			default:
				t.Fatalf("partition %d offset %d (%s): %v", p, off, want, err)
			}
		}
	}
	if erased != n/2 || readable != n/2 || !strings.HasPrefix(teamOf[fmt.Sprint(at[0].p, "/", at[0].off)], keyID) {
		t.Fatalf("%d erased, %d readable, want %d each", erased, readable, n/2)
	}
	vo.ErasedKeys = map[string]bool{keyID: true}
	rep := e.verify(vo)
	if !rep.OK() {
		t.Fatalf("raw log does not verify after the erasure:\n%s", reportString(rep))
	}
	listed := 0
	for _, eb := range rep.Erased {
		if eb.KeyID != keyID {
			t.Fatalf("erased under another key: %+v", eb)
		}
		listed += len(eb.Offsets)
	}
	if listed != n/2 {
		t.Fatalf("verify lists %d erased events, want %d: %+v", listed, n/2, rep.Erased)
	}
	ers, err := rawlog.Erasures(ctx, e.b, layout.New(cfg.Prefix))
	if err != nil || len(ers) != 1 || ers[keyID].KeyID != keyID {
		t.Fatalf("erasures: %v %v", ers, err)
	}
}
