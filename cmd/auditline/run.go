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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A stage is one long-running part of the pipeline. Run blocks until ctx ends
// (then it shuts down gracefully: stops accepting, finishes what is in flight,
// commits, and returns nil) or until it fails (then it returns the error).
// We chose Run over Start/Shutdown pairs: one method carries both the lifetime
// and the failure of a stage, and the runner below still stops stages
// upstream-first by cancelling their contexts one at a time.
type stage interface {
	Run(ctx context.Context) error
}

// readier is implemented by stages that know when they can do useful work
// (ingest: the broker answers). /readyz reports the first error.
type readier interface {
	Ready(ctx context.Context) error
}

// settings is what main hands every stage: the logger and the metrics registry.
type settings struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Handle mounts the ops endpoints (/metrics, /healthz, /readyz) on a stage's
	// own HTTP mux, so that ingest and dashboard serve them on their port too.
	Handle func(mux *http.ServeMux)
	// Reload reads the configuration again (file + environment, validated),
	// for stages that apply part of it while running (ingest: credentials on
	// SIGHUP). Nil when there is nothing to reload from.
	Reload func() (*Config, error)
}

type builder func(cfg *Config, set settings) (stage, error)

// builders maps a stage name to its constructor, in downstream-first order of
// the pipeline (the order they start; they stop in reverse).
var stageOrder = []string{"dashboard", "archive", "store", "enrich", "ingest"}

func builders() map[string]builder {
	return map[string]builder{
		"ingest":    newIngestStage,
		"enrich":    newEnrichStage,
		"store":     newStoreStage,
		"archive":   newArchiveStage,
		"dashboard": newDashboardStage,
	}
}

// stageCommand returns the run function of a subcommand that runs the named
// stages in one process.
func stageCommand(names ...string) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet(strings.Join(names, "+"), flag.ContinueOnError)
		configPath := fs.String("config", os.Getenv("AUDITLINE_CONFIG"), "path of the YAML config file (env AUDITLINE_CONFIG); defaults apply when empty")
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage: auditline %s [--config FILE]\n\nRuns: %s. Stops gracefully on SIGINT/SIGTERM.\nEvery config key can be overridden by AUDITLINE_<SECTION>_<KEY> (see 'auditline config').\n\nFlags:\n", os.Args[1], strings.Join(names, ", "))
			fs.PrintDefaults()
		}
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return errUsage
		}
		load := func() (*Config, error) {
			cfg, err := loadConfig(*configPath)
			if err != nil {
				return nil, err
			}
			if err := cfg.validate(names...); err != nil {
				return nil, fmt.Errorf("invalid configuration:\n%w", err)
			}
			return cfg, nil
		}
		cfg, err := load()
		if err != nil {
			return err
		}
		return runStages(ctx, cfg, names, load)
	}
}

func newLogger(cfg *Config) *slog.Logger {
	level, _ := parseLevel(cfg.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// runStages builds every named stage (all before any starts, so a bad config
// never leaves half a pipeline running), starts them downstream-first, and on
// ctx's end or the first failure stops them upstream-first.
func runStages(ctx context.Context, cfg *Config, names []string, reload func() (*Config, error)) error {
	log := newLogger(cfg)
	slog.SetDefault(log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	type running struct {
		name string
		st   stage
	}
	var stages []running
	var readiers []readier
	ops := newOps(reg, func(ctx context.Context) error {
		for _, r := range readiers {
			if err := r.Ready(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	set := settings{Registry: reg, Handle: ops.mount, Reload: reload}
	bs := builders()
	for _, n := range stageOrder {
		if !want[n] {
			continue
		}
		set.Logger = log.With("stage", n)
		st, err := bs[n](cfg, set)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		stages = append(stages, running{n, st})
		if r, ok := st.(readier); ok {
			readiers = append(readiers, r)
		}
	}

	if cfg.Ops.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Ops.Listen)
		if err != nil {
			return fmt.Errorf("ops.listen: %w", err)
		}
		srv := &http.Server{Handler: ops.mux(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Info("ops endpoints", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	}

	failed := make(chan error, len(stages))
	cancels := make([]context.CancelFunc, len(stages))
	dones := make([]chan struct{}, len(stages))
	for i, r := range stages {
		sctx, cancel := context.WithCancel(context.Background())
		cancels[i], dones[i] = cancel, make(chan struct{})
		go func() {
			defer close(dones[i])
			log.Info("stage starting", "stage", r.name)
			if err := r.st.Run(sctx); err != nil {
				failed <- fmt.Errorf("%s: %w", r.name, err)
			}
			log.Info("stage stopped", "stage", r.name)
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down (a second signal quits at once)")
	case runErr = <-failed:
		log.Error("stage failed; shutting down", "err", runErr)
	}
	// Upstream-first: ingest stops accepting before enrich stops, and so on.
	for i := len(stages) - 1; i >= 0; i-- {
		cancels[i]()
		<-dones[i]
	}
	close(failed)
	for err := range failed {
		if runErr == nil {
			runErr = err
		}
	}
	return runErr
}

// ops serves /metrics, /healthz and /readyz.
type ops struct {
	reg   *prometheus.Registry
	ready func(ctx context.Context) error
	once  sync.Once
	m     *http.ServeMux
}

func newOps(reg *prometheus.Registry, ready func(ctx context.Context) error) *ops {
	return &ops{reg: reg, ready: ready}
}

func (o *ops) mount(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{Registry: o.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := o.ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

func (o *ops) mux() *http.ServeMux {
	o.once.Do(func() {
		o.m = http.NewServeMux()
		o.mount(o.m)
	})
	return o.m
}
