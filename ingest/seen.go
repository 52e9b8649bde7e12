package ingest

import (
	"crypto/sha256"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/raw"
)

// seenEvents remembers the SHA-256 of the events of auditline's own strict
// endpoints (gateway, approval, oversight, access) that Kafka acknowledged,
// by event id, so that the same event id with other bytes — a review form
// submitted twice with a changed outcome, a gateway re-using an id — is
// answered 409 event_id_conflict instead of "accepted" and then silently
// dropped downstream as a duplicate. An identical re-send (a retry) is
// accepted as before.
//
// It is per process and bounded (the oldest ids are forgotten first), so it
// is a courtesy to the sender, not the guarantee: ingest stays stateless
// enough to run as replicas, and enrich — which sees every event of a
// request — keeps the first bytes of an event id and sends any other to the
// DLQ (reason event_id_conflict).
type seenEvents struct {
	mu    sync.Mutex
	sums  map[string][sha256.Size]byte
	order []string // ring of the ids in sums, oldest at next
	next  int
}

// maxSeenEvents bounds seenEvents (about 150 bytes each).
const maxSeenEvents = 50_000

func newSeenEvents() *seenEvents {
	return &seenEvents{sums: make(map[string][sha256.Size]byte), order: make([]string, 0, 1024)}
}

// conflict returns the event id of the first record whose id was seen with
// other bytes, or "".
func (s *seenEvents) conflict(recs []*kgo.Record) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		id := raw.Header(r, raw.HeaderEventID)
		if old, ok := s.sums[id]; ok && old != sha256.Sum256(r.Value) {
			return id
		}
	}
	return ""
}

// add remembers acknowledged records.
func (s *seenEvents) add(recs []*kgo.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		id := raw.Header(r, raw.HeaderEventID)
		if _, ok := s.sums[id]; ok {
			continue
		}
		if len(s.order) < maxSeenEvents {
			s.order = append(s.order, id)
		} else {
			delete(s.sums, s.order[s.next])
			s.order[s.next] = id
			s.next = (s.next + 1) % maxSeenEvents
		}
		s.sums[id] = sha256.Sum256(r.Value)
	}
}
