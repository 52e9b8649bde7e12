//go:build fault

package fault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/store"
)

const token = "fault-suite-litellm-token"

func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

// TestFaults is the fault suite (see the package doc).
func TestFaults(t *testing.T) {
	payloads := envInt(t, "AUDITLINE_FAULT_PAYLOADS", 200_000)
	seed := envInt(t, "AUDITLINE_FAULT_SEED", time.Now().UnixNano()%1_000_000_000)
	settle := envDuration(t, "AUDITLINE_FAULT_SETTLE", 20*time.Minute)
	// The load is paced so that the faults land while it runs: at 1,000
	// payloads/s (about half of what ingest takes on a 2-core box) 200,000
	// payloads take 200 s, and the 13 faults are spread over that time.
	rate := envInt(t, "AUDITLINE_FAULT_RATE", 1000)
	loadTime := time.Duration(float64(payloads) / float64(max(rate, 1)) * float64(time.Second))
	meanGap := max(loadTime/14, 4*time.Second)
	stacktest.Say("fault: seed %d (replay with AUDITLINE_FAULT_SEED=%d), %d payloads at %d/s", seed, seed, payloads, rate)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6661756c74))
	t0 := time.Now()

	srv := stacktest.PrivateServers(t, "kafka", "clickhouse", "minio")
	servers := map[string]*testenv.Private{}
	for _, name := range []string{"kafka", "clickhouse", "minio"} {
		servers[name] = srv.Private(name)
		stacktest.Say("fault: private %s on %s", name, servers[name].Addr)
	}
	paused := map[string]bool{}
	t.Cleanup(func() { // never leave a frozen server behind
		for name, p := range servers {
			if paused[name] {
				p.Signal(t, "CONT")
			}
		}
	})

	st := stacktest.New(t, srv, "")
	if st.LogDir = os.Getenv("AUDITLINE_FAULT_LOGS"); st.LogDir == "" {
		st.LogDir = filepath.Join(st.Dir, "logs")
	}
	logDir := st.LogDir
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &st.Config
	cfg.Kafka.Partitions = 4
	cfg.Ingest.Auth.Tokens = []auth.Token{{Name: "fault-litellm", SHA256: auth.Hash(token),
		Scopes: []auth.Scope{auth.ScopeLiteLLM, auth.ScopeAlerts, auth.ScopeAudit, auth.ScopeGateway}}}
	cfg.Store.Linger = store.DefaultLinger
	cfg.Archive.Prefix = "fault/" + st.Name + "/"
	cfg.Archive.Retention = archive.RetentionConfig{Mode: "COMPLIANCE", Period: retention.Exactly(time.Hour)}
	cfg.Archive.Batch.MaxAge = 5 * time.Second
	cfg.Archive.Checkpoint.Interval = 20 * time.Second
	cfgPath := st.ConfigFile()
	st.Migrate()
	run := func(args ...string) (string, error) { return st.Auditline(args...) }

	order := []string{"ingest", "enrich", "store", "archive"}
	stages := st.StartStages(true, order...)
	ingestURL := st.IngestURL()
	st.WaitReady(ingestURL)
	stacktest.Say("fault: stages up; ingest at %s; logs in %s", ingestURL, logDir)

	// Load: one loadgen process at full speed, never retrying a refusal.
	keysFile := filepath.Join(st.Dir, "accepted-keys.txt")
	lg := st.AuditlineProc("loadgen", "loadgen", "--url", ingestURL, "--token", token,
		"--payloads", strconv.FormatInt(payloads, 10), "--seed", strconv.FormatInt(seed, 10),
		"--rate", strconv.FormatInt(rate, 10), "--accepted-keys", keysFile)
	lg.Start()
	lgExited, lgExit := lg.Exited()
	lgDone := make(chan error, 1)
	go func() { <-lgExited; lgDone <- lgExit() }()

	// Faults: every stage killed twice, each server restarted once,
	// ClickHouse and MinIO frozen once each, in a seeded order at seeded
	// times. The ingest kills come first so that they hit the load.
	type fault struct {
		name string
		do   func()
	}
	killStage := func(st string) fault {
		return fault{"SIGKILL " + st, func() {
			stages[st].Kill()
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
			stages[st].Start()
		}}
	}
	restart := func(srv string) fault {
		return fault{"restart " + srv, func() {
			servers[srv].Stop(t)
			time.Sleep(time.Duration(1000+rng.IntN(4000)) * time.Millisecond)
			servers[srv].Start(t)
		}}
	}
	pause := func(srv string) fault {
		return fault{"SIGSTOP/SIGCONT " + srv, func() {
			d := time.Duration(5+rng.IntN(16)) * time.Second
			servers[srv].Signal(t, "STOP")
			paused[srv] = true
			time.Sleep(d)
			servers[srv].Signal(t, "CONT")
			paused[srv] = false
		}}
	}
	first := []fault{killStage("ingest"), killStage("enrich"), killStage("store"), killStage("archive"), restart("kafka")}
	rest := []fault{killStage("ingest"), killStage("enrich"), killStage("store"), killStage("archive"),
		restart("clickhouse"), restart("minio"), pause("clickhouse"), pause("minio")}
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	var lgErr error
	lgFinished := false
	for i, f := range append(first, rest...) {
		gap := meanGap/2 + time.Duration(rng.Int64N(int64(meanGap)))
		select {
		case lgErr = <-lgDone:
			lgFinished = true
			stacktest.Say("fault: loadgen finished after %s", time.Since(t0).Round(time.Second))
			time.Sleep(gap)
		case <-time.After(gap):
		}
		stacktest.Say("fault: fault %d: %s (loadgen running: %v)", i+1, f.name, !lgFinished)
		f.do()
	}
	if !lgFinished {
		select {
		case lgErr = <-lgDone:
		case <-time.After(30 * time.Minute):
			t.Fatalf("loadgen did not finish within 30 min:\n%s", lg.Log())
		}
		stacktest.Say("fault: loadgen finished after %s", time.Since(t0).Round(time.Second))
	}
	lgText := lg.Output()
	if lgErr != nil {
		t.Fatalf("loadgen: %v\n%s", lgErr, lgText)
	}
	sent, accepted, refused := parseLoadgen(t, lgText)
	stacktest.Say("fault: loadgen: %s", strings.ReplaceAll(strings.TrimSpace(lgText), "\n", "; "))
	want := readKeys(t, keysFile)
	stacktest.Say("fault: %d request keys accepted; waiting up to %s for ClickHouse and the archive", len(want), settle)

	// Wait until ClickHouse and the archive hold every accepted request at
	// the same latest version.
	ctx := context.Background()
	b := st.Bucket()
	arch := st.Archive()
	var ch map[string]stacktest.Record
	var err error
	deadline := time.Now().Add(settle)
	for {
		ch, err = st.Records(ctx)
		if err == nil {
			err = arch.Update(ctx)
		}
		pending := 0
		if err == nil {
			latest := arch.Latest()
			for id := range want {
				c, ok := ch[id]
				if !ok || latest[id] != c.Latest {
					pending++
				}
			}
			if pending == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("after %s: %d accepted requests not yet in both ClickHouse and the archive at one latest version (last error: %v)", settle, pending, err)
			break
		}
		stacktest.Say("fault: settling: %d of %d accepted requests pending (ClickHouse %d records, archive %d leaves; err %v)", pending, len(want), len(ch), len(arch.Leaves), err)
		time.Sleep(10 * time.Second)
	}
	// Stop every stage cleanly, then read the final state once more.
	for _, st := range order {
		stages[st].Stop()
	}
	if ch, err = st.Records(ctx); err != nil {
		t.Fatal(err)
	}
	if err := arch.Update(ctx); err != nil {
		t.Fatal(err)
	}
	latest := arch.Latest()

	var recorded, archived, chDup, arDup, missingCH, missingAR, disagree, extra int
	for id := range want {
		c, ok := ch[id]
		if !ok {
			missingCH++
		} else {
			recorded++
			chDup += c.RowsAtLatest - 1
		}
		v, ok := latest[id]
		if !ok {
			missingAR++
		} else {
			archived++
			arDup += arch.Leaves[stacktest.IDVersion{ID: id, V: v}] - 1
		}
		if ok && c.Latest != v {
			disagree++
		}
	}
	for id := range ch {
		if !want[id] {
			extra++
		}
	}
	verifyOut, verifyErr := run("verify", "--config", cfgPath, "--key", st.PublicKey(), "--retention-mode", "COMPLIANCE")
	var kills, exits []string
	for _, name := range order {
		k, e := stages[name].Counts()
		kills = append(kills, fmt.Sprintf("%s %d", name, k))
		exits = append(exits, fmt.Sprintf("%s %d", name, e))
	}
	// (A panic in any log fails the test when the stack is cleaned up.)
	for _, name := range order {
		data := stages[name].Log()
		// Secrets never reach the logs, not even in the errors of outages.
		for what, secret := range map[string]string{"ingest token": token, "S3 secret key": srv.S3.SecretKey} {
			if secret != "" && bytes.Contains(data, []byte(secret)) {
				t.Errorf("the %s appears in auditline %s's log", what, name)
			}
		}
	}

	summary := fmt.Sprintf(`fault suite result (seed %d, %s):
  sent              %d payloads
  accepted          %d payloads (%d request keys)
  refused           %d payloads
  recorded          %d of %d accepted requests have a latest record in ClickHouse
  archived          %d of %d accepted requests have a latest leaf in the archive
  duplicates visible %d in ClickHouse (rows at a record's latest version beyond one, FINAL), %d in the archive (leaves at a record's latest version beyond one)
  missing           %d in ClickHouse, %d in the archive
  disagreeing       %d (ClickHouse and archive latest versions differ)
  extra records     %d (from refused bodies whose events reached Kafka before the refusal, or gateway-only requests)
  SIGKILLs          %s; exits on their own: %s
  verify            %v
%s`, seed, time.Since(t0).Round(time.Second), sent, accepted, len(want), refused, recorded, len(want), archived, len(want),
		chDup, arDup, missingCH, missingAR, disagree, extra, strings.Join(kills, ", "), strings.Join(exits, ", "),
		errString(verifyErr), indent(lastLines(verifyOut, 12)))
	fmt.Println(summary)
	if out := os.Getenv("AUDITLINE_FAULT_SUMMARY"); out != "" {
		_ = os.WriteFile(out, []byte(summary+"\n"), 0o644)
	}
	if missingCH+missingAR+chDup+arDup+disagree > 0 {
		t.Errorf("lost or duplicated records: missing %d/%d, duplicates %d/%d, disagreeing %d", missingCH, missingAR, chDup, arDup, disagree)
	}
	if verifyErr != nil {
		t.Errorf("auditline verify: %v\n%s", verifyErr, verifyOut)
	}
	if accepted == 0 || len(want) == 0 {
		t.Errorf("nothing was accepted")
	}
	if verifyErr == nil {
		worm(t, b, arch.Lay, func() (string, error) {
			return run("verify", "--config", cfgPath, "--key", st.PublicKey(), "--retention-mode", "COMPLIANCE")
		})
	}
}

// worm attacks the sealed archive of the full run: deleting a batch, a
// manifest and a checkpoint version (even with governance bypass),
// overwriting them, and shortening their retention must all be refused by
// the server, and verify must still pass; then a forged newer version of a
// batch (a plain PUT on the versioned bucket, which Object Lock allows) must
// make verify fail and name the object.
func worm(t *testing.T, b *bucket.Bucket, lay layout.Layout, verifyRun func() (string, error)) {
	ctx := context.Background()
	first := func(prefix, suffix string) string {
		var key string
		_ = b.List(ctx, prefix, "", func(in bucket.Info) error {
			if key == "" && strings.HasSuffix(in.Key, suffix) {
				key = in.Key
			}
			return nil
		})
		if key == "" {
			t.Fatalf("no object under %s", prefix)
		}
		return key
	}
	targets := []string{first(lay.BatchesPrefix(), ".parquet"), first(lay.ManifestsPrefix(), ".manifest"), first(lay.CheckpointsPrefix(), ".checkpoint")}
	cl := b.Client()
	refused := 0
	for _, key := range targets {
		in, err := b.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if in.LockMode != bucket.Compliance || !in.RetainUntil.After(time.Now()) {
			t.Errorf("%s: lock %s until %s, want COMPLIANCE in the future", key, in.LockMode, in.RetainUntil)
		}
		for _, bypass := range []bool{false, true} {
			if err := cl.RemoveObject(ctx, b.Name(), key, minio.RemoveObjectOptions{VersionID: in.VersionID, GovernanceBypass: bypass}); err == nil {
				t.Errorf("delete of sealed %s (bypass %v) was not refused", key, bypass)
			} else {
				refused++
			}
		}
		if err := b.Put(ctx, key, []byte("forged"), "", bucket.Lock{Mode: bucket.Compliance, Until: time.Now().Add(time.Hour)}); !errors.Is(err, bucket.ErrExists) {
			t.Errorf("overwrite of sealed %s = %v, want refused", key, err)
		} else {
			refused++
		}
		short, mode := time.Now().Add(time.Minute), minio.Compliance
		if err := cl.PutObjectRetention(ctx, b.Name(), key, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &short, VersionID: in.VersionID, GovernanceBypass: true}); err == nil {
			t.Errorf("shortening the retention of sealed %s was not refused", key)
		} else {
			refused++
		}
	}
	out, err := verifyRun()
	if err != nil {
		t.Errorf("verify after the refused attacks: %v\n%s", err, out)
	}
	// Tamper: a newer version with one byte flipped hides the sealed one
	// from a plain GET; verify must notice.
	data, _, err := b.Get(ctx, targets[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if _, err := cl.PutObject(ctx, b.Name(), targets[0], bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("plain PUT of a new version: %v", err)
	}
	out, err = verifyRun()
	detected := err != nil && strings.Contains(out, targets[0])
	if !detected {
		t.Errorf("verify did not name the tampered %s: %v\n%s", targets[0], err, out)
	}
	stacktest.Say("fault: WORM on the full run: %d of %d delete/overwrite/shorten attempts on a sealed batch, manifest and checkpoint refused by MinIO; verify still OK; a forged newer version of %s detected by verify: %v",
		refused, 4*len(targets), targets[0], detected)
	if f := os.Getenv("AUDITLINE_FAULT_SUMMARY"); f != "" {
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(fh, "  WORM              %d of %d delete/overwrite/retention-shortening attempts refused; tamper (forged newer version of a batch) detected by verify: %v\n", refused, 4*len(targets), detected)
			fh.Close()
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "OK"
	}
	return "FAILED: " + err.Error()
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

var loadgenLine = regexp.MustCompile(`payloads: sent (\d+), accepted (\d+), refused (\d+)`)

func parseLoadgen(t *testing.T, out string) (sent, accepted, refused int) {
	t.Helper()
	m := loadgenLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in loadgen output:\n%s", out)
	}
	sent, _ = strconv.Atoi(m[1])
	accepted, _ = strconv.Atoi(m[2])
	refused, _ = strconv.Atoi(m[3])
	return
}

// readKeys returns the record ids of the accepted request keys.
func readKeys(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			out[record.ID(k)] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
