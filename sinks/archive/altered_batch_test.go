package archive

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// TestProveRefusesAlteredBatch: a newer version put over a sealed batch
// object (a versioned bucket allows it; Object Lock keeps only the sealed
// version) whose footer has a few bytes altered — testdata/
// arrow-schema-oom.parquet, found by mutating a real batch (tests/hostile),
// on which arrow-go's Arrow schema decoding tries to allocate ~300 GB, a
// fatal out-of-memory that no recover() catches — is refused by prove as
// altered before a byte of it is parsed, and verify reports it. Before the
// fix this test killed the test binary (and the same input killed
// `auditline prove` and the dashboard serving proofs).
func TestProveRefusesAlteredBatch(t *testing.T) {
	crasher, err := os.ReadFile("testdata/arrow-schema-oom.parquet")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 1)
	e.produce(0, 300)
	r := e.start(e.cfg)
	waitFor(t, "sealed", 60*time.Second, func() bool { return r.sealed() == 300 })
	r.stop(t)
	ctx := context.Background()
	lay := e.layout()
	mkey, err := e.b.First(ctx, lay.ManifestPrefix(0), "")
	if err != nil || mkey == "" {
		t.Fatal(mkey, err)
	}
	key, _, _ := strings.Cut(strings.Split(string(e.get(t, mkey)), `"object_key":"`)[1], `"`)
	e.replace(t, key, crasher)

	id := record.ID(archivetest.Decision(0).Request.RequestKey)
	_, err = verify.Prove(ctx, id, verify.ProveOptions{Bucket: e.b, Layout: lay, Keys: e.verifyOpts().Keys})
	if !errors.Is(err, verify.ErrAltered) || !strings.Contains(err.Error(), key) {
		t.Fatalf("prove over an altered batch: %v, want ErrAltered naming %s", err, key)
	}
	rep := e.verify(e.verifyOpts())
	if rep.OK() || !rep.Has(verify.CheckObject, key) {
		t.Fatalf("verify did not report the altered %s:\n%s", key, reportString(rep))
	}
}
