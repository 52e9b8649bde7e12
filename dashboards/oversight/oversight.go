// Package oversight posts human oversight events (schemas/oversight-event.v1.json)
// to ingest's /v1/oversight endpoint.
//
// This is the only way the dashboards change anything: a review outcome or a
// burst switch becomes an event on the same path as every other event (ingest
// → Kafka → enrich → a new record version → ClickHouse and the archive), so it
// is durable, ordered with the record's other events, and sealed like them. The
// dashboards never write ClickHouse.
//
// Post returns nil only after ingest answered 2xx, which ingest does only once
// Kafka acknowledged the event (acks=all). It retries 429/503 (honouring
// Retry-After) and transport errors until its context ends; the event id is
// fixed before the first try, so a retry that duplicates an accepted event is
// dropped downstream by event id.
package oversight

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/auditline/auditline/internal/backoff"
)

// Schema is the event's schema constant.
const Schema = "auditline.oversight.v1"

// Kinds the dashboards send.
const (
	KindReview          = "review"
	KindApproval        = "approval"
	KindOverride        = "override"
	KindEscalation      = "escalation"
	KindSamplingControl = "sampling_control"
)

// Event is one oversight event (v1).
type Event struct {
	Schema        string       `json:"schema"`
	EventID       string       `json:"event_id"`
	Kind          string       `json:"kind"`
	RequestKey    string       `json:"request_key,omitempty"`
	RecordID      string       `json:"record_id,omitempty"`
	RecordVersion uint32       `json:"record_version,omitempty"`
	DecisionRef   *DecisionRef `json:"decision_ref,omitempty"`
	Outcome       string       `json:"outcome,omitempty"`
	Reviewer      Reviewer     `json:"reviewer"`
	Rationale     string       `json:"rationale,omitempty"`
	OccurredAt    time.Time    `json:"occurred_at"`
	Sampling      *Sampling    `json:"sampling,omitempty"`
}

// DecisionRef is where the reviewed version sits in the decisions topic.
type DecisionRef struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// Reviewer is who acted.
type Reviewer struct {
	ID     string `json:"id"`
	Role   string `json:"role,omitempty"`
	Tenant string `json:"tenant,omitempty"`
}

// Sampling is the payload of a sampling_control event.
type Sampling struct {
	Burst bool     `json:"burst"`
	Tiers []string `json:"tiers,omitempty"`
}

// NewEventID returns a random event id ("dash-" + 128 random bits in hex).
func NewEventID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("event id: %w", err)
	}
	return "dash-" + hex.EncodeToString(b[:]), nil
}

// Config is how to reach ingest.
type Config struct {
	// URL of ingest's oversight endpoint.
	URL string `yaml:"url"`
	// Token is the bearer token ingest accepts for oversight events. Prefer
	// the environment (AUDITLINE_DASHBOARD_INGEST_TOKEN) or token_file.
	Token     string `yaml:"token" secret:"true"`
	TokenFile string `yaml:"token_file"`
	// Timeout bounds one Post, retries included.
	Timeout time.Duration `yaml:"timeout"`
}

// AccessSchema is the access event's schema constant.
const AccessSchema = "auditline.access.v1"

// AccessEvent is one access to the audit trail (schemas/access-event.v1.json):
// who read what, when.
type AccessEvent struct {
	Schema     string        `json:"schema"`
	EventID    string        `json:"event_id"`
	OccurredAt time.Time     `json:"occurred_at"`
	Action     string        `json:"action"` // login, login_failed, logout, record_view, proof_download, export
	Actor      Actor         `json:"actor"`
	Tenant     string        `json:"tenant,omitempty"`
	Target     *AccessTarget `json:"target,omitempty"`
	Export     *AccessExport `json:"export,omitempty"`
}

// Actor is who accessed.
type Actor struct {
	ID     string `json:"id"`
	Role   string `json:"role,omitempty"`
	Via    string `json:"via,omitempty"`
	Client string `json:"client,omitempty"`
}

// AccessTarget is the record version read.
type AccessTarget struct {
	RecordID string `json:"record_id"`
	Version  uint32 `json:"version"`
}

// AccessExport describes an export.
type AccessExport struct {
	Format string `json:"format"`
	Query  string `json:"query"`
}

// Client posts events. It is safe for concurrent use.
type Client struct {
	url, accessURL, token string
	timeout               time.Duration
	http                  *http.Client
}

// NewClient returns a client for the endpoint with the token. Access events
// go to the same ingest's /v1/access.
func NewClient(url, token string, timeout time.Duration) *Client {
	access := strings.TrimSuffix(url, "/v1/oversight") + "/v1/access"
	return &Client{url: url, accessURL: access, token: token, timeout: timeout, http: &http.Client{Timeout: timeout}}
}

// RejectedError is a 4xx answer other than 429: retrying cannot help.
type RejectedError struct {
	Status int
	Body   string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("ingest rejected the event: %d %s", e.Status, e.Body)
}

// Post sends ev and returns once ingest acknowledged it, or the error.
func (c *Client) Post(ctx context.Context, ev Event) error {
	if ev.Schema == "" {
		ev.Schema = Schema
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode oversight event: %w", err)
	}
	return c.post(ctx, c.url, body, "oversight event "+ev.EventID)
}

// PostAccess sends access events in one body (a JSON array) and returns
// once ingest acknowledged all of them, or the error.
func (c *Client) PostAccess(ctx context.Context, evs []AccessEvent) error {
	for i := range evs {
		if evs[i].Schema == "" {
			evs[i].Schema = AccessSchema
		}
	}
	body, err := json.Marshal(evs)
	if err != nil {
		return fmt.Errorf("encode access events: %w", err)
	}
	return c.post(ctx, c.accessURL, body, fmt.Sprintf("%d access events", len(evs)))
}

func (c *Client) post(ctx context.Context, url string, body []byte, what string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	attempts := 0
	err := backoff.Retry(ctx, postBackoff, func(ctx context.Context) error {
		attempts++
		wait, err := c.try(ctx, url, body)
		var rej *RejectedError
		if errors.As(err, &rej) {
			return backoff.Permanent(err)
		}
		return backoff.After(wait, err) // ingest's Retry-After, when it sent one
	}, nil)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("post %s (%d attempts): %w", what, attempts, err)
	}
	return err
}

// postBackoff spaces the attempts of a Post that ingest gave no Retry-After.
var postBackoff = backoff.Policy{Min: 100 * time.Millisecond, Max: 2 * time.Second}

func (c *Client) try(ctx context.Context, url string, body []byte) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, &RejectedError{Status: 0, Body: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode >= 500:
		var wait time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 && s <= 30 {
			wait = time.Duration(s) * time.Second
		}
		return wait, fmt.Errorf("ingest answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	default:
		return 0, &RejectedError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(msg))}
	}
}
