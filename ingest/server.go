package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/source"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/backoff"
	"github.com/auditline/auditline/privacy/capture"
	"github.com/auditline/auditline/privacy/pseudonym"
)

// producer is what ingest needs of Kafka; topic.Writer satisfies it.
type producer interface {
	// Produce returns nil only once every record is acknowledged by all
	// in-sync replicas. The records, and the bytes they reference, must not
	// change until it returns. On error some records may still be written
	// later, so the caller must not report them as accepted.
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// partitionCounter tells how many partitions a topic has now; topic.Writer
// satisfies it. Used to fan a control event out to every partition.
type partitionCounter interface {
	Partitions(ctx context.Context, topic string) (int, error)
}

// Settings is what the caller hands in besides the configuration.
type Settings struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Mount adds the ops endpoints (/metrics, /healthz, /readyz) to ingest's
	// mux. When nil, ingest serves its own /healthz and /readyz.
	Mount func(*http.ServeMux)
	// Getenv resolves tokens configured by environment variable; nil means
	// os.Getenv.
	Getenv func(string) string
	// Capture is the capture policy DLQ copies follow (the pipeline's one
	// policy, enrich.content.policy); "" is the default, hash.
	Capture capture.Policy
	// Pseudonyms, when set, pseudonymise the identity members of DLQ copies
	// as the records' fields are (enrich.content.pseudonymise).
	Pseudonyms *pseudonym.Pseudonymiser
}

// Server is the ingest stage.
type Server struct {
	cfg     Config
	log     *slog.Logger
	topics  raw.Topics
	kafka   topic.Config
	auth    atomic.Pointer[auth.Authenticator] // swapped by ReloadAuth
	getenv  func(string) string
	m       *metrics
	prod    producer
	parts   partitionCounter
	writer  *kafkaWriter // nil when a test hands in its own producer
	handler http.Handler
	now     func() time.Time
	capt    *capture.Capturer
	seen    *seenEvents // event id → SHA-256 of strict endpoints' events (seen.go)

	// Watermarks (watermark.go): every receive time is stamped by stamps
	// and finished once Kafka settled its records.
	stamps      *stamper
	marks       producer     // writes the watermarks: prod, or a client of its own (New)
	marksWriter *kafkaWriter // that client, opened and closed by Serve
	instance    string
	wmParts     []int       // per watermark topic: its partition count (writeWatermark)
	wmPartsAt   []time.Time // when it was read
	// joined is closed once this instance's first watermark is acknowledged
	// in every partition of every watermark topic; gated is set by Serve
	// when it writes watermarks (not set: watermarks off, or a test driving
	// the handler without Serve). While gated and not joined, deliver stamps
	// no body and Ready says not ready (joinGate).
	joined chan struct{}
	gated  atomic.Bool

	inflight atomic.Int64   // reserved body bytes
	pending  sync.WaitGroup // produces not yet settled by Kafka
	bufs     sync.Pool      // *bytes.Buffer
}

// New builds the stage. It connects nothing: Run (or Serve) makes the Kafka
// writer for shared.Kafka and closes it on return.
func New(cfg Config, shared topic.Shared, set Settings) (*Server, error) {
	w := &kafkaWriter{cfg: shared.Kafka}
	s, err := newServer(cfg, shared.Topics, set, w, w)
	if err != nil {
		return nil, err
	}
	s.kafka, s.writer = shared.Kafka, w
	// Watermarks get a client of their own, so that they never queue behind
	// the events' batches (a watermark is written after the events below it
	// were acknowledged, so any client keeps the order in the partition).
	s.marksWriter = &kafkaWriter{cfg: shared.Kafka}
	s.marks = s.marksWriter
	return s, nil
}

// kafkaWriter is the producer of a Server built by New: a topic.Writer made
// when Serve starts and closed when it returns. Before that, and after, every
// call fails (a request then gets 503, /readyz says not ready).
type kafkaWriter struct {
	cfg topic.Config
	w   atomic.Pointer[topic.Writer]
}

var errNotServing = errors.New("ingest is not serving (no Kafka writer)")

func (k *kafkaWriter) Produce(ctx context.Context, recs ...*kgo.Record) error {
	w := k.w.Load()
	if w == nil {
		return errNotServing
	}
	return w.Produce(ctx, recs...)
}

func (k *kafkaWriter) Partitions(ctx context.Context, topic string) (int, error) {
	w := k.w.Load()
	if w == nil {
		return 0, errNotServing
	}
	return w.Partitions(ctx, topic)
}

func (k *kafkaWriter) Ping(ctx context.Context) error {
	w := k.w.Load()
	if w == nil {
		return errNotServing
	}
	return w.Ping(ctx)
}

// open makes the writer; the returned func closes it.
func (k *kafkaWriter) open() (func(), error) {
	w, err := topic.NewWriter(k.cfg)
	if err != nil {
		return nil, err
	}
	k.w.Store(w)
	return func() { k.w.Store(nil); w.Close() }, nil
}

func newServer(cfg Config, topics raw.Topics, set Settings, prod producer, parts partitionCounter) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	getenv := set.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	a, err := auth.New(cfg.Auth, getenv)
	if err != nil {
		return nil, err
	}
	schemas, err := source.NewSchemas()
	if err != nil {
		return nil, err
	}
	reg := set.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, topics: topics, getenv: getenv, m: m, prod: prod, parts: parts, now: time.Now, seen: newSeenEvents(), capt: capture.New(set.Capture).WithPseudonyms(set.Pseudonyms)}
	s.instance = newInstanceID()
	s.auth.Store(a)
	if s.topics.Prefix == "" {
		s.topics = raw.DefaultTopics
	}
	// Watermarks go to the two topics enrich joins.
	s.joined = make(chan struct{})
	s.stamps = newStamper(func() time.Time { return s.now() }, []string{s.topics.RawLiteLLM(), s.topics.RawGateway()})
	s.wmParts, s.wmPartsAt = make([]int, 2), make([]time.Time, 2)
	s.marks = prod
	mux := http.NewServeMux()
	for _, ep := range []*endpoint{
		{name: "litellm", path: "/v1/litellm", scope: auth.ScopeLiteLLM, decode: source.LiteLLM},
		{name: "alerts", path: "/v1/litellm/alerts", scope: auth.ScopeAlerts, decode: source.Alert},
		{name: "audit", path: "/v1/litellm/audit", scope: auth.ScopeAudit, decode: source.Admin},
		{name: "gateway", path: "/v1/gateway", scope: auth.ScopeGateway, decode: schemas.Gateway, strict: true, src: raw.SourceGateway},
		{name: "oversight", path: "/v1/oversight", scope: auth.ScopeOversight, decode: schemas.Oversight, strict: true, src: raw.SourceOversight},
		// auditline's LiteLLM plugin: markers and gateway provenance (same token scope as its payloads)
		{name: "request_started", path: "/v1/litellm/started", scope: auth.ScopeLiteLLM, decode: schemas.RequestStarted, strict: true, src: raw.SourceRequestStarted},
		{name: "attempt", path: "/v1/litellm/attempt", scope: auth.ScopeLiteLLM, decode: schemas.Attempt, strict: true, src: raw.SourceAttempt},
		{name: "gateway_config", path: "/v1/litellm/config", scope: auth.ScopeLiteLLM, decode: schemas.GatewayConfig, strict: true, src: raw.SourceGatewayConfig},
		{name: "access", path: "/v1/access", scope: auth.ScopeAccess, decode: schemas.Access, strict: true, src: raw.SourceAccess},
	} {
		switch ep.name {
		case "litellm":
			ep.src = raw.SourceLiteLLM
		case "alerts":
			ep.src = raw.SourceAlert
		case "audit":
			ep.src = raw.SourceAdmin
		}
		mux.Handle("POST "+ep.path, s.endpoint(ep))
	}
	if set.Mount != nil {
		set.Mount(mux)
	} else {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := s.Ready(ctx); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
	}
	s.handler = s.recoverer(mux)
	return s, nil
}

// Handler returns the HTTP handler (write endpoints and ops endpoints).
func (s *Server) Handler() http.Handler { return s.handler }

// Ready reports whether a Kafka broker answers and, when this process writes
// watermarks, whether its first ones are written (joinGate).
func (s *Server) Ready(ctx context.Context) error {
	if err := s.joinedYet(); err != nil {
		return err
	}
	if s.writer == nil {
		return nil
	}
	if err := s.writer.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// Run listens on cfg.Listen and serves until ctx ends, then shuts down
// gracefully: stop accepting, finish the requests in flight (each waits for
// its acknowledgement), wait for produces that outlived their request, close
// the Kafka client. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("ingest.listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests use port 0); it closes
// ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.writer != nil {
		closeWriter, err := s.writer.open()
		if err != nil {
			ln.Close()
			return err
		}
		defer closeWriter()
	}
	if s.marksWriter != nil && s.cfg.WatermarkInterval > 0 {
		closeMarks, err := s.marksWriter.open()
		if err != nil {
			ln.Close()
			return err
		}
		defer closeMarks()
	}
	if s.cfg.CreateTopics && s.writer != nil {
		tctx, tcancel := context.WithCancel(ctx)
		var bg sync.WaitGroup
		bg.Add(1)
		go func() { defer bg.Done(); s.ensureTopics(tctx) }()
		defer bg.Wait() // (deferred calls run in reverse: cancel, wait, then close the writer)
		defer tcancel()
	}
	var stopMarks func()
	if s.cfg.WatermarkInterval > 0 {
		s.gated.Store(true)
		mctx, mcancel := context.WithCancel(context.Background())
		mdone := make(chan struct{})
		go func() { defer close(mdone); s.publishWatermarks(mctx) }()
		stopMarks = func() { mcancel(); <-mdone }
		defer stopMarks() // idempotent enough: a closed channel, a cancelled ctx
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.ReadTimeout + s.cfg.ProduceTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS.CertFile != "" {
			errc <- srv.ServeTLS(ln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	s.log.Info("ingest listening", "addr", ln.Addr().String(), "tls", s.cfg.TLS.CertFile != "")
	select {
	case err := <-errc:
		s.waitPending(context.Background(), s.cfg.ShutdownTimeout)
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("ingest shutting down: refusing new connections, finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	perr := s.waitPending(sctx, 0)
	if err == nil {
		err = perr
	}
	if stopMarks != nil {
		stopMarks()
		if perr == nil {
			// Every produce settled: the last watermark says this process
			// leaves, so enrich stops waiting for it at once.
			if werr := s.writeLeaving(sctx); werr != nil {
				s.log.Warn("leaving watermark not written; enrich drops this instance after enrich.watermark_timeout", "err", werr)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("ingest shutdown: %w", err)
	}
	s.log.Info("ingest stopped")
	return nil
}

// waitPending waits for produces that outlived their request, until ctx ends
// (or d passes, when d > 0).
func (s *Server) waitPending(ctx context.Context, d time.Duration) error {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	done := make(chan struct{})
	go func() { s.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("produces still unsettled: %w", ctx.Err())
	}
}

// ensureTopics creates missing topics, retrying with backoff while Kafka is
// unreachable (the stage still serves: /readyz tells whether Kafka answers).
func (s *Server) ensureTopics(ctx context.Context) {
	err := backoff.Retry(ctx, topicsBackoff, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return topic.EnsureTopics(actx, s.kafka, s.topics)
	}, func(attempt int, err error, wait time.Duration) {
		s.log.Warn("cannot create kafka topics yet; retrying", "attempt", attempt, "in", wait, "err", err)
	})
	if err == nil {
		s.log.Info("kafka topics ready", "prefix", s.topics.Prefix)
	}
}

// topicsBackoff spaces the attempts to create the topics.
var topicsBackoff = backoff.Policy{Min: time.Second, Max: time.Minute}

// recoverer is the last line of defence: a panic in a handler is counted,
// logged with its stack (it is a bug) and answered 500, and the process lives.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.m.panics.Inc()
				s.log.Error("panic in request handler", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error", Reason: "panic"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// acquire reserves n bytes of the in-flight budget, or reports false at once.
func (s *Server) acquire(n int64) bool {
	for {
		cur := s.inflight.Load()
		if cur+n > s.cfg.MaxInflightBytes {
			return false
		}
		if s.inflight.CompareAndSwap(cur, cur+n) {
			s.m.inflightB.Set(float64(cur + n))
			return true
		}
	}
}

func (s *Server) release(n int64) {
	s.m.inflightB.Set(float64(s.inflight.Add(-n)))
}

func (s *Server) getBuf() *bytes.Buffer {
	if b, ok := s.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

func (s *Server) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 8<<20 { // do not pin rare huge buffers
		s.bufs.Put(b)
	}
}

// errProduceTimeout: Kafka did not acknowledge within produce_timeout.
var errProduceTimeout = errors.New("kafka did not acknowledge in time")

// produce hands recs to Kafka and waits at most produce_timeout for the
// acknowledgement. settle runs once Kafka has settled every record (acked or
// failed), which may be after produce returned errProduceTimeout: the caller
// hands its buffer and its in-flight reservation over to settle, so that
// memory stays accounted for until Kafka lets go of the bytes.
//
// The records were stamped st by s.stamps: the stamp is finished
// once Kafka settled them. After a failure it is finished only
// produce_timeout later: Produce says some records may still be written
// after an error, and a watermark must not pass them meanwhile.
func (s *Server) produce(recs []*kgo.Record, settle func(), st *stamp) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProduceTimeout)
	done := make(chan error, 1)
	s.pending.Add(1)
	start := time.Now()
	go func() {
		defer s.pending.Done()
		err := s.produceSafe(ctx, recs)
		cancel()
		result := "ok"
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			result = "timeout"
		case err != nil:
			result = "error"
		}
		s.m.produce.WithLabelValues(result).Observe(time.Since(start).Seconds())
		done <- err
		settle()
		switch {
		case err == nil:
			st.finish()
		default:
			time.AfterFunc(s.cfg.ProduceTimeout, st.finish)
		}
	}()
	t := time.NewTimer(s.cfg.ProduceTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", errProduceTimeout, err)
		}
		return err
	case <-t.C:
		s.m.abandoned.Inc()
		go func() { <-done; s.m.abandoned.Dec() }()
		return errProduceTimeout
	}
}

// produceSafe calls Produce, turning a panic (a bug below us) into an error
// so that the process and the in-flight accounting survive it.
func (s *Server) produceSafe(ctx context.Context, recs []*kgo.Record) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.m.panics.Inc()
			s.log.Error("panic in produce", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("produce panicked: %v", v)
		}
	}()
	return s.prod.Produce(ctx, recs...)
}

// ndjsonTypes are the media types that mean "ndjson" explicitly.
var ndjsonTypes = map[string]bool{
	"application/x-ndjson": true, "application/ndjson": true, "application/jsonl": true,
	"application/x-jsonl": true, "application/jsonlines": true, "application/x-jsonlines": true,
}

// contentType checks the Content-Type. A missing one is accepted (some
// senders omit it); a present one must be JSON or ndjson in UTF-8.
func contentType(h string) (ndjson bool, ok bool) {
	if strings.TrimSpace(h) == "" {
		return false, true
	}
	mt, params, err := mime.ParseMediaType(h)
	if err != nil {
		return false, false
	}
	if cs, has := params["charset"]; has && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return false, false
	}
	switch {
	case mt == "application/json", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"), mt == "text/json":
		return false, true
	case ndjsonTypes[mt]:
		return true, true
	}
	return false, false
}

// ReloadAuth replaces the credentials ingest accepts (bearer tokens, HMAC
// secrets, query_token) while it runs: a request already authorized
// finishes under the old set, every later one is checked against the new
// one, and no request is refused for the swap. This is how tokens rotate
// without downtime: add the new token, reload, move the senders over,
// remove the old one, reload. On error the current set stays in force.
// Tokens given by env are read again from this process's environment,
// which does not change; use sha256 or file entries to rotate in place.
func (s *Server) ReloadAuth(c auth.Config) error {
	if err := c.Validate("ingest.auth"); err != nil {
		return err
	}
	a, err := auth.New(c, s.getenv)
	if err != nil {
		return err
	}
	s.auth.Store(a)
	return nil
}
