package event

import (
	"errors"
	"fmt"

	"github.com/auditline/auditline/enrich/record"
)

// Emission is what auditline's LiteLLM plugin (deploy/litellm/auditline_litellm)
// adds to every event it sends: the emitter (one per proxy worker slot), the
// event's gap-free sequence number, and the gateway configuration in force.
// Zero for events of LiteLLM's stock generic_api callback.
type Emission struct {
	Emitter    string
	Seq        int64
	ConfigHash string // sha256:<hex> of the gateway_config's config (RFC 8785)
	ConfigSeq  int64  // sequence number of the gateway_config event that announced it
	// Attempts is, on an outcome payload, how many attempt events the
	// plugin had spooled for the request before it (issue 21: its
	// deployment hooks saw that many upstream calls); AttemptsKnown is
	// false when the payload does not say (the stock callback, or a plugin
	// without attempt events).
	Attempts      int64
	AttemptsKnown bool
}

type wireEmission struct {
	Emitter    flexString `json:"emitter"`
	Seq        flexFloat  `json:"seq"`
	ConfigHash flexString `json:"config_hash"`
	ConfigSeq  flexFloat  `json:"config_seq"`
	Attempts   flexFloat  `json:"attempts"`
}

func (w *wireEmission) emission() Emission {
	if w == nil {
		return Emission{}
	}
	return Emission{Emitter: string(w.Emitter), Seq: w.Seq.int(), ConfigHash: string(w.ConfigHash), ConfigSeq: w.ConfigSeq.int(),
		Attempts: w.Attempts.int(), AttemptsKnown: w.Attempts.ok && w.Attempts.v >= 0}
}

// Started is a request_started marker (schemas/request-started.v1.json): the
// plugin's proof, written before the upstream call, that a request began.
type Started struct {
	EventID        string
	RequestKey     string
	OccurredAt     record.Time
	CallType       string
	RequestedModel string
	KeyHash        string
	Route          string
	Stream         bool
	Emission
}

// ParseStarted decodes a request_started marker.
func ParseStarted(b []byte) (*Started, error) {
	var w struct {
		EventID        string     `json:"event_id"`
		RequestKey     string     `json:"request_key"`
		OccurredAt     string     `json:"occurred_at"`
		CallType       flexString `json:"call_type"`
		RequestedModel flexString `json:"requested_model"`
		KeyHash        flexString `json:"key_hash"`
		Route          flexString `json:"route"`
		Stream         flexBool   `json:"stream"`
		wireEmission
	}
	if err := unmarshal(sanitize(b), &w); err != nil {
		return nil, fmt.Errorf("request_started: %w", err)
	}
	if w.EventID == "" || w.RequestKey == "" || w.Emitter == "" || w.Seq.int() < 1 {
		return nil, errors.New("request_started: event_id, request_key, emitter and seq are required")
	}
	return &Started{
		EventID: w.EventID, RequestKey: w.RequestKey, OccurredAt: parseTime(w.OccurredAt),
		CallType: string(w.CallType), RequestedModel: string(w.RequestedModel), KeyHash: string(w.KeyHash),
		Route: string(w.Route), Stream: bool(w.Stream), Emission: w.wireEmission.emission(),
	}, nil
}
