package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

type machine struct {
	CPUs       int
	Model      string
	MemGB      float64
	Kernel     string
	Go         string
	Kafka      string
	ClickHouse string
	MinIO      string
	LoadStart  string
}

func (m machine) summary() string {
	return fmt.Sprintf("%d × %s, %.1f GB RAM; Go %s, Kafka %s, ClickHouse %s, MinIO %s; load %s",
		m.CPUs, m.Model, m.MemGB, m.Go, m.Kafka, m.ClickHouse, m.MinIO, m.LoadStart)
}

func machineInfo(ctx context.Context) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Model: "?", Kafka: "?", ClickHouse: "?", MinIO: "?"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if s := regexp.MustCompile(`(?m)^model name\s*:\s*(.*)$`).FindSubmatch(b); s != nil {
			m.Model = strings.TrimSpace(string(s[1]))
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if s := regexp.MustCompile(`(?m)^MemTotal:\s*(\d+) kB`).FindSubmatch(b); s != nil {
			kb, _ := strconv.ParseFloat(string(s[1]), 64)
			m.MemGB = kb / 1024 / 1024
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	// Kafka and MinIO: the versions deploy/local installs (and runs here).
	if b, err := os.ReadFile("deploy/local/lib.sh"); err == nil {
		if s := regexp.MustCompile(`(?m)^KAFKA_VERSION=(\S+)`).FindSubmatch(b); s != nil {
			m.Kafka = string(s[1])
		}
		if s := regexp.MustCompile(`(?m)^MINIO_VERSION=(\S+)`).FindSubmatch(b); s != nil {
			m.MinIO = "github.com/minio/minio " + string(s[1])
		}
	}
	if conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{os.Getenv("AUDITLINE_CLICKHOUSE")}}); err == nil {
		if v, err := conn.ServerVersion(); err == nil {
			m.ClickHouse = fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch)
		}
		conn.Close()
	}
	m.LoadStart = loadAvg()
	return m
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
