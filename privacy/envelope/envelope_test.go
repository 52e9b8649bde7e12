package envelope

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
)

func TestSealOpenErase(t *testing.T) {
	ctx := context.Background()
	ks, err := OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := NewSealer(ks)
	body := []byte(`{"messages":[{"role":"user","content":"secret prompt"}],"metadata":{"user_api_key_team_id":"t1"}}`)
	hdr := map[string]string{"auditline-source": "litellm"}
	sealed, err := s.Seal(ctx, "team:t1", body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret prompt")) {
		t.Fatal("content in clear in the sealed event")
	}
	other, err := s.Seal(ctx, "team:t2", []byte(`{"x":1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := e.Canonical(); err != nil || !bytes.Equal(c, sealed) {
		t.Fatalf("not canonical: %v\n%s\n%s", err, c, sealed)
	}
	pt, err := Open(ctx, ks, e)
	if err != nil || !bytes.Equal(pt, body) || e.Headers["auditline-source"] != "litellm" {
		t.Fatalf("open: %v %s", err, pt)
	}

	// Tampering is an error, never "erased".
	for name, mut := range map[string]func(x *Sealed){
		"ciphertext": func(x *Sealed) { x.Ciphertext[0] ^= 1 },
		"sha256":     func(x *Sealed) { x.SHA256 = "00" + x.SHA256[2:] },
		"key id":     func(x *Sealed) { x.KeyID = "00000000000000000000000000000000" },
		"size":       func(x *Sealed) { x.Size++ },
	} {
		x, _ := Parse(sealed)
		mut(x)
		if _, err := Open(ctx, ks, x); err == nil || errors.Is(err, ErrErased) {
			t.Errorf("%s altered: %v", name, err)
		}
	}

	id, err := ks.Destroy(ctx, "team:t1")
	if err != nil || id != e.KeyID {
		t.Fatalf("destroy: %q %v, want %q", id, err, e.KeyID)
	}
	if _, err := Open(ctx, ks, e); !errors.Is(err, ErrErased) {
		t.Fatalf("open after erase: %v", err)
	}
	if _, err := ks.Destroy(ctx, "team:t1"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("second destroy: %v", err)
	}
	o, _ := Parse(other)
	if _, err := Open(ctx, ks, o); err != nil {
		t.Fatalf("another subject after the erasure: %v", err)
	}
	// The subject's next event gets a new key, readable.
	again, err := s.Seal(ctx, "team:t1", body, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Parse(again)
	if a.KeyID == e.KeyID {
		t.Fatal("sealed under the destroyed key")
	}
	if pt, err := Open(ctx, ks, a); err != nil || !bytes.Equal(pt, body) {
		t.Fatalf("open under the new key: %v", err)
	}
	// A second store on the same directory (another process) agrees.
	ks2, err := OpenFileStore(ks.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, ks2, e); !errors.Is(err, ErrErased) {
		t.Fatalf("other process, erased key: %v", err)
	}
	if _, err := Open(ctx, ks2, a); err != nil {
		t.Fatalf("other process, new key: %v", err)
	}
}

// TestKeyForConcurrent: goroutines (or processes) asking for a new subject's
// key at once all get the same one.
func TestKeyForConcurrent(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ids := make([]string, 16)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks, err := OpenFileStore(dir)
			if err != nil {
				t.Error(err)
				return
			}
			if ids[i], err = ks.KeyFor(ctx, "end_user:u1"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || !validID(id) {
			t.Fatalf("ids differ: %v", ids)
		}
	}
}

func TestSubject(t *testing.T) {
	for _, c := range []struct {
		scope, body, want string
	}{
		{ByTeam, `{"metadata":{"user_api_key_team_id":"t-42"}}`, "team:t-42"},
		{ByTeam, `{"team_id":"g1","metadata":{"user_api_key_team_id":"t-42"}}`, "team:g1"},
		{ByTeam, `{"metadata":{"user_api_key_team_id":null}}`, Unattributed},
		{ByTeam, `{"metadata":"str"}`, Unattributed},
		{ByTeam, `not json`, Unattributed},
		{ByTeam, `[1,2]`, Unattributed},
		{ByEndUser, `{"end_user":"alice@example.com"}`, "end_user:alice@example.com"},
		{ByEndUser, `{"end_user":"","metadata":{"user_api_key_end_user_id":"u7"}}`, "end_user:u7"},
		{ByEndUser, `{"end_user_id":"u8"}`, "end_user:u8"},
		{ByArchive, `{"end_user":"x"}`, ByArchive},
		{ByTenant, `{"subject":{"id":"u1","tenant":"acme-finance"}}`, "tenant:acme-finance"},
		{ByTenant, `{"metadata":{"user_api_key_org_id":"org-7"}}`, "tenant:org-7"},
		{ByTenant, `{"tenant":"globex"}`, "tenant:globex"},
		{ByTenant, `{"metadata":{}}`, "tenant:default"},
		{ByTenant, `nope`, "tenant:default"},
		{ByEndUser, `{"subject":{"id":"u1","tenant":"acme"}}`, "end_user:u1"},
		{ByTeam, `{"metadata":{"team_id":"t9"}}`, "team:t9"},
	} {
		if got := Subject(c.scope, []byte(c.body)); got != c.want {
			t.Errorf("Subject(%s, %s) = %q, want %q", c.scope, c.body, got, c.want)
		}
	}
	if ValidScope("tenants") == nil || ValidScope(ByEndUser) != nil {
		t.Error("ValidScope")
	}
}

// FuzzParse: Parse never panics, and what it accepts re-encodes canonically
// to something it accepts again, equal.
func FuzzParse(f *testing.F) {
	ks, _ := OpenFileStore(f.TempDir())
	b, _ := NewSealer(ks).Seal(context.Background(), "archive", []byte(`{"a":1}`), map[string]string{"k": "v"})
	f.Add(b)
	f.Add([]byte(`{"type":"auditline.raw-event/v1","alg":"A256GCM"}`))
	f.Add([]byte(`{"type":"auditline.raw-event/v1","alg":"A256GCM","extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			return
		}
		c, err := e.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		e2, err := Parse(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, _ := e2.Canonical()
		if !bytes.Equal(c, c2) {
			t.Fatalf("not stable:\n%s\n%s", c, c2)
		}
	})
}
