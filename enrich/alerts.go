package enrich

import (
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/raw"
)

// alertsPerEntity bounds the history kept per budget entity. A call looks up
// the latest alert received at or before its end; the history only has to
// reach back as far as the oldest call still pending or amendable.
const alertsPerEntity = 16

// alertTable is raw.alerts read whole: per budget entity, its latest alerts
// by receive time. One goroutine (the follower) writes; partition workers
// read. It implements fold.AlertLookup.
type alertTable struct {
	mu sync.RWMutex
	m  map[alertKey][]record.BudgetAlert // sorted by ReceivedAt, then EventID
}

type alertKey struct{ typ, id string }

func newAlertTable() *alertTable { return &alertTable{m: map[alertKey][]record.BudgetAlert{}} }

// add records one raw.alerts record; it reports false for a record that is
// not a usable alert.
func (t *alertTable) add(r *kgo.Record) bool {
	a, err := event.ParseAlert(r.Value, string(r.Key))
	if err != nil || a.EntityID == "" {
		return false
	}
	ba := record.BudgetAlert{
		EventID: raw.Header(r, raw.HeaderEventID), EntityType: a.EntityType, EntityID: a.EntityID,
		Event: a.Event, Spend: a.Spend, MaxBudget: a.MaxBudget, ReceivedAt: record.TimeOf(raw.ReceivedAt(r)),
	}
	k := alertKey{a.EntityType, a.EntityID}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.m[k]
	i, found := slices.BinarySearchFunc(l, ba, cmpAlert)
	if found {
		return true // the same alert again
	}
	l = slices.Insert(l, i, ba)
	if len(l) > alertsPerEntity {
		l = slices.Delete(l, 0, len(l)-alertsPerEntity)
	}
	t.m[k] = l
	return true
}

func cmpAlert(a, b record.BudgetAlert) int {
	if a.ReceivedAt != b.ReceivedAt {
		if a.ReceivedAt < b.ReceivedAt {
			return -1
		}
		return 1
	}
	switch {
	case a.EventID < b.EventID:
		return -1
	case a.EventID > b.EventID:
		return 1
	}
	return 0
}

// Latest implements fold.AlertLookup.
func (t *alertTable) Latest(typ, id string, at record.Time) *record.BudgetAlert {
	if t == nil {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	l := t.m[alertKey{typ, id}]
	for i := len(l) - 1; i >= 0; i-- {
		if at == 0 || l[i].ReceivedAt <= at {
			a := l[i]
			return &a
		}
	}
	return nil
}

func (t *alertTable) entities() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
