// Package raw defines the raw envelope: how one source event travels from ingest
// to the stages behind it. The Kafka record value is the source event's original
// JSON bytes, unchanged — they are evidence, and every later stage hashes them
// as they were received. Everything ingest learned about the event travels in
// record headers, and the record key is the join key of DESIGN.md §2.
//
// Keys per topic:
//
//	raw.litellm, raw.gateway   request key (litellm_call_id, else trace_id, else id);
//	                           an access event: "access:" + its event id
//	raw.alerts                 budget entity ("<event_group>:<entity id>")
//	raw.admin                  object id of the changed row
//	dlq                        whatever the input would have had, or empty
//
// raw.litellm, raw.gateway and decisions must have the same partition count so
// that one enrich worker sees every event of a request (co-partitioning).
package raw

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names carried on every raw record.
const (
	HeaderSource     = "auditline-source"      // a Source
	HeaderFormat     = "auditline-format"      // a Format: the wire form of the body the event came in
	HeaderReceivedAt = "auditline-received-at" // epoch milliseconds (decimal) when ingest read the body
	HeaderEventID    = "auditline-event-id"    // stable id of the source event, for de-duplication
	HeaderBatch      = "auditline-batch"       // "<body sha256 hex>/<index>": the HTTP body and position it came in
	HeaderReason     = "auditline-dlq-reason"  // DLQ only: why the body could not be decoded
	// HeaderExplicitPartition marks a record whose Partition field was set by
	// the producer (a control event fanned out to every partition) instead of
	// derived from its key. Its value is the partition number.
	HeaderExplicitPartition = "auditline-partition"
	// HeaderSender names the ingest token (its configured name, never the
	// token) that authenticated the request the event came in.
	HeaderSender = "auditline-sender"
	// HeaderPart is set on DLQ records that carry one part of a body too large
	// for one record: "<i>/<n>" (1-based). The parts share HeaderBatch's body
	// SHA-256; concatenated in order they are the body.
	HeaderPart = "auditline-part"
	// HeaderWatermark and HeaderInstance are set on watermark records only
	// (source SourceWatermark): the watermark in epoch milliseconds
	// (decimal), and the id of the ingest process that wrote it.
	HeaderWatermark = "auditline-watermark"
	HeaderInstance  = "auditline-ingest-instance"
	// HeaderLeaving is set ("true") on the last watermark an ingest process
	// writes when it shuts down gracefully: it will write nothing more.
	HeaderLeaving = "auditline-leaving"
)

// Source names who sent an event.
type Source string

const (
	SourceLiteLLM   Source = "litellm"   // generic_api callback: StandardLoggingPayload (or legacy v1 dict)
	SourceAlert     Source = "alert"     // LiteLLM alerting webhook: WebhookEvent (budget)
	SourceAdmin     Source = "admin"     // LiteLLM audit_log_callbacks: StandardAuditLogPayload
	SourceGateway   Source = "gateway"   // security gateway / policy engine decision (schemas/gateway-event)
	SourceOversight Source = "oversight" // human oversight: approval, override, escalation, review outcome

	// auditline's LiteLLM plugin (deploy/litellm/auditline_litellm) sends these
	// besides its StandardLoggingPayloads (which stay SourceLiteLLM).
	SourceRequestStarted Source = "request_started" // pre-call marker (schemas/request-started), joins its request
	SourceGatewayConfig  Source = "gateway_config"  // effective proxy configuration (schemas/gateway-config)
	SourceAttempt        Source = "litellm_attempt" // one upstream call of a request: try, retry or fallback hop (schemas/litellm-attempt)
	SourceApproval       Source = "approval"        // a gateway holding a request for approval, and the decisions it took in (schemas/approval-event)
	SourceAccess         Source = "access"          // who looked at what: logins, record views, proof downloads, exports (schemas/access-event)

	// SourceWatermark marks a watermark record, not an event: ingest writes
	// one to every partition of raw.litellm and raw.gateway periodically
	// (see Watermark). Every reader of the raw topics skips it.
	SourceWatermark Source = "watermark"
)

// Format names the wire form a body arrived in.
type Format string

const (
	FormatJSONArray Format = "json_array" // generic_api default: one JSON array per flush
	FormatNDJSON    Format = "ndjson"     // generic_api log_format: ndjson
	FormatSingle    Format = "single"     // one JSON object per POST
	FormatLegacyV1  Format = "legacy_v1"  // generic_api_use_v1: flat dict, every value a Python str()
)

// Topics holds the topic names for one deployment. Tests use a unique Prefix so
// that they never see each other's data on a shared broker.
type Topics struct {
	Prefix string // default "auditline."
}

// DefaultTopics is the production naming.
var DefaultTopics = Topics{Prefix: "auditline."}

func (t Topics) RawLiteLLM() string { return t.Prefix + "raw.litellm" }
func (t Topics) RawGateway() string { return t.Prefix + "raw.gateway" }
func (t Topics) RawAlerts() string  { return t.Prefix + "raw.alerts" }
func (t Topics) RawAdmin() string   { return t.Prefix + "raw.admin" }
func (t Topics) DLQ() string        { return t.Prefix + "dlq" }
func (t Topics) Decisions() string  { return t.Prefix + "decisions" }

// ForSource returns the raw topic a source's events go to.
func (t Topics) ForSource(s Source) string {
	switch s {
	case SourceLiteLLM, SourceRequestStarted, SourceAttempt:
		return t.RawLiteLLM()
	case SourceGateway, SourceOversight, SourceApproval, SourceAccess:
		return t.RawGateway()
	case SourceAlert:
		return t.RawAlerts()
	case SourceAdmin, SourceGatewayConfig:
		return t.RawAdmin()
	}
	return t.DLQ()
}

// Header returns the value of the first header named key, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// ReceivedAt returns the receive time stamped by ingest, falling back to the
// record timestamp when the header is missing or malformed.
func ReceivedAt(r *kgo.Record) time.Time {
	for _, h := range r.Headers {
		if h.Key == HeaderReceivedAt {
			// Parsed without a copy of the value (the conversion does not
			// escape), unlike Header.
			if ms, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				return time.UnixMilli(ms).UTC()
			}
			break
		}
	}
	return r.Timestamp.UTC()
}

// A Watermark is ingest's promise about one partition of one raw topic:
// every event instance Instance received before At (receive time, stamped in
// the auditline-received-at header) that reached Kafka at all was
// acknowledged before this record was produced, so it sits at a lower offset
// of that partition. Each ingest process writes one to every partition of
// raw.litellm and raw.gateway every ingest.watermark_interval; enrich's
// stream time follows them (docs/enrich.md "Stream time"). Leaving marks an
// instance's last watermark (graceful shutdown).
type Watermark struct {
	Instance string
	At       time.Time // millisecond precision
	Leaving  bool
}

// IsWatermark reports whether r is a watermark record (not an event).
func IsWatermark(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == HeaderSource {
			return string(h.Value) == string(SourceWatermark)
		}
	}
	return false
}

// ParseWatermark reads a watermark record; ok is false when r is not one or
// its headers are malformed.
func ParseWatermark(r *kgo.Record) (w Watermark, ok bool) {
	if !IsWatermark(r) {
		return w, false
	}
	ms, err := strconv.ParseInt(Header(r, HeaderWatermark), 10, 64)
	if err != nil {
		return w, false
	}
	w = Watermark{Instance: Header(r, HeaderInstance), At: time.UnixMilli(ms).UTC(), Leaving: Header(r, HeaderLeaving) == "true"}
	return w, w.Instance != ""
}

// WatermarkRecord builds the watermark record for partition p of topicName.
// It carries raw.HeaderExplicitPartition, so topic.Writer puts it on p.
func WatermarkRecord(topicName string, p int32, w Watermark) *kgo.Record {
	ms := strconv.AppendInt(nil, w.At.UnixMilli(), 10)
	hs := []kgo.RecordHeader{
		{Key: HeaderSource, Value: []byte(SourceWatermark)},
		{Key: HeaderWatermark, Value: ms},
		{Key: HeaderInstance, Value: []byte(w.Instance)},
		{Key: HeaderExplicitPartition, Value: strconv.AppendInt(nil, int64(p), 10)},
	}
	if w.Leaving {
		hs = append(hs, kgo.RecordHeader{Key: HeaderLeaving, Value: []byte("true")})
	}
	return &kgo.Record{Topic: topicName, Partition: p, Key: []byte("watermark:" + w.Instance), Value: []byte{}, Headers: hs}
}

// Event is one source event ready to be produced.
type Event struct {
	Source  Source
	Format  Format
	Key     string // join key, see the package doc
	EventID string // stable id, see DESIGN.md §2
	Value   []byte // the original bytes, unchanged
}

// Record builds the Kafka record for e, received at the given time, as element
// index of the HTTP body whose SHA-256 is bodySum (hex).
func (t Topics) Record(e Event, receivedAt time.Time, bodySum string, index int) *kgo.Record {
	return &kgo.Record{
		Topic: t.ForSource(e.Source),
		Key:   []byte(e.Key),
		Value: e.Value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderSource, Value: []byte(e.Source)},
			{Key: HeaderFormat, Value: []byte(e.Format)},
			{Key: HeaderReceivedAt, Value: strconv.AppendInt(nil, receivedAt.UnixMilli(), 10)},
			{Key: HeaderEventID, Value: []byte(e.EventID)},
			{Key: HeaderBatch, Value: []byte(bodySum + "/" + strconv.Itoa(index))},
		},
	}
}
