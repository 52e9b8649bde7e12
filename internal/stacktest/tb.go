package stacktest

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// TB is what the harness needs of a test. *testing.T and *testing.B satisfy
// it; Program does for a program that is not a test (bench/).
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Cleanup(func())
	TempDir() string
}

// Program is a TB for programs: Fatalf ends the function given to RunProgram
// (or Try) with an error, Errorf marks it failed, and the cleanups run when
// RunProgram returns (or at Close).
type Program struct {
	mu       sync.Mutex
	errs     []error
	cleanups []func()
	dirs     []string
	// Log receives Logf lines; nil discards them.
	Log func(string)
}

type fatal struct{}

// RunProgram runs f with p as its TB and returns the errors it reported
// (Errorf, Fatalf), after running every cleanup, last registered first.
func (p *Program) RunProgram(f func(t TB)) error {
	err := p.Try(f)
	return errors.Join(err, p.Close())
}

// Try runs f with p as its TB and returns the errors f reported (Fatalf ends
// f early). Cleanups wait for Close, so that what f set up outlives it.
func (p *Program) Try(f func(t TB)) (err error) {
	p.mu.Lock()
	n := len(p.errs)
	p.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(fatal); !ok {
				panic(v)
			}
		}
		p.mu.Lock()
		err = errors.Join(p.errs[n:]...)
		p.mu.Unlock()
	}()
	f(p)
	return nil
}

// Close runs every cleanup, last registered first, removes the TempDirs and
// returns the errors the cleanups reported.
func (p *Program) Close() error {
	p.mu.Lock()
	cs, dirs, n := p.cleanups, p.dirs, len(p.errs)
	p.cleanups, p.dirs = nil, nil
	p.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		p.Try(func(TB) { cs[i]() })
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs[n:]...)
}

func (p *Program) Helper() {}

func (p *Program) Logf(format string, args ...any) {
	if p.Log != nil {
		p.Log(fmt.Sprintf(format, args...))
	}
}

func (p *Program) Errorf(format string, args ...any) {
	p.mu.Lock()
	p.errs = append(p.errs, fmt.Errorf(format, args...))
	p.mu.Unlock()
}

func (p *Program) Fatalf(format string, args ...any) {
	p.Errorf(format, args...)
	panic(fatal{})
}

func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.errs) > 0
}

func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	p.cleanups = append(p.cleanups, f)
	p.mu.Unlock()
}

func (p *Program) TempDir() string {
	d, err := os.MkdirTemp("", "stacktest-")
	if err != nil {
		p.Fatalf("temp dir: %v", err)
	}
	p.mu.Lock()
	p.dirs = append(p.dirs, d)
	p.mu.Unlock()
	return d
}
