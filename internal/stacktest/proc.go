package stacktest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process run for a test, supervised as a service manager
// with Restart=always would when Restart is set: an exit the test did not
// cause is counted and followed by a restart. Its output goes to LogPath,
// appended across restarts, each start marked by a "=== stacktest: start"
// line.
type Proc struct {
	Name    string
	Args    []string // Args[0] is the program
	Env     []string // nil: this process's environment
	Dir     string   // working directory; empty: this process's
	LogPath string
	// Restart restarts the process, RestartDelay after an exit the test did
	// not cause (Stop and Kill are the test's doing).
	Restart      bool
	RestartDelay time.Duration // default 2s
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL;
	// default one minute.
	StopTimeout time.Duration

	t     TB
	mu    sync.Mutex
	cmd   *exec.Cmd
	log   *os.File
	done  chan struct{} // closed when the current process has exited
	err   error         // its exit error, once done
	ours  bool          // the current process is being killed or stopped by us
	quit  bool          // stopped for good: no more restarts
	kills int
	exits int
	start int
}

const startMarker = "=== stacktest: start "

// Start starts the process (again, after Kill). It fails the test when the
// program cannot be started.
func (p *Proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quit {
		return
	}
	if p.log == nil {
		f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			p.t.Errorf("%s: log: %v", p.Name, err)
			return
		}
		p.log = f
	}
	p.start++
	fmt.Fprintf(p.log, "\n%s%d of %s at %s\n", startMarker, p.start, p.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env, cmd.Dir = p.Env, p.Dir
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Errorf("start %s: %v", p.Name, err)
		return
	}
	done := make(chan struct{})
	p.cmd, p.done, p.ours, p.err = cmd, done, false, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		unexpected := p.cmd == cmd && !p.ours && !p.quit
		if unexpected {
			p.exits++
		}
		restart := unexpected && p.Restart
		p.mu.Unlock()
		close(done)
		if restart {
			delay := p.RestartDelay
			if delay == 0 {
				delay = 2 * time.Second
			}
			Say("%s exited on its own (%v); restarting it in %s", p.Name, err, delay)
			time.Sleep(delay)
			p.Start()
		}
	}()
}

// Kill SIGKILLs the process and waits until it is gone. Start brings it back.
func (p *Proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.ours = true
	p.kills++
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Signal sends sig to the running process.
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s: not started", p.Name)
	}
	return cmd.Process.Signal(sig)
}

// Stop ends the process for good: SIGTERM, then SIGKILL after StopTimeout.
// It returns an error unless the process exited by itself with status 0
// within StopTimeout of the SIGTERM (a clean stop). Calling it again returns
// the first result.
func (p *Proc) Stop() error {
	p.mu.Lock()
	if p.quit {
		p.mu.Unlock()
		return nil
	}
	p.quit, p.ours = true, true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done: // it had exited already
		p.mu.Lock()
		err := p.err
		p.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s had exited: %v", p.Name, err)
		}
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	timeout := p.StopTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within %s of SIGTERM (killed)", p.Name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("%s did not stop cleanly: %v", p.Name, p.err)
	}
	return nil
}

// Exited returns a channel closed when the current process has exited, and
// its exit error once it is.
func (p *Proc) Exited() (<-chan struct{}, func() error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := p.done
	return done, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	}
}

// Died reports whether the current process exited on its own (not by Stop
// or Kill) and will not be restarted, and its exit error.
func (p *Proc) Died() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil || p.ours || p.quit || p.Restart {
		return false, nil
	}
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Running reports whether the current process has not exited.
func (p *Proc) Running() bool {
	done, _ := p.Exited()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid is the current process's id (0 before Start).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Counts returns how often the test killed the process and how often it
// exited on its own.
func (p *Proc) Counts() (kills, exits int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills, p.exits
}

// Log returns everything the process has written so far.
func (p *Proc) Log() []byte {
	b, _ := os.ReadFile(p.LogPath)
	return b
}

// Output returns the log without the harness's "=== stacktest:" marker
// lines: what the process itself wrote, over all its starts.
func (p *Proc) Output() string {
	lines := strings.SplitAfter(string(p.Log()), "\n")
	var b strings.Builder
	for i, l := range lines {
		marker := strings.HasPrefix(l, startMarker)
		beforeMarker := l == "\n" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], startMarker)
		if !marker && !beforeMarker {
			b.WriteString(l)
		}
	}
	return b.String()
}

// LogCount returns how many times s appears in the log.
func (p *Proc) LogCount(s string) int { return bytes.Count(p.Log(), []byte(s)) }

// close closes the log file after the process ended.
func (p *Proc) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log != nil {
		p.log.Close()
		p.log = nil
	}
}
