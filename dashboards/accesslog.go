package dashboards

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
)

// AccessPoster sends access events to ingest (/v1/access); nil only once
// ingest acknowledged all of them.
type AccessPoster interface {
	PostAccess(ctx context.Context, evs []oversight.AccessEvent) error
}

// The access log: every login (and failed login), logout, record view,
// proof download and export becomes an access event, posted to ingest — the
// one write path — so that enrich seals it as a record of its own and the
// archive keeps it like every decision: who looked at what, when.
//
// Posting happens off the request path, in batches, from a bounded queue:
// a page does not wait for Kafka's acknowledgement, and a slow ingest does
// not slow the pages down. It fails closed: when the queue is full (ingest
// has been unreachable for a while), reads that must be logged are refused
// with 503 rather than served unlogged. On shutdown the queue is drained
// (bounded by accessDrain).
const (
	accessQueue = 10_000           // events waiting to be posted
	accessBatch = 200              // events per POST
	accessDrain = 10 * time.Second // shutdown: time to post what is queued
)

// errAccessLogFull refuses a read that cannot be logged.
var errAccessLogFull = errors.New("the access log is not keeping up (ingest unreachable?): reads are refused until it recovers")

type accessLog struct {
	post  AccessPoster
	log   *slog.Logger
	queue chan oversight.AccessEvent
	m     *metrics

	stop context.CancelFunc
	done chan struct{}
}

// startAccessLog starts posting; stop (close) drains and stops it.
func startAccessLog(p AccessPoster, log *slog.Logger, m *metrics) *accessLog {
	ctx, cancel := context.WithCancel(context.Background())
	a := &accessLog{post: p, log: log, m: m, queue: make(chan oversight.AccessEvent, accessQueue), stop: cancel, done: make(chan struct{})}
	go a.run(ctx)
	return a
}

// close posts what is queued (within accessDrain) and stops.
func (a *accessLog) close() {
	if a == nil {
		return
	}
	a.stop()
	<-a.done
}

// add queues ev; it fails only when the queue is full.
func (a *accessLog) add(ev oversight.AccessEvent) error {
	if a == nil {
		return nil
	}
	select {
	case a.queue <- ev:
		a.m.access.WithLabelValues(ev.Action, "queued").Inc()
		return nil
	default:
		a.m.access.WithLabelValues(ev.Action, "refused").Inc()
		return errAccessLogFull
	}
}

// run posts queued events until ctx ends, then drains the queue within
// accessDrain.
func (a *accessLog) run(ctx context.Context) {
	defer close(a.done)
	batch := make([]oversight.AccessEvent, 0, accessBatch)
	flush := func(ctx context.Context) {
		for len(batch) > 0 {
			err := a.post.PostAccess(ctx, batch)
			if err == nil {
				a.m.accessPosted.Add(float64(len(batch)))
				batch = batch[:0]
				return
			}
			var rej *oversight.RejectedError
			if errors.As(err, &rej) {
				// Permanent (a bug or a misconfigured token): retrying
				// cannot help. Ingest kept the body on its DLQ.
				a.log.Error("ingest refused access events", "n", len(batch), "err", err)
				a.m.accessLost.Add(float64(len(batch)))
				batch = batch[:0]
				return
			}
			if ctx.Err() != nil {
				a.log.Error("access events not posted at shutdown", "n", len(batch), "err", err)
				a.m.accessLost.Add(float64(len(batch)))
				batch = batch[:0]
				return
			}
			a.log.Warn("posting access events failed; retrying", "n", len(batch), "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	for {
		select {
		case ev := <-a.queue:
			batch = append(batch, ev)
		fill:
			for len(batch) < accessBatch {
				select {
				case ev := <-a.queue:
					batch = append(batch, ev)
				default:
					break fill
				}
			}
			flush(ctx)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), accessDrain)
		drain:
			for {
				select {
				case ev := <-a.queue:
					batch = append(batch, ev)
					if len(batch) >= accessBatch {
						flush(dctx)
					}
				default:
					break drain
				}
			}
			flush(dctx)
			cancel()
			return
		}
	}
}

// access logs one access by the request's user (or by name, before a
// session exists). It returns false after writing the 503 when the access
// log cannot take it: the caller must not serve the read.
func (s *Server) access(w http.ResponseWriter, r *http.Request, p auth.Principal, ev oversight.AccessEvent) bool {
	if s.accessLog == nil {
		return true
	}
	id, err := oversight.NewEventID()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not log the access")
		return false
	}
	ev.Schema, ev.EventID, ev.OccurredAt = oversight.AccessSchema, "acc-"+id[len("dash-"):], s.now().UTC()
	if ev.Actor.ID == "" {
		ev.Actor = oversight.Actor{ID: p.Name, Role: p.Role.String(), Via: p.Via}
	}
	ev.Actor.Client = s.auth.ClientAddr(r).String()
	if err := s.accessLog.add(ev); err != nil {
		s.log.Error("access log full; read refused", "action", ev.Action, "user", ev.Actor.ID)
		w.Header().Set("Retry-After", "10")
		s.fail(w, r, http.StatusServiceUnavailable, err.Error())
		return false
	}
	return true
}
