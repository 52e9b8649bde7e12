package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/fold"
	"github.com/auditline/auditline/privacy/rules"
	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/evidence"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// TestRulesObjectsVerified: verify checks that every rules_hash a sealed
// record carries has its sealed rules object (privacy/rules), with the
// bytes of that hash: a rules object altered or deleted is a failure naming
// its key; records of two rule sets need both.
func TestRulesObjectsVerified(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	r1 := fold.NewDefaultRules()
	r2 := fold.NewDefaultRules()
	r2.NearMiss.BudgetPct = 95
	c1, h1, _ := r1.Canonical()
	c2, h2, _ := r2.Canonical()
	var recs []*kgo.Record
	for i := range 40 {
		d := archivetest.Decision(i)
		d.RulesHash = h1
		if i >= 30 {
			d.RulesHash = h2
		}
		if i%10 == 9 {
			d.RulesHash = "" // a record built before issue 19 names no rules
		}
		v, err := d.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: e.topics.Decisions(), Key: []byte(d.Request.RequestKey), Value: v})
	}
	if err := e.w.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	lock := bucket.Lock{Mode: bucket.Governance, Until: time.Now().Add(time.Minute)}
	k1, _, err := rules.Seal(ctx, e.b, e.cfg.Prefix, c1, lock)
	if err != nil {
		t.Fatal(err)
	}
	r := e.start(e.cfg)
	waitFor(t, "40 records sealed", 60*time.Second, func() bool { return r.sealed() == 40 })
	r.stop(t)
	end := time.Now().Add(time.Second)
	o := e.verifyOpts()

	// The second rule set was never sealed.
	k2, _ := rules.Key(e.cfg.Prefix, h2)
	rep := e.verify(o)
	f := mustName(t, rep, verify.CheckRules, k2, -1)
	if !strings.Contains(f.Detail, "rules object missing") || !strings.Contains(f.Detail, "9 sealed record version(s) carry rules_hash "+h2) {
		t.Errorf("failure = %s", f.Error())
	}
	if len(rep.Failures) != 1 {
		t.Errorf("want only the missing rules object:\n%s", reportString(rep))
	}
	if _, _, err := rules.Seal(ctx, e.b, e.cfg.Prefix, c2, lock); err != nil {
		t.Fatal(err)
	}
	rep = e.verify(o)
	if !rep.OK() || len(rep.Rules) != 2 || rep.Rules[0].Status != "sealed" || rep.Rules[1].Status != "sealed" || rep.Rules[0].Records+rep.Rules[1].Records != 36 {
		t.Fatalf("both rule sets sealed: want OK, 2 sealed rule sets over 36 records:\n%s\n%+v", reportString(rep), rep.Rules)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "rules     "+h1+": sealed (") {
		t.Errorf("report text:\n%s", text.String())
	}

	t.Run("evidence pack", func(t *testing.T) {
		pack, sum := e.export(t, evidence.Options{From: start, To: end})
		if sum.Records != 40 || sum.Rules != 2 {
			t.Fatalf("pack summary %+v, want 40 records and 2 rule sets", sum)
		}
		dir := untar(t, pack, t.TempDir())
		for _, c := range [][]byte{c1, c2} {
			h := sha256.Sum256(c)
			if got, err := os.ReadFile(filepath.Join(dir, "bucket", e.cfg.Prefix+"rules", hex.EncodeToString(h[:])+".json")); err != nil || !bytes.Equal(got, c) {
				t.Fatalf("the pack lacks a rules object: %v", err)
			}
		}
		out, err := runSteps(t, dir, readmeScript(t, dir))
		if err != nil || !strings.Contains(out, "40 records in 1 batches, 2 rule sets") {
			t.Fatalf("README steps: %v\n%s", err, out)
		}
		if rep, err := evidence.VerifyPack(dir, o.Keys); err != nil || !rep.OK() {
			t.Fatalf("verify-proof --pack: %+v, %v", rep, err)
		}
		pm := readPackManifest(t, dir)
		k2path := "bucket/" + k2
		for _, tc := range []struct {
			name   string
			damage func(d string)
			want   string // in the README steps' output
			pack   string // in verify-proof --pack's failures
		}{
			{"a rules object altered", func(d string) {
				os.WriteFile(filepath.Join(d, filepath.FromSlash(k2path)), bytes.Replace(c2, []byte(`"budget_pct":95`), []byte(`"budget_pct":50`), 1), 0o644)
			}, "RULES ALTERED: " + k2path, "(altered)"},
			{"a rules object left out, the pack manifest re-signed without it", func(d string) {
				os.Remove(filepath.Join(d, filepath.FromSlash(k2path)))
				var files []evidence.PackFile
				for _, f := range pm.Files {
					if f.Path != k2path {
						files = append(files, f)
					}
				}
				m := *pm
				m.Files = files
				signed, err := m.Sign(e.signer(t))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(d, evidence.PackManifestFile), signed, 0o644)
			}, "RULES MISSING: " + k2path + " (rules_hash of 9 records)", "is missing from the pack"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := t.TempDir()
				copyDir(t, dir, d)
				tc.damage(d)
				out, err := runSteps(t, d, readmeScript(t, d))
				if err == nil || !strings.Contains(out, tc.want) || strings.Contains(out, "step 3 OK") {
					t.Fatalf("README steps: %v, want a failure naming %q\n%s", err, tc.want, out)
				}
				rep, err := evidence.VerifyPack(d, o.Keys)
				if err != nil || rep.OK() || !strings.Contains(strings.Join(rep.Failures, "\n"), tc.pack) {
					t.Fatalf("verify-proof --pack: %v, want a failure naming %q: %+v", err, tc.pack, rep)
				}
			})
		}
	})

	t.Run("tampered rules object", func(t *testing.T) {
		e.replace(t, k1, bytes.Replace(c1, []byte(`"budget_pct":80`), []byte(`"budget_pct":99`), 1))
		f := mustName(t, e.verify(o), verify.CheckRules, k1, -1)
		if !strings.Contains(f.Detail, "rules object altered") {
			t.Errorf("failure = %s", f.Error())
		}
	})
	t.Run("deleted rules object", func(t *testing.T) {
		if err := e.b.Client().RemoveObject(ctx, e.b.Name(), k1, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		f := mustName(t, e.verify(o), verify.CheckRules, k1, -1)
		if !strings.Contains(f.Detail, "rules object missing") || !strings.Contains(f.Detail, h1) {
			t.Errorf("failure = %s", f.Error())
		}
		o := evidence.Options{From: start, To: end, Bucket: e.b, Layout: e.layout(), Origin: e.cfg.OriginName(), Keys: o.Keys, Signer: e.signer(t)}
		if _, err := evidence.Export(ctx, o, io.Discard); err == nil || !strings.Contains(err.Error(), k1) {
			t.Errorf("export of records whose rules object is gone: %v, want an error naming %s", err, k1)
		}
	})
}
