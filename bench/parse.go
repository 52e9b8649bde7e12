package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Result is one line of `go test -bench` output: the benchmark's name
// (without the -GOMAXPROCS suffix), its iteration count and every value it
// reported, keyed by unit ("ns/op", "payloads/s", "x_raw", …).
type Result struct {
	Name    string
	N       int
	Metrics map[string]float64
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// ParseBench reads `go test -bench` output and returns the benchmark result
// lines in order; log lines, PASS/ok lines and the goos/goarch header are
// skipped. A metric that does not parse as a number is skipped, not fatal.
func ParseBench(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue // a "BenchmarkX" line without results (e.g. a parent of sub-benchmarks, or a log line)
		}
		res := Result{Name: procSuffix.ReplaceAllString(f[0], ""), N: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res.Metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// Find returns the result named name (without -GOMAXPROCS suffix).
func Find(rs []Result, name string) (Result, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return Result{}, false
}
