package witness

import (
	"bytes"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/tlog"
)

// FuzzAddCheckpoint feeds arbitrary bodies to add-checkpoint: never a panic,
// never a 5xx, and a cosignature only for a checkpoint the log's key signed.
func FuzzAddCheckpoint(f *testing.F) {
	logKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	signer, _ := keys.NewSigner("example.com/audit", logKey)
	vkey, _ := keys.VerifierKey("example.com/audit", signer.Public())
	seg := tlog.NewSegment(0)
	for i := range 5 {
		seg.Append(bytes.Repeat([]byte{byte(i)}, 32))
	}
	root, _ := seg.Root()
	cp, _ := tlog.Checkpoint{Origin: "example.com/audit", Size: 5, Root: root}.Sign(signer)
	f.Add([]byte("old 0\n\n" + string(cp)))
	f.Add([]byte("old 3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" + string(cp)))
	f.Add([]byte("old 0\n\nexample.com/audit\n"))
	f.Add([]byte{})
	_, wkey, _ := ed25519.GenerateKey(nil)
	s, err := NewServer(Config{Name: "w.example/fuzz", Key: wkey, Dir: f.TempDir(), Logs: []Log{{Origin: "example.com/audit", Keys: []string{vkey}}}}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/add-checkpoint", bytes.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("HTTP %d for %q", rec.Code, body)
		}
		if rec.Code == 200 && !bytes.Contains(body, []byte("— example.com/audit ")) {
			t.Fatalf("cosigned a body without the log's signature: %q", body)
		}
	})
}
