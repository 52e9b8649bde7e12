package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/auditline/auditline/dashboards"
	"github.com/auditline/auditline/enrich"
	"github.com/auditline/auditline/ingest"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/sinks/archive"
	"github.com/auditline/auditline/store"
)

// Config is the whole YAML file. Each stage owns its section, its defaults and
// its Validate; this type only composes them.
type Config struct {
	Kafka topic.Config `yaml:"kafka"`
	// TopicPrefix names the topics: <prefix>raw.litellm, <prefix>decisions, …
	TopicPrefix string            `yaml:"topic_prefix"`
	Log         LogConfig         `yaml:"log"`
	Ops         OpsConfig         `yaml:"ops"`
	Ingest      ingest.Config     `yaml:"ingest"`
	Enrich      enrich.Config     `yaml:"enrich"`
	Store       store.Config      `yaml:"store"`
	Archive     archive.Config    `yaml:"archive"`
	Dashboard   dashboards.Config `yaml:"dashboard"`
}

// LogConfig selects the structured log output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// OpsConfig is the operations listener: /metrics, /healthz, /readyz.
type OpsConfig struct {
	// Listen address; empty disables it (ingest and dashboard also serve these
	// paths on their own listeners).
	Listen string `yaml:"listen"`
}

func defaultConfig() Config {
	return Config{
		Kafka:       topic.NewDefaultConfig(),
		TopicPrefix: raw.DefaultTopics.Prefix,
		Log:         LogConfig{Level: "info", Format: "text"},
		Ops:         OpsConfig{Listen: "127.0.0.1:9464"},
		Ingest:      ingest.NewDefaultConfig(),
		Enrich:      enrich.NewDefaultConfig(),
		Store:       store.NewDefaultConfig(),
		Archive:     archive.NewDefaultConfig(),
		Dashboard:   dashboards.NewDefaultConfig(),
	}
}

func (c *Config) topics() raw.Topics { return raw.Topics{Prefix: c.TopicPrefix} }

// loadConfig reads defaults, then the file (if path is set; unknown keys are
// errors), then the environment.
func loadConfig(path string) (*Config, error) {
	cfg := defaultConfig()
	// Consumer groups left unset are named after the topic prefix (see
	// defaultGroups), so two pipelines with different prefixes on one
	// cluster never share a group.
	cfg.Enrich.Group, cfg.Store.Group, cfg.Archive.Group = "", "", ""
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, os.Environ()); err != nil {
		return nil, err
	}
	cfg.defaultGroups()
	return &cfg, nil
}

// defaultGroups names every consumer group the configuration leaves empty
// after the topic prefix: prefix "auditline." gives auditline-enrich,
// auditline-store and auditline-archive; "eu.prod." gives eu.prod-enrich, ….
// A group shared by two pipelines that read different topics would leave
// one pipeline's partitions unread.
func (c *Config) defaultGroups() {
	base := strings.TrimSuffix(c.TopicPrefix, ".")
	if base == "" {
		base = "auditline"
	}
	for _, g := range []struct {
		v    *string
		name string
	}{{&c.Enrich.Group, "enrich"}, {&c.Store.Group, "store"}, {&c.Archive.Group, "archive"}} {
		if *g.v == "" {
			*g.v = base + "-" + g.name
		}
	}
}

// validate checks the shared sections and those of the named stages, and
// reports every problem at once.
func (c *Config) validate(stages ...string) error {
	var errs []error
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.TopicPrefix == "" {
		errs = append(errs, errors.New("topic_prefix: must not be empty (default \"auditline.\")"))
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		errs = append(errs, err)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		errs = append(errs, fmt.Errorf("log.format: %q, want json or text", c.Log.Format))
	}
	for _, s := range stages {
		var err error
		switch s {
		case "ingest":
			err = c.Ingest.Validate()
		case "enrich":
			err = c.Enrich.Validate()
		case "store":
			err = c.Store.Validate()
		case "archive":
			err = c.Archive.Validate()
		case "dashboard":
			err = c.Dashboard.Validate()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log.level: %q, want debug, info, warn or error", s)
	}
	return l, nil
}

// applyEnv applies environment overrides:
//
//   - the short forms the local stack writes to .data/env:
//     AUDITLINE_KAFKA=host:port[,host:port] → kafka.brokers
//     AUDITLINE_CLICKHOUSE=host:port        → store.clickhouse.addr
//     AUDITLINE_S3=http(s)://KEY:SECRET@host:port → archive.s3.{endpoint,secure,access_key,secret_key}
//     AUDITLINE_S3_BUCKET=name               → archive.s3.bucket
//   - any scalar key by its path: AUDITLINE_INGEST_LISTEN=:8080 sets
//     ingest.listen; lists are comma-separated, durations as "5s".
func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "AUDITLINE_") {
			env[k] = v
		}
	}
	if v := env["AUDITLINE_KAFKA"]; v != "" {
		cfg.Kafka.Brokers = strings.Split(v, ",")
	}
	if v := env["AUDITLINE_CLICKHOUSE"]; v != "" {
		cfg.Store.ClickHouse.Addr = strings.Split(v, ",")
	}
	if v := env["AUDITLINE_S3"]; v != "" {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return fmt.Errorf("AUDITLINE_S3: want http(s)://ACCESS:SECRET@host:port, got %q", v)
		}
		cfg.Archive.S3.Endpoint = u.Host
		cfg.Archive.S3.Secure = u.Scheme == "https"
		if u.User != nil {
			cfg.Archive.S3.AccessKey = u.User.Username()
			cfg.Archive.S3.SecretKey, _ = u.User.Password()
		}
	}
	if v := env["AUDITLINE_S3_BUCKET"]; v != "" {
		cfg.Archive.S3.Bucket = v
	}
	var errs []error
	walkEnv(reflect.ValueOf(cfg).Elem(), "AUDITLINE", env, &errs)
	return errors.Join(errs...)
}

var durationType = reflect.TypeFor[time.Duration]()

func walkEnv(v reflect.Value, prefix string, env map[string]string, errs *[]error) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" || !sf.IsExported() {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			walkEnv(fv, name, env, errs)
			continue
		}
		s, ok := env[name]
		if !ok {
			continue
		}
		if err := setFromString(fv, s); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", name, err))
		}
	}
}

func setFromString(fv reflect.Value, s string) error {
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(s)
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case fv.CanInt():
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case fv.CanUint():
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return err
		}
		fv.SetUint(n)
	case fv.CanFloat():
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(f)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		var parts []string
		if s != "" {
			parts = strings.Split(s, ",")
		}
		fv.Set(reflect.ValueOf(parts).Convert(fv.Type()))
	default:
		return fmt.Errorf("cannot be set from the environment (type %s); use the config file", fv.Type())
	}
	return nil
}
