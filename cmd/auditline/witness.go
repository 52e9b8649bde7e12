package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/witness"
)

func init() {
	register(command{"witness", "run a C2SP tlog-witness that cosigns the archive's checkpoints (a separate process, own key and state)", runWitness})
}

// logFlag is a repeatable --log [ORIGIN=]VKEY.
type logFlag []witness.Log

func (l *logFlag) String() string { return fmt.Sprint(*l) }

func (l *logFlag) Set(s string) error {
	origin, vkey, ok := strings.Cut(s, "=")
	if !ok {
		vkey = s
		origin, _, _ = strings.Cut(s, "+") // a log's key is named after its origin (C2SP tlog-checkpoint)
	}
	if _, err := note.NewVerifier(vkey); err != nil {
		return fmt.Errorf("%q: want the log's signed-note verifier key (name+hash+base64, `auditline keys show`), optionally ORIGIN=KEY: %w", s, err)
	}
	for i := range *l {
		if (*l)[i].Origin == origin {
			(*l)[i].Keys = append((*l)[i].Keys, vkey)
			return nil
		}
	}
	*l = append(*l, witness.Log{Origin: origin, Keys: []string{vkey}})
	return nil
}

func runWitness(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("witness", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline witness --name NAME --key FILE --state DIR --log VKEY [--log VKEY ...] [--listen ADDR]

Runs a transparency-log witness (https://c2sp.org/tlog-witness): it accepts a
checkpoint of a log it knows (POST /add-checkpoint) only with a consistency
proof from the last checkpoint it cosigned, remembers the new one, and
returns its cosignature (https://c2sp.org/tlog-cosignature). A rolled-back,
forked or shortened log is refused — that is how removing the newest batches
of the archive is caught. Any tlog-witness client can use it; the archiver
submits to it when its URL and key are in archive.witness.witnesses.

Run it apart from the archive — another machine, other credentials: its key
and state must be out of reach of whoever can write to the bucket. Create
its key with 'auditline keys generate --out witness.key'; it prints its
verifier key (vkey) at start — give it to the archive's operators
(archive.witness.witnesses[].key) and to auditors (verify --witness).

Flags:
`)
		fs.PrintDefaults()
	}
	name := fs.String("name", "", "the witness's name in its cosignatures, a schema-less URL such as witness.example/w1 (required)")
	keyFile := fs.String("key", "", "the witness's own Ed25519 private key (PKCS #8 PEM, mode 0600; required)")
	state := fs.String("state", "", "directory of the witness's state: the latest cosigned checkpoint of each log (required; one process per directory)")
	listen := fs.String("listen", "127.0.0.1:7380", "address to serve add-checkpoint, /healthz and /metrics on (terminate TLS in front of it)")
	var logs logFlag
	fs.Var(&logs, "log", "a log to witness: its signed-note verifier key (the archive's, from 'auditline keys show --key archive.key.pub'), or ORIGIN=VKEY; repeat for several logs or for a log's rotated keys")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if *name == "" || *keyFile == "" || *state == "" || len(logs) == 0 || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	priv, err := keys.Load(*keyFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	reg := prometheus.NewRegistry()
	srv, err := witness.NewServer(witness.Config{Name: *name, Key: priv, Dir: *state, Logs: logs}, log, reg)
	if err != nil {
		return err
	}
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	var origins []string
	for _, l := range logs {
		origins = append(origins, l.Origin)
	}
	log.Info("witness started", "name", *name, "vkey", srv.VerifierKey(), "listen", ln.Addr().String(), "logs", origins, "state", *state)
	fmt.Printf("witness %s listening on %s\nverifier key: %s\n", *name, ln.Addr(), srv.VerifierKey())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("witness stopped")
	return nil
}
