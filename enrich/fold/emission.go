package fold

import (
	"cmp"
	"slices"
	"strings"

	"github.com/auditline/auditline/enrich/event"
	"github.com/auditline/auditline/enrich/record"
)

// markers fills what only auditline's LiteLLM plugin knows: the emitter and
// gateway configuration (from the earliest plugin event by sequence number),
// and, for a request whose outcome never arrived, what its request_started
// marker says (call id, type, start, key hash, route, requested alias).
// Called before request(): a marker's start stands when no LiteLLM payload
// gives one.
func (b *Builder) markers(d *record.Decision, evs, markers, attempts []*event.Event) {
	var earliest *event.Event
	for _, e := range evs {
		em := e.Emission()
		if em.Emitter == "" {
			continue
		}
		if earliest == nil || cmp.Or(strings.Compare(em.Emitter, earliest.Emission().Emitter), cmp.Compare(em.Seq, earliest.Emission().Seq)) < 0 {
			earliest = e
		}
	}
	if earliest != nil {
		em := earliest.Emission()
		d.Emitter = record.Emitter{ID: em.Emitter, ConfigHash: em.ConfigHash, ConfigSeq: em.ConfigSeq}
	}
	if len(markers) == 0 || len(attempts) > 0 {
		return
	}
	slices.SortStableFunc(markers, func(x, y *event.Event) int {
		return cmp.Or(cmp.Compare(x.Started.OccurredAt, y.Started.OccurredAt), strings.Compare(x.ID, y.ID))
	})
	m := markers[0].Started
	r := &d.Request
	r.CallID = first(r.CallID, m.RequestKey)
	r.CallType = first(r.CallType, m.CallType)
	r.Stream = r.Stream || m.Stream
	r.StartTime = m.OccurredAt
	r.EndTime = m.OccurredAt
}

// markerIdentity completes identity and routing of a request known only from
// its marker (no LiteLLM payload): the key hash, route and requested alias.
func (b *Builder) markerIdentity(d *record.Decision, markers, attempts []*event.Event) {
	if len(markers) == 0 || len(attempts) > 0 {
		return
	}
	for _, e := range markers {
		m := e.Started
		d.Identity.KeyHash = first(d.Identity.KeyHash, m.KeyHash)
		d.Identity.Route = first(d.Identity.Route, m.Route)
		d.Routing.RequestedAlias = first(d.Routing.RequestedAlias, m.RequestedModel)
	}
}
