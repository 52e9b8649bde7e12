package stacktest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/auditline/auditline/internal/app"
)

// InProcess is stages running inside the test process (app.Run), for tests
// that want a debugger, the race detector or coverage across stages. They
// share the test's process, so they cannot be killed one at a time: use
// child processes (Start) for that.
type InProcess struct {
	LogPath string
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	err     error
}

// RunInProcess validates Config for the named stages (every stage when none
// is named) and runs them in this process until the test ends or Stop is
// called, logging to Dir/inprocess-<n>.log.
func (s *Stack) RunInProcess(stages ...string) *InProcess {
	s.t.Helper()
	cfg := s.Config
	if err := cfg.Validate(stages...); err != nil {
		s.t.Fatalf("invalid configuration:\n%v", err)
	}
	s.mu.Lock()
	n := len(s.inproc)
	s.mu.Unlock()
	path := filepath.Join(s.Dir, fmt.Sprintf("inprocess-%d.log", n))
	f, err := os.Create(path)
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &InProcess{LogPath: path, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- app.Run(ctx, &cfg, stages, app.Options{Logger: cfg.Logger(f)})
		f.Close()
	}()
	s.mu.Lock()
	s.inproc = append(s.inproc, r)
	s.mu.Unlock()
	return r
}

// Stop stops the stages (upstream-first, as app.Run does) and returns Run's
// error; it is an error too when they take more than a minute.
func (r *InProcess) Stop() error {
	if r.stopped {
		return r.err
	}
	r.stopped = true
	r.cancel()
	select {
	case r.err = <-r.done:
	case <-time.After(time.Minute):
		r.err = errors.New("in-process stages did not stop within a minute")
	}
	return r.err
}
