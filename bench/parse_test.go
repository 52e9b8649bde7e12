package main

import (
	"strings"
	"testing"
)

const benchOutput = `goos: linux
goarch: amd64
pkg: github.com/auditline/auditline/sinks/archive
cpu: AMD EPYC
BenchmarkArchive/baseline-sha256-2         	      12	  95012345 ns/op	    210512 records/s
BenchmarkArchive/seal-2                    	       1	1500000000 ns/op	     13333 records/s	         0.063 ratio-vs-sha256
    bench_test.go:88: a log line
BenchmarkIngest-2   	       3	 412345678 ns/op	  85.20 MB/s	     24000 payloads/s	         0.5100 x_raw	        40.00 p50_ms	        not-a-number p99_ms
PASS
ok  	github.com/auditline/auditline/sinks/archive	12.3s
`

func TestParseBench(t *testing.T) {
	rs, err := ParseBench(strings.NewReader(benchOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d results: %+v", len(rs), rs)
	}
	seal, ok := Find(rs, "BenchmarkArchive/seal")
	if !ok || seal.N != 1 || seal.Metrics["records/s"] != 13333 || seal.Metrics["ratio-vs-sha256"] != 0.063 {
		t.Fatalf("seal: %+v", seal)
	}
	in, ok := Find(rs, "BenchmarkIngest")
	if !ok || in.Metrics["payloads/s"] != 24000 || in.Metrics["x_raw"] != 0.51 || in.Metrics["MB/s"] != 85.2 {
		t.Fatalf("ingest: %+v", in)
	}
	if _, ok := in.Metrics["p99_ms"]; ok {
		t.Fatal("an unparsable value was kept")
	}
	if _, ok := Find(rs, "BenchmarkArchive"); ok {
		t.Fatal("found a result that has none")
	}
}
