package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options tune Run.
type Options struct {
	// Logger receives every stage's log lines. Nil: the logger cfg.Log
	// asks for, on stderr, which also becomes slog's default (the binary).
	Logger *slog.Logger
	// Reload reads the configuration again (see Settings.Reload); nil
	// disables reloading.
	Reload func() (*Config, error)
}

// Run builds the named stages (every stage when names is empty; the order of
// names does not matter), all of them before any starts, so a bad
// configuration never leaves half a pipeline running. It then starts them
// downstream-first — each stage's Run in its own goroutine, without waiting
// for the one before to be ready — and serves the ops endpoints. When ctx
// ends or a stage fails, it stops them upstream-first: it cancels ingest and
// waits for its Run to return, then enrich, and so on. It returns the first
// stage failure, or nil after a clean stop. cfg should have passed
// Validate(names...).
func Run(ctx context.Context, cfg *Config, names []string, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = cfg.Logger(os.Stderr)
		slog.SetDefault(log)
	}
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := lookup(n); !ok {
			return fmt.Errorf("unknown stage %q", n)
		}
		want[n] = true
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	type running struct {
		name string
		st   Stage
	}
	var stages []running // downstream-first
	var readiers []readier
	ops := newOps(reg, func(ctx context.Context) error {
		for _, r := range readiers {
			if err := r.Ready(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	set := Settings{Registry: reg, Handle: ops.mount, Reload: opts.Reload}
	for _, def := range pipeline {
		if len(want) > 0 && !want[def.Name] {
			continue
		}
		set.Logger = log.With("stage", def.Name)
		st, err := def.build(cfg, set)
		if err != nil {
			return fmt.Errorf("%s: %w", def.Name, err)
		}
		stages = append(stages, running{def.Name, st})
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

	// Start downstream-first. Each stage gets its own context, not ctx, so
	// that the shutdown below decides the order in which they stop.
	failed := make(chan error, len(stages))
	cancels := make([]context.CancelFunc, len(stages))
	dones := make([]chan struct{}, len(stages))
	for i, r := range stages {
		sctx, cancel := context.WithCancel(context.Background())
		cancels[i], dones[i] = cancel, make(chan struct{})
		log.Info("stage starting", "stage", r.name)
		go func() {
			defer close(dones[i])
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
	// Stop upstream-first: ingest stops accepting and drains before enrich is
	// told to stop, and so on down the pipeline.
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
