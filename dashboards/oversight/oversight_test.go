package oversight

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

func TestPost(t *testing.T) {
	ev := Event{EventID: "dash-0123456789abcdef0123456789abcdef", Kind: KindReview, RequestKey: "k", RecordID: "r", RecordVersion: 2,
		DecisionRef: &DecisionRef{Partition: 1, Offset: 9}, Outcome: "flag", Reviewer: Reviewer{ID: "rita", Role: "reviewer", Tenant: "acme"},
		Rationale: "why", OccurredAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		name     string
		answers  []int // status per attempt; the last repeats
		retry    string
		timeout  time.Duration
		attempts int32
		wantErr  func(error) bool
	}{
		{"accepted", []int{202}, "", 5 * time.Second, 1, func(err error) bool { return err == nil }}, // one POST; 1 s left a loaded box little
		{"503 then accepted", []int{503, 503, 200}, "0", 5 * time.Second, 3, func(err error) bool { return err == nil }},
		{"429 then accepted", []int{429, 201}, "", 5 * time.Second, 2, func(err error) bool { return err == nil }},
		{"bad token is permanent", []int{401}, "", 5 * time.Second, 1, func(err error) bool {
			var rej *RejectedError
			return errors.As(err, &rej) && rej.Status == 401
		}},
		{"unavailable until the deadline", []int{503}, "", 300 * time.Millisecond, -1, func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("headers: %v", r.Header)
				}
				var got map[string]any
				if err := json.NewDecoder(r.Body).Decode(&got); err != nil || got["schema"] != Schema || got["occurred_at"] != "2026-11-22T10:00:00Z" ||
					got["decision_ref"].(map[string]any)["offset"] != 9.0 {
					t.Errorf("body: %v %v", got, err)
				}
				if tc.retry != "" {
					w.Header().Set("Retry-After", tc.retry)
				}
				w.WriteHeader(tc.answers[min(i, len(tc.answers)-1)])
			}))
			defer srv.Close()
			err := NewClient(srv.URL, "tok", tc.timeout).Post(context.Background(), ev)
			if !tc.wantErr(err) {
				t.Fatalf("err = %v", err)
			}
			if tc.attempts > 0 && n.Load() != tc.attempts {
				t.Fatalf("%d attempts, want %d", n.Load(), tc.attempts)
			}
		})
	}
}

// TestEventMatchesSchema checks the event against the required fields and
// enums of schemas/oversight-event.v1.json, so the two cannot drift apart.
func TestEventMatchesSchema(t *testing.T) {
	b, err := os.ReadFile("../../schemas/oversight-event.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Const string   `json:"const"`
			Enum  []string `json:"enum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	id, err := NewEventID()
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []Event{
		{Schema: Schema, EventID: id, Kind: KindReview, RequestKey: "k", Outcome: "approve", Reviewer: Reviewer{ID: "a"}, OccurredAt: time.Now()},
		{Schema: Schema, EventID: id, Kind: KindSamplingControl, Reviewer: Reviewer{ID: "a"}, OccurredAt: time.Now(), Sampling: &Sampling{Burst: true}},
	} {
		raw, _ := json.Marshal(ev)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		for _, req := range schema.Required {
			if _, ok := m[req]; !ok {
				t.Errorf("%s event lacks required %q", ev.Kind, req)
			}
		}
		for k, v := range m {
			p, ok := schema.Properties[k]
			if !ok {
				t.Errorf("field %q is not in the schema", k)
				continue
			}
			s, _ := v.(string)
			if p.Const != "" && s != p.Const {
				t.Errorf("%s = %v, want %s", k, v, p.Const)
			}
			if len(p.Enum) > 0 {
				found := false
				for _, e := range p.Enum {
					found = found || e == s
				}
				if !found {
					t.Errorf("%s = %v, not in %v", k, v, p.Enum)
				}
			}
		}
	}
}
