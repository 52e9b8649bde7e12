package event

import (
	"errors"
	"fmt"

	"github.com/auditline/auditline/enrich/record"
)

// Attempt is one upstream call of a request as auditline's LiteLLM plugin saw
// it (schemas/litellm-attempt.v1.json): the first try, a retry inside a model
// group, or a fallback hop to another group, with its outcome. LiteLLM's own
// payloads carry at most the first failure and the final success of a
// request; these events carry every call in between.
type Attempt struct {
	EventID       string
	RequestKey    string
	N             int64  // 1, 2, …: the order the plugin saw the calls start in
	Kind          string // AttemptFirst, AttemptRetry or AttemptFallback
	ModelGroup    string
	FallbackFrom  string
	FallbackDepth int64
	DeploymentID  string
	Model         string
	Provider      string
	APIBase       string
	Status        string // success, failure
	ErrorClass    string
	ErrorCode     string
	ErrorMessage  string
	Timeout       bool
	Stream        bool
	Start, End    record.Time
	Emission
}

// Attempt kinds.
const (
	AttemptFirst    = "first"
	AttemptRetry    = "retry"
	AttemptFallback = "fallback"
)

// ParseAttempt decodes an attempt event of auditline's LiteLLM plugin.
func ParseAttempt(b []byte) (*Attempt, error) {
	var w struct {
		EventID       string     `json:"event_id"`
		RequestKey    string     `json:"request_key"`
		N             flexFloat  `json:"attempt"`
		Kind          flexString `json:"kind"`
		ModelGroup    flexString `json:"model_group"`
		FallbackFrom  flexString `json:"fallback_from"`
		FallbackDepth flexFloat  `json:"fallback_depth"`
		DeploymentID  flexString `json:"deployment_id"`
		Model         flexString `json:"model"`
		Provider      flexString `json:"provider"`
		APIBase       flexString `json:"api_base"`
		Status        flexString `json:"status"`
		ErrorClass    flexString `json:"error_class"`
		ErrorCode     flexString `json:"error_code"`
		ErrorMessage  flexString `json:"error_message"`
		Timeout       flexBool   `json:"timeout"`
		Stream        flexBool   `json:"stream"`
		Start         string     `json:"start_time"`
		End           string     `json:"end_time"`
		wireEmission
	}
	if err := unmarshal(sanitize(b), &w); err != nil {
		return nil, fmt.Errorf("attempt: %w", err)
	}
	if w.EventID == "" || w.RequestKey == "" || w.Emitter == "" || w.Seq.int() < 1 || w.N.int() < 1 {
		return nil, errors.New("attempt: event_id, request_key, emitter, seq and attempt are required")
	}
	switch w.Kind {
	case AttemptFirst, AttemptRetry, AttemptFallback:
	default:
		return nil, fmt.Errorf("attempt: kind %q is not first, retry or fallback", string(w.Kind))
	}
	switch w.Status {
	case "success", "failure":
	default:
		return nil, fmt.Errorf("attempt: status %q is not success or failure", string(w.Status))
	}
	a := &Attempt{
		EventID: w.EventID, RequestKey: w.RequestKey, N: w.N.int(), Kind: string(w.Kind),
		ModelGroup: string(w.ModelGroup), FallbackFrom: string(w.FallbackFrom), FallbackDepth: w.FallbackDepth.int(),
		DeploymentID: string(w.DeploymentID), Model: string(w.Model), Provider: string(w.Provider), APIBase: string(w.APIBase),
		Status: string(w.Status), ErrorClass: string(w.ErrorClass), ErrorCode: string(w.ErrorCode),
		ErrorMessage: string(w.ErrorMessage), Timeout: bool(w.Timeout), Stream: bool(w.Stream),
		Start: parseTime(w.Start), End: parseTime(w.End), Emission: w.wireEmission.emission(),
	}
	if a.End < a.Start {
		a.End = a.Start
	}
	return a, nil
}
