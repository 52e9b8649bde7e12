package app

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dauth "github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/privacy/pseudonym"
	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive"
)

// TestYAMLRoundTrip: a Config written with YAML reads back the same through
// Load (what internal/stacktest relies on to hand a typed config to a child
// process), secrets included.
func TestYAMLRoundTrip(t *testing.T) {
	c := NewDefaultConfig()
	c.TopicPrefix = "rt."
	c.DefaultGroups()
	c.Kafka.Brokers = []string{"10.0.0.1:9092", "10.0.0.2:9092"}
	c.Kafka.SessionTimeout = 6 * time.Second
	c.Kafka.InstanceID = "archive-0"
	c.Ingest.Auth.Tokens = []auth.Token{{Name: "a", SHA256: auth.Hash("tok"), Scopes: []auth.Scope{auth.ScopeLiteLLM}}}
	c.Ingest.Auth.HMAC.Secrets = []string{"k1", "k2"}
	c.Archive.S3.SecretKey = "s3-secret"
	c.Archive.Retention = archive.RetentionConfig{Mode: "GOVERNANCE", Period: retention.Exactly(time.Minute)}
	c.Enrich.Sampling.Rates = map[string]float64{"critical": 1, "high": 0.5, "low": 0.01}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Equal but for nil versus empty slices and maps, which YAML does not tell apart.
	want, _ := c.YAML()
	if again, _ := got.YAML(); string(again) != string(want) {
		t.Fatalf("read back a different config:\n%s\nwant:\n%s", again, want)
	}
	if got.Kafka.SessionTimeout != 6*time.Second || got.Ingest.Auth.HMAC.Secrets[1] != "k2" || got.Archive.S3.SecretKey != "s3-secret" ||
		got.Enrich.Sampling.Rates["high"] != 0.5 || !reflect.DeepEqual(got.Ingest.Auth.Tokens, c.Ingest.Auth.Tokens) {
		t.Fatalf("read back %+v", got)
	}
}

// TestRedacted: every secret prints as <redacted>; the config itself keeps
// its values.
func TestRedacted(t *testing.T) {
	c := NewDefaultConfig()
	c.Ingest.Auth.HMAC.Secrets = []string{"hmac-secret-1", "hmac-secret-2"}
	c.Archive.S3.SecretKey = "s3-secret"
	c.Store.ClickHouse.Password = "ch-password"
	c.Dashboard.ClickHouse.Password = "dash-ch-password"
	c.Dashboard.Ingest.Token = "oversight-token"
	c.Dashboard.Auth.Users = []dauth.UserConfig{{Name: "lee", PasswordHash: "$argon2id$hash", Role: "admin", Tenants: []string{"*"}}}
	c.Kafka.SASL = topic.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "auditline", Password: "kafka-sasl-password"}
	c.Enrich.Content.Pseudonymise = pseudonym.Config{Fields: []string{"identity.user_email"}, KeyID: "k1", Secret: "pseudonym-hmac-secret-0123456789abcdef"}
	out, err := c.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hmac-secret-1", "hmac-secret-2", "s3-secret", "ch-password", "dash-ch-password", "oversight-token", "$argon2id$hash", "kafka-sasl-password", "pseudonym-hmac-secret-0123456789abcdef"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%q printed:\n%s", secret, out)
		}
	}
	if n := strings.Count(string(out), redactedText); n != 9 {
		t.Errorf("%d redactions, want 9:\n%s", n, out)
	}
	if !strings.Contains(string(out), "name: lee") || !strings.Contains(string(out), "username: auditline") || !strings.Contains(string(out), "access_key: \"\"") {
		t.Errorf("non-secrets lost:\n%s", out)
	}
	if c.Archive.S3.SecretKey != "s3-secret" || c.Ingest.Auth.HMAC.Secrets[1] != "hmac-secret-2" || c.Dashboard.Auth.Users[0].PasswordHash != "$argon2id$hash" {
		t.Errorf("Redacted changed the original: %+v", c)
	}
}

// TestValidateNamesEveryKey: every problem is reported at once, each with
// its YAML key path.
func TestValidateNamesEveryKey(t *testing.T) {
	c := NewDefaultConfig()
	c.Kafka.Brokers = []string{"nohost"}
	c.Kafka.HeartbeatInterval = time.Minute
	c.Kafka.Compression = "brotli"
	c.TopicPrefix = ""
	c.Log.Format = "xml"
	c.Store.ClickHouse.Database = "bad-name"
	c.Enrich.LiteLLMWait = 0
	err := c.Validate("store", "enrich")
	for _, want := range []string{"kafka.brokers:", "kafka.heartbeat_interval:", "kafka.compression:", "topic_prefix:", "log.format:", "store.clickhouse.database:", "enrich.litellm_wait:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to name %s", err, want)
		}
	}
	if err := c.Validate("nosuch"); err == nil || !strings.Contains(err.Error(), `unknown stage "nosuch"`) {
		t.Errorf("unknown stage: %v", err)
	}
}

// TestEnvOverlay: short forms and key paths; a malformed value names its
// variable.
func TestEnvOverlay(t *testing.T) {
	c, err := Load("", []string{"AUDITLINE_KAFKA=k1:9092,k2:9092", "AUDITLINE_S3=https://ak:sk@s3:9000", "AUDITLINE_S3_BUCKET=b",
		"AUDITLINE_KAFKA_SESSION_TIMEOUT=7s", "AUDITLINE_TOPIC_PREFIX=eu.", "AUDITLINE_STORE_RAW_EVENTS=false", "OTHER=x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Kafka.Brokers, []string{"k1:9092", "k2:9092"}) || c.Kafka.SessionTimeout != 7*time.Second || c.Archive.S3.Endpoint != "s3:9000" ||
		!c.Archive.S3.Secure || c.Archive.S3.SecretKey != "sk" || c.Archive.S3.Bucket != "b" || c.Store.RawEvents || c.Store.Group != "eu-store" {
		t.Fatalf("overlay: %+v", c)
	}
	if _, err := Load("", []string{"AUDITLINE_KAFKA_PARTITIONS=many"}); err == nil || !strings.Contains(err.Error(), "AUDITLINE_KAFKA_PARTITIONS") {
		t.Fatalf("bad value: %v", err)
	}
	// A key that does not exist under a section (renamed, misspelt) is an
	// error naming it; other programs' variables pass.
	for _, name := range []string{"AUDITLINE_ARCHIVE_INSTANCE_ID", "AUDITLINE_INGEST_LISTN", "AUDITLINE_STORE_CLICKHOUSE_PASWORD"} {
		if _, err := Load("", []string{name + "=x"}); err == nil || !strings.Contains(err.Error(), name+": no such configuration key") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Load("", []string{"AUDITLINE_INGEST_TOKEN=t", "AUDITLINE_SPOOL_DIR=/x", "AUDITLINE_REQUIRE_SERVERS=1", "AUDITLINE_CLICKHOUSE_MODERN=h:1"}); err != nil {
		t.Errorf("other programs' variables refused: %v", err)
	}
}

// fakeStage records when it started and stopped.
type fakeStage struct {
	name string
	log  *eventLog
	fail error
}

type eventLog struct {
	mu sync.Mutex
	ev []string
}

func (l *eventLog) add(s string) { l.mu.Lock(); l.ev = append(l.ev, s); l.mu.Unlock() }

func (f *fakeStage) Run(ctx context.Context) error {
	f.log.add("start " + f.name)
	if f.fail != nil {
		return f.fail
	}
	<-ctx.Done()
	time.Sleep(5 * time.Millisecond) // a stage takes a moment to drain
	f.log.add("stop " + f.name)
	return nil
}

// TestRunOrder: stages start downstream-first, and stop upstream-first, each
// only after the one upstream of it has returned — on a signal and on a
// stage's failure alike.
func TestRunOrder(t *testing.T) {
	for _, failing := range []string{"", "store"} {
		t.Run("fail="+failing, func(t *testing.T) {
			log := &eventLog{}
			saved := pipeline
			t.Cleanup(func() { pipeline = saved })
			pipeline = nil
			started := make(chan struct{}, len(saved))
			for _, s := range saved {
				s := s
				s.build = func(*Config, Settings) (Stage, error) {
					f := &fakeStage{name: s.Name, log: log}
					if s.Name == failing {
						f.fail = errors.New("boom")
					}
					started <- struct{}{}
					return f, nil
				}
				pipeline = append(pipeline, s)
			}
			cfg := NewDefaultConfig()
			cfg.Ops.Listen = ""
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Run(ctx, &cfg, nil, Options{Logger: discard()}) }()
			if failing == "" {
				time.Sleep(50 * time.Millisecond)
				cancel()
			}
			err := <-done
			cancel()
			if (failing != "") != (err != nil) {
				t.Fatalf("Run = %v", err)
			}
			var starts, stops []string
			for _, e := range log.ev {
				if n, ok := strings.CutPrefix(e, "stop "); ok {
					stops = append(stops, n)
				} else {
					starts = append(starts, strings.TrimPrefix(e, "start "))
				}
			}
			slices.Sort(starts) // started at once, in goroutines
			if want := slices.Sorted(slices.Values(StageNames())); !slices.Equal(starts, want) {
				t.Errorf("started %v, want %v", starts, want)
			}
			want := []string{"ingest", "enrich", "store", "archive", "dashboard"}
			if failing != "" {
				want = slices.DeleteFunc(want, func(s string) bool { return s == failing })
			}
			if !slices.Equal(stops, want) {
				t.Errorf("stopped %v, want upstream-first %v", stops, want)
			}
		})
	}
	if got := StageNames(); !slices.Equal(got, []string{"dashboard", "archive", "store", "enrich", "ingest"}) {
		t.Errorf("pipeline order %v, want downstream-first", got)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestPseudonymsConfig: pseudonymisation is one setting for the records and
// every raw copy (Pseudonyms, handed to ingest and store); a short secret is
// refused naming the key and its length only.
func TestPseudonymsConfig(t *testing.T) {
	c := NewDefaultConfig()
	if c.Pseudonyms() != nil {
		t.Fatal("pseudonymisation on by default")
	}
	c.Enrich.Content.Pseudonymise = pseudonym.Config{Fields: []string{"identity.user_email"}, KeyID: "k1", Secret: strings.Repeat("s", 32)}
	if err := c.Validate("store", "enrich"); err != nil {
		t.Fatal(err)
	}
	if p := c.Pseudonyms(); p == nil || !p.Has("identity.user_email") {
		t.Fatalf("Pseudonyms() = %v", p)
	}
	c.Enrich.Content.Pseudonymise.Secret = "short"
	if err := c.Validate("enrich"); err == nil || !strings.Contains(err.Error(), "enrich.content.pseudonymise.secret: 5 bytes") || strings.Contains(err.Error(), "short") {
		t.Fatalf("short secret: %v", err)
	}
}
