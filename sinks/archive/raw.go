package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/privacy/envelope"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/merkletree"
)

// RawConfig is archive.raw: sealing the raw source events (the evidence
// every decision record points at) into the archive, encrypted per data
// subject, so that the pointers resolve for the whole retention period and a
// subject's content can be erased (docs/archive.md "Raw evidence").
type RawConfig struct {
	// Enabled runs one raw log per raw topic beside the decisions.
	Enabled bool `yaml:"enabled"`
	// KeyStore holds the data subjects' keys (envelope.FileStore).
	KeyStore KeyStoreConfig `yaml:"key_store"`
	// KeyBy is whose key seals an event: tenant (default: the record's
	// identity.tenant), team, end_user or archive (privacy/envelope.Subject).
	KeyBy string `yaml:"key_by"`
}

// KeyStoreConfig locates the key store. Only a local directory today; a KMS
// implements envelope.KeyStore.
type KeyStoreConfig struct {
	Dir string `yaml:"dir"`
}

// Validate checks archive.raw.
func (c RawConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	if c.KeyStore.Dir == "" {
		return errors.New("archive.raw.key_store.dir: required when archive.raw.enabled (raw events are only archived encrypted)")
	}
	if err := envelope.ValidScope(c.keyBy()); err != nil {
		return fmt.Errorf("archive.raw.key_by: %w", err)
	}
	return nil
}

func (c RawConfig) keyBy() string {
	if c.KeyBy == "" {
		return envelope.ByTenant
	}
	return c.KeyBy
}

// OpenKeyStore opens the configured key store.
func (c RawConfig) OpenKeyStore() (envelope.KeyStore, error) {
	return envelope.OpenFileStore(c.KeyStore.Dir)
}

// RawTopics are the raw topics whose events decision records name as
// evidence.
func RawTopics(t raw.Topics) []string {
	return []string{t.RawLiteLLM(), t.RawGateway(), t.RawAlerts(), t.RawAdmin()}
}

// RawPrefix is the prefix of the raw log of topicName inside the archive.
func (c *Config) RawPrefix(topicName string) string {
	return c.Prefix + "raw/" + topicName + "/"
}

// RawOrigin names the raw log of topicName (its manifests and checkpoints).
func (c *Config) RawOrigin(topicName string) string {
	return c.OriginName() + "/raw/" + topicName
}

// RawConfigFor is the archive configuration of topicName's raw log: its own
// prefix, origin and consumer group, no witnesses (their keys name the
// decisions log's origin).
func (c Config) RawConfigFor(topicName string) Config {
	r := c
	r.Origin = c.RawOrigin(topicName)
	r.Prefix = c.RawPrefix(topicName)
	r.Group = c.Group + "-raw-" + topicName
	r.Witness = WitnessConfig{Quorum: 1, Timeout: c.Witness.Timeout}
	return r
}

// rawSealer turns raw Kafka records into sealed rows.
type rawSealer struct {
	sealer *envelope.Sealer
	keyBy  string
}

// NewRaw builds the stage that seals topicName's raw events into its raw log
// (cfg.RawConfigFor). Its metrics go to a registry of its own.
func NewRaw(cfg Config, shared topic.Shared, topicName string, ks envelope.KeyStore, set Settings) (*Archiver, error) {
	if err := cfg.Raw.Validate(); err != nil {
		return nil, err
	}
	set.Registry = prometheus.NewRegistry()
	a, err := newArchiver(cfg.RawConfigFor(topicName), shared, topicName, set)
	if err != nil {
		return nil, err
	}
	a.raw = &rawSealer{sealer: envelope.NewSealer(ks), keyBy: cfg.Raw.keyBy()}
	return a, nil
}

// rawRow seals one raw event.
func (a *Archiver) rawRow(ctx context.Context, m *topic.Message) (batch.Row, error) {
	hdr := map[string]string{}
	for _, h := range m.Headers {
		if strings.HasPrefix(h.Key, "auditline-") {
			hdr[h.Key] = string(h.Value)
		}
	}
	sealed, err := a.raw.sealer.Seal(ctx, envelope.Subject(a.raw.keyBy, m.Value), m.Value, hdr)
	if err != nil {
		return batch.Row{}, fmt.Errorf("seal raw event %s/%d/%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return batch.NewRawRow(a.topic, m.Partition, m.Offset, m.Timestamp, sealed), nil
}

// sameRawRecords is sameRecords for a raw log: sealing is randomised, so a
// batch object uploaded before a restart holds other ciphertexts of the same
// events. It is adopted when it holds the same offsets and, per row, a sealed
// event of the same bytes (SHA-256 and size) and headers; s then takes its
// rows' canonical bytes, leaves and root.
func sameRawRecords(ctx context.Context, data []byte, s *sealing) error {
	f, err := batch.Open(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer f.Close()
	offs, err := f.Int64s(ctx, batch.ColOffset)
	if err != nil {
		return err
	}
	canon, err := f.Binaries(ctx, batch.ColCanonical)
	if err != nil {
		return err
	}
	if len(offs) != len(s.rows) {
		return fmt.Errorf("%d records, want %d", len(offs), len(s.rows))
	}
	rows := make([]batch.Row, len(s.rows))
	for i, r := range s.rows {
		if offs[i] != r.Offset {
			return fmt.Errorf("record %d: offset %d, want %d", i, offs[i], r.Offset)
		}
		theirs, err := envelope.Parse(canon[i])
		if err != nil {
			return fmt.Errorf("record %d (offset %d): %w", i, offs[i], err)
		}
		ours, err := envelope.Parse(r.Canonical)
		if err != nil {
			return err
		}
		if theirs.SHA256 != ours.SHA256 || theirs.Size != ours.Size || fmt.Sprint(theirs.Headers) != fmt.Sprint(ours.Headers) {
			return fmt.Errorf("record %d (offset %d) seals other bytes", i, offs[i])
		}
		rows[i] = r
		rows[i].Canonical = bytes.Clone(canon[i])
		rows[i].Leaf = merkletree.LeafV2(s.topic, s.partition, r.Offset, int64(r.Timestamp), rows[i].Canonical)
	}
	root, err := merkletree.Root(batch.Leaves(rows))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	s.rows, s.root = rows, root
	s.objSHA, s.objSize = hex.EncodeToString(sum[:]), int64(len(data))
	return nil
}

// rawRows seals the events of msgs at offsets from skipBelow on.
func (a *Archiver) rawRows(ctx context.Context, msgs []*topic.Message, skipBelow int64) ([]batch.Row, error) {
	rows := make([]batch.Row, len(msgs))
	for i, m := range msgs {
		if m.Offset < skipBelow {
			continue
		}
		r, err := a.rawRow(ctx, m)
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}
	return rows, nil
}
