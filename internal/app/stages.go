package app

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/enrich"
	"github.com/auditline/auditline/ingest"
	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/store"
)

// Stage is one long-running part of the pipeline. Run blocks until ctx ends
// (then it shuts down gracefully: stops accepting, finishes what is in flight,
// commits, and returns nil) or until it fails (then it returns the error).
// One method carries both the lifetime and the failure of a stage; Run below
// still stops stages one at a time, upstream-first, by cancelling their
// contexts in turn.
type Stage interface {
	Run(ctx context.Context) error
}

// readier is implemented by stages that know when they can do useful work
// (ingest: the broker answers). /readyz reports the first error.
type readier interface {
	Ready(ctx context.Context) error
}

// Settings is what Run hands every stage builder.
type Settings struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Handle mounts the ops endpoints (/metrics, /healthz, /readyz) on a
	// stage's own HTTP mux, so that ingest and dashboard serve them on their
	// port too.
	Handle func(mux *http.ServeMux)
	// Reload reads the configuration again (file + environment, validated),
	// for stages that apply part of it while running (ingest: credentials on
	// SIGHUP). Nil when there is nothing to reload from.
	Reload func() (*Config, error)
}

// StageInfo names a stage and says what it does.
type StageInfo struct {
	Name    string
	Summary string
}

// stage is one entry of the pipeline: its name, what 'auditline help' says
// of it, which config sections it validates, and how it is built.
type stage struct {
	StageInfo
	validate func(c *Config) error
	build    func(c *Config, set Settings) (Stage, error)
}

// pipeline lists every stage downstream-first: the order in which Run starts
// them. Run stops them in the reverse order, upstream-first. This list is the
// only place that knows the stages.
var pipeline = []stage{
	{StageInfo{"dashboard", "serve the near-miss and sampling dashboards"},
		func(c *Config) error { return c.Dashboard.Validate() }, buildDashboard},
	{StageInfo{"archive", "seal decision records into Parquet + Merkle root on S3 Object Lock"},
		func(c *Config) error { return c.Archive.Validate() }, buildArchive},
	{StageInfo{"store", "write decision records and raw events to ClickHouse"},
		func(c *Config) error { return c.Store.Validate() }, buildStore},
	{StageInfo{"enrich", "join each request's events into a decision record"},
		func(c *Config) error { return c.Enrich.Validate() }, buildEnrich},
	{StageInfo{"ingest", "receive webhooks (LiteLLM, alerts, audit, gateway, oversight) into Kafka"},
		func(c *Config) error { return c.Ingest.Validate() }, buildIngest},
}

// Stages returns every stage, downstream-first.
func Stages() []StageInfo {
	out := make([]StageInfo, len(pipeline))
	for i, s := range pipeline {
		out[i] = s.StageInfo
	}
	return out
}

// StageNames returns every stage's name, downstream-first.
func StageNames() []string {
	out := make([]string, len(pipeline))
	for i, s := range pipeline {
		out[i] = s.Name
	}
	return out
}

func lookup(name string) (stage, bool) {
	for _, s := range pipeline {
		if s.Name == name {
			return s, true
		}
	}
	return stage{}, false
}

// Every stage package has one constructor shape: New(its section, the shared
// Kafka connection and topic names, its Settings), doing no network I/O.

func buildIngest(c *Config, set Settings) (Stage, error) {
	s, err := ingest.New(c.Ingest, c.Shared(), ingest.Settings{Logger: set.Logger, Registry: set.Registry, Mount: set.Handle, Capture: c.Capture(), Pseudonyms: c.Pseudonyms()})
	if err != nil {
		return nil, err
	}
	if set.Reload == nil {
		return s, nil
	}
	return &reloadingIngest{Server: s, reload: set.Reload, log: set.Logger}, nil
}

func buildEnrich(c *Config, set Settings) (Stage, error) {
	return built(enrich.New(c.Enrich, c.Shared(), enrich.Settings{Logger: set.Logger, Registry: set.Registry}))
}

func buildStore(c *Config, set Settings) (Stage, error) {
	return built(store.New(c.Store, c.Shared(), store.Settings{Logger: set.Logger, Registry: set.Registry, Capture: c.Capture(), Pseudonyms: c.Pseudonyms()}))
}

func buildArchive(c *Config, set Settings) (Stage, error) {
	a, err := archive.New(c.Archive, c.Shared(), archive.Settings{Logger: set.Logger, Registry: set.Registry})
	if err != nil {
		return nil, err
	}
	log := set.Logger
	if log == nil {
		log = slog.Default()
	}
	raws, err := buildRawArchives(c, set)
	if err != nil {
		return nil, err
	}
	return &sealingArchive{Archiver: a, cfg: c, log: log, raws: raws}, nil
}

// built turns a constructor's result into a Stage, never a non-nil Stage
// holding a nil pointer.
func built[T Stage](s T, err error) (Stage, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
