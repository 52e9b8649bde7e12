package archive

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// buildAuditline compiles the auditline command once per test binary run.
var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

func buildAuditline(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "auditline-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "auditline")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/auditline/auditline/cmd/auditline")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build auditline: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// child is one `auditline archive` process.
type child struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan error
}

func (e *env) spawn(t *testing.T, bin string, extra ...string) *child {
	t.Helper()
	cmd := exec.Command(bin, "archive")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"AUDITLINE_KAFKA=" + strings.Join(e.kafka.Brokers, ","),
		"AUDITLINE_KAFKA_COMMIT_INTERVAL=200ms",
		"AUDITLINE_TOPIC_PREFIX=" + e.topics.Prefix,
		"AUDITLINE_S3=http://" + e.bcfg.AccessKey + ":" + e.bcfg.SecretKey + "@" + e.bcfg.Endpoint,
		"AUDITLINE_S3_BUCKET=" + e.bcfg.Bucket,
		"AUDITLINE_OPS_LISTEN=",
		"AUDITLINE_LOG_LEVEL=warn",
		"AUDITLINE_ARCHIVE_SIGNING_KEY_FILE=" + e.keyFile,
		"AUDITLINE_ARCHIVE_GROUP=" + e.cfg.Group,
		"AUDITLINE_ARCHIVE_INSTANCE_ID=" + e.name + "-0",
		"AUDITLINE_ARCHIVE_RETENTION_MODE=GOVERNANCE",
		"AUDITLINE_ARCHIVE_RETENTION_PERIOD=10m",
		"AUDITLINE_ARCHIVE_BATCH_MAX_RECORDS=2500",
		"AUDITLINE_ARCHIVE_BATCH_MAX_AGE=400ms",
		"AUDITLINE_ARCHIVE_CHECKPOINT_INTERVAL=300ms",
	}
	cmd.Env = append(env, extra...)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, logs: logs, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	return c
}

// TestCrashRecovery kills `auditline archive` with SIGKILL at random points
// while 100,000 records flow in, restarts it each time, and then checks with
// verify that the archive is intact and that every record is in exactly one
// batch. A crash between a batch upload and its manifest, or between the
// manifest and the offset commit, must neither duplicate nor skip a record.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const total = 100_000
	e := newEnv(t, 4)
	bin := buildAuditline(t)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d", seed)

	// Produce in the background, in chunks, while the archiver is killed.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for from := 0; from < total; from += 5000 {
			e.produce(from, from+5000)
			time.Sleep(100 * time.Millisecond)
		}
	}()

	kills := 0
	c := e.spawn(t, bin)
	deadline := time.Now().Add(90 * time.Second)
	for kills < 8 && time.Now().Before(deadline) {
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		select {
		case err := <-c.done:
			t.Fatalf("archiver exited on its own: %v\n%s", err, c.logs)
		default:
		}
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-c.done
		kills++
		c = e.spawn(t, bin)
	}
	<-produced
	// Let the last process catch up, then stop it gracefully.
	ctx := context.Background()
	want := e.kafkaOffsets()
	waitFor(t, "the archive to reach the end of every partition", 120*time.Second, func() bool {
		for p, offs := range want {
			if e.headTo(ctx, p) < offs[len(offs)-1]+1 {
				return false
			}
		}
		return true
	})
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("archiver exit after SIGTERM: %v\n%s", err, c.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("archiver did not stop after SIGTERM")
	}

	rep := e.verify(e.verifyOpts())
	if !rep.OK() {
		t.Fatalf("verify after %d SIGKILLs:\n%s", kills, reportString(rep))
	}
	if got := e.exactlyOnce(); got != total {
		t.Fatalf("exactly once over %d records, want %d", got, total)
	}
	orphans := 0
	for _, w := range rep.Warnings {
		if w.Check == verify.CheckOrphan {
			orphans++
		}
	}
	t.Logf("%d SIGKILLs; %d records in %d batches, each exactly once; %d checkpoints; %d orphaned uploads (crash before the manifest); verify %.0f leaves/s",
		kills, rep.Records, rep.Batches, rep.Checkpoints, orphans, rep.LeavesPerSecond())
}

// headTo returns the end offset of partition p's chain.
func (e *env) headTo(ctx context.Context, p int32) int64 {
	key, err := e.b.Last(ctx, e.layout().ManifestPrefix(p), 20)
	if err != nil || key == "" {
		return -1
	}
	data, _, err := e.b.Get(ctx, key)
	if err != nil {
		return -1
	}
	ring, _ := verify.LoadBucketKeys(ctx, e.b, e.layout())
	m, _, err := manifest.Open(data, ring)
	if err != nil {
		return -1
	}
	return m.To
}

var _ = bucket.ErrExists
