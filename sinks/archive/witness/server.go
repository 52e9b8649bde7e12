package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/sinks/archive/tlog"
)

// Log is a log the witness accepts checkpoints of.
type Log struct {
	Origin string
	// Keys are the log's signed-note verifier keys (vkeys); a checkpoint must
	// carry a valid signature by one of them. Several keys allow a rotation.
	Keys []string
}

// Config configures a Server.
type Config struct {
	// Name is the witness's key name in its cosignature lines (a schema-less
	// URL such as "witness.example/w1").
	Name string
	// Key is the witness's own Ed25519 key (never the archive's).
	Key ed25519.PrivateKey
	// Dir holds the witness's state: the latest cosigned checkpoint per log.
	Dir  string
	Logs []Log
}

// Server is a C2SP tlog-witness. See the package doc.
type Server struct {
	name   string
	signer note.Signer
	vkey   string
	logs   map[string]note.Verifiers
	st     *store
	log    *slog.Logger
	mux    *http.ServeMux
	reqs   *prometheus.CounterVec

	// mu makes the check of the old size and the update of the stored
	// checkpoint one atomic step (C2SP tlog-witness: otherwise two racing
	// requests could roll the witness back).
	mu sync.Mutex
}

// maxBody bounds a request: an old size line, at most 63 proof lines and a
// checkpoint note are a few KiB.
const maxBody = 64 << 10

// NewServer opens the witness's state in cfg.Dir (taking a lock on it, so
// that two processes never share one state) and returns the witness.
func NewServer(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("witness: an Ed25519 private key is required")
	}
	signer, vkey, err := NewSigner(cfg.Name, cfg.Key)
	if err != nil {
		return nil, err
	}
	s := &Server{name: cfg.Name, signer: signer, vkey: vkey, logs: map[string]note.Verifiers{}, log: logger, mux: http.NewServeMux()}
	for _, l := range cfg.Logs {
		if l.Origin == "" || len(l.Keys) == 0 {
			return nil, fmt.Errorf("witness: log %q needs an origin and at least one key", l.Origin)
		}
		var vs []note.Verifier
		for _, k := range l.Keys {
			v, err := fnote.NewVerifier(k)
			if err != nil {
				return nil, fmt.Errorf("witness: log %s: key %q: %w", l.Origin, k, err)
			}
			vs = append(vs, v)
		}
		s.logs[l.Origin] = note.VerifierList(vs...)
	}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_witness_requests_total",
		Help: "add-checkpoint requests by HTTP status (409 and 422 are refused rollbacks or forks)."}, []string{"code"})
	if err := reg.Register(s.reqs); err != nil {
		return nil, err
	}
	if s.st, err = openStore(cfg.Dir); err != nil {
		return nil, err
	}
	s.mux.HandleFunc("POST /add-checkpoint", s.serveAddCheckpoint)
	s.mux.HandleFunc("GET /{$}", s.serveIndex)
	return s, nil
}

// VerifierKey returns the witness's cosignature/v1 verifier key (vkey, type
// 0x04): what archivers and auditors configure to trust its cosignatures.
func (s *Server) VerifierKey() string { return s.vkey }

// Close releases the state directory.
func (s *Server) Close() error { return s.st.close() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// refusal is an add-checkpoint outcome other than a cosignature.
type refusal struct {
	code int
	msg  string
	size uint64 // for 409
}

func (r *refusal) Error() string { return r.msg }

func refuse(code int, format string, args ...any) *refusal {
	return &refusal{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) serveAddCheckpoint(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reqs.WithLabelValues("413").Inc()
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	sigs, err := s.addCheckpoint(body)
	var rf *refusal
	if errors.As(err, &rf) {
		s.reqs.WithLabelValues(strconv.Itoa(rf.code)).Inc()
		if rf.code == http.StatusConflict {
			// C2SP tlog-witness: the latest cosigned size, in decimal, then a newline.
			w.Header().Set("Content-Type", "text/x.tlog.size")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, "%d\n", rf.size)
			return
		}
		http.Error(w, rf.msg, rf.code)
		return
	}
	if err != nil {
		s.reqs.WithLabelValues("500").Inc()
		s.log.Error("witness: add-checkpoint", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.reqs.WithLabelValues("200").Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(sigs)
}

// addCheckpoint applies the rules of C2SP tlog-witness add-checkpoint, in the
// spec's order, and returns the cosignature lines.
func (s *Server) addCheckpoint(body []byte) ([]byte, error) {
	head, noteBytes, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return nil, refuse(http.StatusBadRequest, "want an old size line, proof lines, an empty line and a checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	num, ok := strings.CutPrefix(lines[0], "old ")
	oldSize, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil || strconv.FormatUint(oldSize, 10) != num {
		return nil, refuse(http.StatusBadRequest, "the first line must be \"old <size>\" (decimal, no leading zeros)")
	}
	if len(lines)-1 > 63 {
		return nil, refuse(http.StatusBadRequest, "more than 63 consistency proof lines")
	}
	proof := make([][]byte, 0, len(lines)-1)
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize || base64.StdEncoding.EncodeToString(h) != l {
			return nil, refuse(http.StatusBadRequest, "a proof line is not the base64 of a 32-byte hash")
		}
		proof = append(proof, h)
	}
	origin, _, _ := strings.Cut(string(noteBytes), "\n")
	verifiers, known := s.logs[origin]
	if !known {
		return nil, refuse(http.StatusNotFound, "unknown log origin %q", origin)
	}
	n, err := note.Open(noteBytes, verifiers)
	if err != nil {
		var uv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		if errors.As(err, &uv) || errors.As(err, &inv) {
			return nil, refuse(http.StatusForbidden, "no signature by a key of log %s verifies", origin)
		}
		return nil, refuse(http.StatusBadRequest, "malformed note: %v", err)
	}
	var c flog.Checkpoint
	if _, err := c.Unmarshal([]byte(n.Text)); err != nil || c.Origin != origin || len(c.Hash) != tlog.HashSize {
		return nil, refuse(http.StatusBadRequest, "malformed checkpoint")
	}
	if oldSize > c.Size {
		return nil, refuse(http.StatusBadRequest, "old size %d is larger than the checkpoint's size %d", oldSize, c.Size)
	}
	if oldSize == 0 && len(proof) != 0 {
		return nil, refuse(http.StatusBadRequest, "the proof must be empty from size 0")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.st.get(origin)
	if err != nil {
		return nil, err
	}
	if st.Size != oldSize {
		level := slog.LevelWarn
		if oldSize == 0 {
			level = slog.LevelDebug // a client learning the size (C2SP tlog-witness allows it)
		}
		s.log.Log(context.Background(), level, "witness: refused a checkpoint whose old size is not the latest cosigned one", "origin", origin, "old", oldSize, "size", c.Size, "latest", st.Size)
		return nil, &refusal{code: http.StatusConflict, size: st.Size, msg: "old size mismatch"}
	}
	if oldSize == c.Size {
		if oldSize > 0 && !bytes.Equal(st.Root, c.Hash) {
			// The same size with another root: a fork. C2SP tlog-witness: 409.
			s.log.Warn("witness: refused a forked checkpoint (same size, other root)", "origin", origin, "size", c.Size)
			return nil, &refusal{code: http.StatusConflict, size: st.Size, msg: "root mismatch"}
		}
	} else if oldSize > 0 {
		if err := tlog.VerifyConsistency(oldSize, c.Size, proof, st.Root, c.Hash); err != nil {
			s.log.Warn("witness: refused an inconsistent checkpoint", "origin", origin, "old", oldSize, "size", c.Size, "err", err)
			return nil, refuse(http.StatusUnprocessableEntity, "the consistency proof from %d to %d does not verify", oldSize, c.Size)
		}
	}
	// Persist before replying (C2SP tlog-witness).
	if err := s.st.put(state{Origin: origin, Size: c.Size, Root: c.Hash}); err != nil {
		return nil, err
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, s.signer)
	if err != nil {
		return nil, err
	}
	_, sigs, _ := bytes.Cut(signed, []byte("\n\n"))
	return sigs, nil
}

// serveIndex lists the logs and the latest cosigned size of each, for people.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "auditline witness %s\n%s\n\n", s.name, s.vkey)
	s.mu.Lock()
	defer s.mu.Unlock()
	for origin := range s.logs {
		st, err := s.st.get(origin)
		if err != nil {
			continue
		}
		fmt.Fprintf(w, "%s size %d root %s\n", origin, st.Size, base64.StdEncoding.EncodeToString(st.Root))
	}
}
