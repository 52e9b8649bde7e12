package archive

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/witness"
)

// DefaultRetention is seven calendar years (privacy/retention: computed from
// the date, so leap days count; 7 × 365 days would fall 1–2 days short).
var DefaultRetention = retention.Years(7)

// Defaults for Config.
const (
	DefaultGroup              = "auditline-archive"
	DefaultPrefix             = "auditline/"
	DefaultMaxRecords         = 20_000
	DefaultMaxBytes           = 8 << 20 // half of kafka.max_outstanding_bytes: the Reader never pauses a partition before a batch fills
	DefaultMaxAge             = time.Minute
	DefaultRowGroupBytes      = 32 << 20
	DefaultCheckpointInterval = time.Minute
	DefaultTSATimeout         = 30 * time.Second
	DefaultShutdownTimeout    = 15 * time.Second
	DefaultWitnessTimeout     = 10 * time.Second
)

// Config is the archive stage's YAML section ("archive").
type Config struct {
	S3 S3Config `yaml:"s3"`
	// Group is the Kafka consumer group.
	Group string `yaml:"group"`
	// Prefix is the key prefix of the archive inside the bucket ("" for the
	// bucket root). One prefix holds the chain of one topic.
	Prefix string `yaml:"prefix"`
	// Origin names this archive in every manifest and checkpoint, and is the
	// key name on their signatures (no spaces, no '+'). Empty means
	// "auditline/<bucket>/<prefix>".
	Origin string `yaml:"origin"`
	// SigningKeyFile is the Ed25519 private key (PKCS #8 PEM, mode 0600) made
	// by `auditline keys generate`.
	SigningKeyFile string `yaml:"signing_key_file"`
	// Retention is the Object Lock applied to every object written.
	Retention RetentionConfig `yaml:"retention"`
	// Batch says when a partition's open batch is sealed.
	Batch BatchConfig `yaml:"batch"`
	// Checkpoint is the periodic signed statement over all partition heads.
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
	// ShutdownTimeout bounds sealing open batches when the stage stops or a
	// partition is revoked; what is not sealed in time is re-read on restart.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Witness anchors the global log outside the bucket: each checkpoint is
	// submitted to these C2SP tlog-witnesses, and their cosignatures stored.
	Witness WitnessConfig `yaml:"witness"`
	// Raw seals the raw source events beside the decisions (raw.go).
	Raw RawConfig `yaml:"raw"`
	// Audit is what the auditor's commands (verify, prove, export, the
	// dashboard's proofs) trust and require when they run with this config.
	Audit AuditConfig `yaml:"audit"`
}

// WitnessConfig lists the witnesses of the global log.
type WitnessConfig struct {
	// Witnesses are C2SP tlog-witnesses (`auditline witness`, litewitness,
	// any other): each cosigns a checkpoint only if it extends the last one it
	// saw. Empty means no witness: the newest batches could then be removed
	// without detection (verify says so).
	Witnesses []WitnessEntry `yaml:"witnesses"`
	// Quorum is how many of them must cosign a checkpoint for verify to count
	// it as anchored; default 1.
	Quorum int `yaml:"quorum"`
	// Timeout bounds one request to a witness; default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// WitnessEntry is one witness.
type WitnessEntry struct {
	// Key is the witness's cosignature verifier key (a C2SP vkey,
	// "name+hash+base64", type 0x04 cosignature/v1 or 0x01 Ed25519), as its
	// operator publishes it (`auditline witness` prints it at start).
	Key string `yaml:"key"`
	// URL is its submission prefix (add-checkpoint is POSTed under it).
	URL string `yaml:"url"`
}

// Parsed returns the configured witnesses.
func (c WitnessConfig) Parsed() ([]witness.Witness, error) {
	var out []witness.Witness
	for i, e := range c.Witnesses {
		w, err := witness.ParseWitness(e.Key, e.URL)
		if err != nil {
			return nil, fmt.Errorf("archive.witness.witnesses[%d].key: %w", i, err)
		}
		out = append(out, w)
	}
	return out, nil
}

// AuditConfig is what verify, prove, export and the dashboard trust.
type AuditConfig struct {
	// Keys are the trusted public keys (PEM files, or directories of *.pem):
	// keep every key id the archive ever signed with (rotation). Default:
	// the public half of signing_key_file. Keys published in the bucket are
	// never trusted unless a command is given --trust-bucket-keys.
	Keys []string `yaml:"keys"`
	// RequireAnchor makes verify fail when nothing outside the bucket
	// anchors the log (no quorum of witness cosignatures confirmed by the
	// witnesses, no RFC 3161 token chaining to tsa_ca). Set it in
	// production; without it verify only warns.
	RequireAnchor bool `yaml:"require_anchor"`
	// TSACA is the PEM root(s) RFC 3161 tokens must chain to.
	TSACA string `yaml:"tsa_ca"`
}

// S3Config is how to reach the Object Lock bucket.
type S3Config struct {
	Endpoint  string `yaml:"endpoint"` // host:port; env AUDITLINE_S3 = http(s)://ACCESS:SECRET@host:port
	Secure    bool   `yaml:"secure"`
	Region    string `yaml:"region"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key" secret:"true"`
	Bucket    string `yaml:"bucket"` // env AUDITLINE_S3_BUCKET
	// CAFile is a PEM file of the roots the server's certificate must
	// chain to, for an S3 server behind a private CA (requires secure).
	CAFile string `yaml:"ca_file"`
}

// BucketConfig returns the bucket connection settings.
func (c S3Config) BucketConfig() bucket.Config {
	return bucket.Config{Endpoint: c.Endpoint, Secure: c.Secure, Region: c.Region, AccessKey: c.AccessKey, SecretKey: c.SecretKey, Bucket: c.Bucket, CAFile: c.CAFile}
}

// RetentionConfig is the Object Lock retention of archived objects.
type RetentionConfig struct {
	// Mode is COMPLIANCE (default: nobody can delete or shorten it, not even
	// the account root) or GOVERNANCE (privileged users can; for tests).
	Mode string `yaml:"mode"`
	// Period is how long each object is locked from its upload: calendar
	// units ("7y", the default: seven calendar years from the upload date,
	// leap days included) or an exact duration ("61320h").
	Period retention.Period `yaml:"period"`
}

// BatchConfig says when a batch is cut. Whichever limit is reached first
// seals the partition's open batch.
type BatchConfig struct {
	MaxRecords int           `yaml:"max_records"` // records per batch; default 20,000
	MaxBytes   int64         `yaml:"max_bytes"`   // canonical bytes per batch; default 8 MiB, at most half of kafka.max_outstanding_bytes
	MaxAge     time.Duration `yaml:"max_age"`     // age of the oldest unsealed record; default 1m
	// RowGroupBytes sizes Parquet row groups; default 32 MiB.
	RowGroupBytes int64 `yaml:"row_group_bytes"`
	// CompressionLevel is the zstd level; 0 means the library default (3).
	CompressionLevel int `yaml:"compression_level"`
}

// CheckpointConfig configures checkpoints.
type CheckpointConfig struct {
	// Interval between checkpoints (one is written only when a head moved);
	// default 1m. A last one is written on shutdown.
	Interval time.Duration `yaml:"interval"`
	// TSAURL, when set, is an RFC 3161 time-stamping authority: each
	// checkpoint is stamped and the token stored beside it (.tsr).
	TSAURL string `yaml:"tsa_url"`
	// TSATimeout bounds one TSA request; default 30s.
	TSATimeout time.Duration `yaml:"tsa_timeout"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{
		S3:     S3Config{Endpoint: "127.0.0.1:9000", Region: "us-east-1", Bucket: "auditline-archive"},
		Group:  DefaultGroup,
		Prefix: DefaultPrefix,
		Retention: RetentionConfig{
			Mode:   string(bucket.Compliance),
			Period: DefaultRetention,
		},
		Batch: BatchConfig{
			MaxRecords:    DefaultMaxRecords,
			MaxBytes:      DefaultMaxBytes,
			MaxAge:        DefaultMaxAge,
			RowGroupBytes: DefaultRowGroupBytes,
		},
		Checkpoint:      CheckpointConfig{Interval: DefaultCheckpointInterval, TSATimeout: DefaultTSATimeout},
		ShutdownTimeout: DefaultShutdownTimeout,
		Witness:         WitnessConfig{Quorum: 1, Timeout: DefaultWitnessTimeout},
	}
}

// OriginName returns Origin, or its default.
func (c *Config) OriginName() string {
	if c.Origin != "" {
		return c.Origin
	}
	o := "auditline/" + c.S3.Bucket
	if p := strings.Trim(c.Prefix, "/"); p != "" {
		o += "/" + p
	}
	return o
}

// Validate reports every problem, each prefixed with its YAML key.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.S3.Endpoint == "" || !strings.Contains(c.S3.Endpoint, ":") {
		add("archive.s3.endpoint: %q, want host:port (or set AUDITLINE_S3)", c.S3.Endpoint)
	}
	if c.S3.CAFile != "" && !c.S3.Secure {
		add("archive.s3.ca_file is set but archive.s3.secure is false: a CA is only used over https (set secure: true)")
	}
	if c.S3.Bucket == "" {
		add("archive.s3.bucket: must not be empty")
	}
	if c.S3.AccessKey == "" || c.S3.SecretKey == "" {
		add("archive.s3.access_key, archive.s3.secret_key: both are required (or set AUDITLINE_S3)")
	}
	if c.Group == "" {
		add("archive.group: must not be empty")
	}
	if strings.HasPrefix(c.Prefix, "/") {
		add("archive.prefix: %q must not start with /", c.Prefix)
	}
	if o := c.OriginName(); o == "" || strings.ContainsAny(o, " \t\n+") {
		add("archive.origin: %q must be non-empty, without spaces or '+'", o)
	}
	if err := c.Raw.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SigningKeyFile == "" {
		add("archive.signing_key_file: required (create one with: auditline keys generate --out FILE)")
	}
	switch bucket.Mode(c.Retention.Mode) {
	case bucket.Compliance, bucket.Governance:
	default:
		add("archive.retention.mode: %q, want COMPLIANCE or GOVERNANCE", c.Retention.Mode)
	}
	if c.Retention.Period.Shortest() < time.Second {
		add("archive.retention.period: %s, want at least 1s (default 7y = seven calendar years)", c.Retention.Period)
	}
	if c.Batch.MaxRecords < 1 {
		add("archive.batch.max_records: %d, want at least 1", c.Batch.MaxRecords)
	}
	if c.Batch.MaxBytes < 1<<10 {
		add("archive.batch.max_bytes: %d, want at least 1024", c.Batch.MaxBytes)
	}
	if c.Batch.MaxAge < 10*time.Millisecond {
		add("archive.batch.max_age: %s, want at least 10ms", c.Batch.MaxAge)
	}
	if c.Batch.RowGroupBytes < 64<<10 {
		add("archive.batch.row_group_bytes: %d, want at least 65536", c.Batch.RowGroupBytes)
	}
	if c.Batch.CompressionLevel < 0 || c.Batch.CompressionLevel > 22 {
		add("archive.batch.compression_level: %d, want 0 (default) to 22", c.Batch.CompressionLevel)
	}
	if c.Checkpoint.Interval < 100*time.Millisecond {
		add("archive.checkpoint.interval: %s, want at least 100ms", c.Checkpoint.Interval)
	}
	if c.Checkpoint.TSAURL != "" {
		if u, err := url.Parse(c.Checkpoint.TSAURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("archive.checkpoint.tsa_url: %q, want an http(s) URL", c.Checkpoint.TSAURL)
		}
	}
	if c.Checkpoint.TSATimeout <= 0 {
		add("archive.checkpoint.tsa_timeout: %s, want > 0", c.Checkpoint.TSATimeout)
	}
	if c.ShutdownTimeout <= 0 {
		add("archive.shutdown_timeout: %s, want > 0", c.ShutdownTimeout)
	}
	ws, err := c.Witness.Parsed()
	if err != nil {
		errs = append(errs, err)
	}
	names := map[string]bool{}
	for i, e := range c.Witness.Witnesses {
		if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("archive.witness.witnesses[%d].url: %q, want the witness's http(s) submission prefix", i, e.URL)
		}
		if i < len(ws) {
			if names[ws[i].Name] {
				add("archive.witness.witnesses[%d]: a second witness named %s", i, ws[i].Name)
			}
			names[ws[i].Name] = true
		}
	}
	if len(c.Witness.Witnesses) > 0 && (c.Witness.Quorum < 1 || c.Witness.Quorum > len(c.Witness.Witnesses)) {
		add("archive.witness.quorum: %d, want 1 to %d (the number of witnesses)", c.Witness.Quorum, len(c.Witness.Witnesses))
	}
	if c.Witness.Timeout <= 0 {
		add("archive.witness.timeout: %s, want > 0", c.Witness.Timeout)
	}
	return errors.Join(errs...)
}
