package dashboards

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/ingest/topic"
)

//go:embed web
var webFS embed.FS

// The reads each page makes: one method per page, declared here where they are
// used; *query.ClickHouse satisfies all of them.

// NearMissReader answers the near-miss dashboard.
type NearMissReader interface {
	NearMiss(ctx context.Context, f query.Filter) (query.NearMissPage, error)
}

// RecordLister answers a list of records.
type RecordLister interface {
	Records(ctx context.Context, f query.Filter, after query.Cursor, limit int) (query.List, error)
}

// RecordReader answers one record (only f's tenant scoping applies; a record
// outside it is query.ErrNotFound).
type RecordReader interface {
	Record(ctx context.Context, f query.Filter, id string, version uint32) (query.Detail, error)
}

// SamplingReader answers the sampling dashboard.
type SamplingReader interface {
	Sampling(ctx context.Context, f query.Filter) (query.SamplingPage, error)
}

// EventPoster sends an oversight event to ingest; nil only once ingest
// acknowledged it.
type EventPoster interface {
	Post(ctx context.Context, ev oversight.Event) error
}

// Prover returns an RFC 6962 inclusion proof (JSON) of one version of a
// record in the archive; around is the record's start time, a hint that lets
// the search skip batches sealed before it.
type Prover interface {
	Prove(ctx context.Context, recordID string, version uint32, around time.Time) ([]byte, error)
}

// Pinger checks the data source for /readyz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Sources are what the server reads from and posts to.
type Sources struct {
	NearMiss NearMissReader
	Records  RecordLister
	Record   RecordReader
	Sampling SamplingReader
	Events   EventPoster
	Prover   Prover // optional: nil shows the CLI command instead
	Pinger   Pinger // optional
	// Access receives the access log (logins, record views, proof
	// downloads, exports). Optional in tests; production wires ingest's
	// /v1/access.
	Access AccessPoster
	// Analyst answers dropdowns, totals, exports, usage, review throughput
	// and the access log (analyst.go). Optional.
	Analyst AnalystReader
}

// Settings are handed in by the caller besides the configuration.
type Settings struct {
	// Sources are what the dashboards read and post to (ClickHouse, the
	// archive, ingest's oversight endpoint); tests hand in fakes.
	Sources  Sources
	Logger   *slog.Logger
	Registry *prometheus.Registry // metrics are registered here
	// Handle, when set, mounts extra handlers on the dashboard's mux instead
	// of its own /healthz and /readyz. Leave it nil in production: /metrics
	// belongs on the operations listener (ops.listen), never on the UI
	// listener, which faces browsers.
	Handle func(mux *http.ServeMux)
	// Now is the clock (tests fix it); nil is time.Now.
	Now func() time.Time
}

// Server is the dashboard HTTP server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	src      Sources
	auth     *auth.Authenticator
	sessions *auth.Sessions
	pages    map[string]*template.Template
	static   http.Handler
	m        *metrics
	now      func() time.Time
	handler  http.Handler
	// accessLog posts who looked at what (accesslog.go); nil without
	// Sources.Access.
	accessLog *accessLog
	opts      optionsCache // dropdown values per scope (analyst.go)
}

// New builds a server; cfg must be valid. It connects nothing itself (its
// Sources may, when asked). The dashboards read no Kafka: shared is taken for
// the one constructor shape every stage has, New(cfg, shared, settings).
func New(cfg Config, _ topic.Shared, set Settings) (*Server, error) {
	src := set.Sources
	if src.NearMiss == nil || src.Records == nil || src.Record == nil || src.Sampling == nil || src.Events == nil {
		return nil, errors.New("dashboards: sources incomplete")
	}
	a, err := auth.New(cfg.Auth)
	if err != nil {
		return nil, fmt.Errorf("dashboard.auth: %w", err)
	}
	s := &Server{cfg: cfg, log: set.Logger, src: src, auth: a, sessions: auth.NewSessions(cfg.Auth), now: set.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(webFS, "web/static")
	if err != nil {
		return nil, fmt.Errorf("dashboards: static assets: %w", err)
	}
	s.static = http.StripPrefix("/static/", http.FileServerFS(static))
	reg := set.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if s.m, err = newMetrics(reg, s.sessions); err != nil {
		return nil, err
	}
	if src.Access != nil {
		s.accessLog = startAccessLog(src.Access, s.log, s.m)
	}
	mux := http.NewServeMux()
	s.routes(mux)
	if set.Handle != nil {
		set.Handle(mux)
	} else {
		s.health(mux)
	}
	cop := http.NewCrossOriginProtection()
	s.handler = s.m.instrument(headers(cop.Handler(mux)))
	return s, nil
}

// Handler returns the root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Ready reports whether ClickHouse answers.
func (s *Server) Ready(ctx context.Context) error {
	if s.src.Pinger == nil {
		return nil
	}
	return s.src.Pinger.Ping(ctx)
}

// Run serves until ctx ends, then stops accepting, lets in-flight requests
// finish (for up to 10 s) and returns nil.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("dashboard.listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// writeTimeout bounds the answer to one request; maxHashWait keeps a login
// waiting for a password-check slot well inside it.
const (
	writeTimeout = 60 * time.Second
	maxHashWait  = 30 * time.Second
)

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	tlsOn := s.cfg.TLS.CertFile != ""
	if tlsOn {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	s.log.Info("dashboard listening", "addr", ln.Addr().String(), "tls", tlsOn)
	select {
	case err := <-errc:
		s.accessLog.close()
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		s.log.Warn("dashboard: shutdown timed out; closed in-flight connections", "err", err)
	}
	<-errc
	s.accessLog.close() // no more reads: post what they logged
	return nil
}

// health mounts /healthz and /readyz for load balancers. /readyz says only
// ready or not: why not goes to the log and to the operations listener's
// /readyz, not to whoever can reach the UI.
func (s *Server) health(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.Ready(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}

// headers sets the security headers every response carries. The CSP allows
// only our own stylesheet: no script at all, no inline style, no framing.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// ingestToken reads the token from the config or its file.
func ingestToken(c oversight.Config) (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("dashboard.ingest.token_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// NewPoster returns the oversight client of cfg.Ingest.
func NewPoster(cfg Config) (*oversight.Client, error) {
	tok, err := ingestToken(cfg.Ingest)
	if err != nil {
		return nil, err
	}
	return oversight.NewClient(cfg.Ingest.URL, tok, cfg.Ingest.Timeout), nil
}
