package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU accounting of the end-to-end runs. CPU time per accepted payload is
// the figure to steer by on a shared machine: wall-clock rates move with
// everyone else's load, the CPU a process spends on a payload barely does.

// procCPU returns the user+system CPU seconds process pid has used (all its
// threads), from /proc/<pid>/stat.
func procCPU(pid int) (float64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field, stime the 15th.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) <= 12 {
		return 0, false
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (ut + st) / 100, true // USER_HZ
}

// selfCPU is the harness's own CPU seconds: loadgen (generating and sending
// the traffic) and the ClickHouse polls.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// servers are the local servers deploy/local/start.sh started, by the pid
// files it writes under $AUDITLINE_DATA/run (default .data/run).
var servers = []string{"kafka", "clickhouse", "minio"}

func serverPIDs() map[string]int {
	dir := os.Getenv("AUDITLINE_DATA")
	if dir == "" {
		dir = ".data"
	}
	out := map[string]int{}
	for _, s := range servers {
		b, err := os.ReadFile(filepath.Join(dir, "run", s+".pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			out[s] = pid
		}
	}
	return out
}

// cpuMeter reads the CPU seconds of the servers and of the harness at the
// start of a run and reports the difference at its end.
type cpuMeter struct {
	pids  map[string]int
	start map[string]float64
}

func newCPUMeter() *cpuMeter {
	m := &cpuMeter{pids: serverPIDs(), start: map[string]float64{}}
	for s, pid := range m.pids {
		if v, ok := procCPU(pid); ok {
			m.start[s] = v
		}
	}
	m.start["harness"] = selfCPU()
	return m
}

// used returns the CPU seconds of each server (and "harness") since the start.
func (m *cpuMeter) used() map[string]float64 {
	out := map[string]float64{}
	for s, pid := range m.pids {
		if v, ok := procCPU(pid); ok {
			if v0, ok := m.start[s]; ok {
				out[s] = v - v0
			}
		}
	}
	out["harness"] = selfCPU() - m.start["harness"]
	return out
}

// perfRecord samples process pid's stacks with perf(1) for d into file; the
// returned function waits for it. Errors (no perf, not permitted) are
// reported once and do not stop the run.
func perfRecord(file string, pid int, d time.Duration) func() {
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", file, "--", "sleep", strconv.Itoa(int(d.Seconds()+0.5)))
	out, err := os.Create(file + ".log")
	if err == nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		logf("perf record: %v", err)
		return func() {}
	}
	return func() {
		_ = cmd.Wait()
		if out != nil {
			out.Close()
		}
	}
}
