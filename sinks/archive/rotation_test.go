package archive

import (
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/verify"
)

// TestKeyRotation seals with one key, rotates to another, seals more: the
// chain continues across the change, both public keys are published, and the
// whole history verifies with both keys (and only with both).
func TestKeyRotation(t *testing.T) {
	e := newEnv(t, 1)
	oldPriv, err := keys.Load(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	e.produce(0, 300)
	r := e.start(e.cfg)
	waitFor(t, "sealed with the old key", 60*time.Second, func() bool { return r.sealed() == 300 })
	r.stop(t)

	newFile := filepath.Join(t.TempDir(), "new.key")
	newPriv, _ := keys.Generate(nil)
	if err := keys.WriteNew(newFile, newPriv); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.SigningKeyFile = newFile
	e.produce(300, 600)
	r2 := e.start(cfg)
	waitFor(t, "sealed with the new key", 60*time.Second, func() bool { return r2.sealed() == 300 })
	r2.stop(t)

	oldPub, newPub := oldPriv.Public().(ed25519.PublicKey), newPriv.Public().(ed25519.PublicKey)
	o := e.verifyOpts(keys.NewRing(oldPub, newPub))
	if rep := e.verify(o); !rep.OK() || rep.Records != 600 {
		t.Fatalf("verify with both keys:\n%s", reportString(rep))
	}
	if rep := e.verify(e.verifyOpts(keys.NewRing(newPub))); rep.OK() || !rep.Has(verify.CheckSignature, "") {
		t.Fatalf("verify with the new key only should reject the old manifests:\n%s", reportString(rep))
	}
	published, err := verify.LoadBucketKeys(t.Context(), e.b, e.layout())
	if err != nil || published.Len() != 2 {
		t.Fatalf("published keys %v, %v; want both", published.IDs(), err)
	}
	if got := e.exactlyOnce(); got != 600 {
		t.Fatalf("exactly once over %d", got)
	}
}
