package dashboards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
	"github.com/auditline/auditline/dashboards/query"
)

func (s *Server) routes(mux *http.ServeMux) {
	mux.Handle("GET /static/", s.static)
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.requireLogin(s.logout))
	mux.HandleFunc("GET /{$}", s.requireLogin(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/near-miss", http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /near-miss", s.requireLogin(s.nearMiss))
	mux.HandleFunc("GET /records", s.requireLogin(s.records))
	mux.HandleFunc("GET /records/{id}", s.requireLogin(s.record))
	mux.HandleFunc("GET /records/{id}/proof", s.requireLogin(s.proof))
	mux.HandleFunc("POST /records/{id}/review", s.requireRole(auth.Reviewer, s.review))
	mux.HandleFunc("GET /sampling", s.requireLogin(s.sampling))
	mux.HandleFunc("POST /sampling/burst", s.requireRole(auth.Admin, s.burst))
	mux.HandleFunc("GET /approvals", s.requireLogin(s.approvals))
	mux.HandleFunc("GET /usage", s.requireLogin(s.usage))
	mux.HandleFunc("GET /export", s.requireLogin(s.export))
	mux.HandleFunc("GET /access", s.requireRole(auth.Admin, s.accessLogPage))
}

func (s *Server) base(r *http.Request, title, nav string, v view) basePage {
	b := basePage{Title: title, Nav: nav, View: v, Path: r.URL.Path, Sorts: sorts, ApprovalStatuses: approvalStatuses, ReviewStates: reviewStates}
	for _, rg := range ranges {
		b.Ranges = append(b.Ranges, rg.Name)
	}
	if sess := session(r); sess != nil {
		b.User, b.Role, b.Tenants, b.CSRF = sess.Principal.Name, sess.Principal.Role.String(), sess.Principal.Tenants, sess.CSRF
	}
	return b
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(neutralize(buf.Bytes()))
}

type errorPage struct {
	basePage
	Code    int
	Message string
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", errorPage{basePage: s.base(r, http.StatusText(code), "", view{}), Code: code, Message: msg})
}

// view parses the URL; on error it writes the 400 and returns false.
func (s *Server) view(w http.ResponseWriter, r *http.Request) (view, query.Filter, bool) {
	v, err := parseView(r.URL.Query(), s.now(), &s.cfg)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return view{}, query.Filter{}, false
	}
	f, err := v.filter(session(r).Principal)
	if err != nil {
		s.m.denied.WithLabelValues("tenant").Inc()
		s.fail(w, r, http.StatusForbidden, fmt.Sprintf("You cannot see tenant %q.", v.Tenant))
		return view{}, query.Filter{}, false
	}
	return v, f, true
}

// queryFailed writes the error page for a failed read.
func (s *Server) queryFailed(w http.ResponseWriter, r *http.Request, page string, err error) {
	if errors.Is(err, query.ErrNoTenant) {
		s.m.denied.WithLabelValues("tenant").Inc()
		s.fail(w, r, http.StatusForbidden, "You have no tenant to see.")
		return
	}
	s.log.Error("query failed", "page", page, "err", err)
	code := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
	}
	s.fail(w, r, code, "The records store did not answer: "+err.Error())
}

func (s *Server) timed(page string) func() time.Duration {
	start := time.Now()
	return func() time.Duration {
		d := time.Since(start)
		s.m.queries.WithLabelValues(page).Observe(d.Seconds())
		return d
	}
}

// ---- near-miss dashboard ----

// latestFlagged is how many of the newest flagged records the near-miss page
// lists under its charts.
const latestFlagged = 10

func (s *Server) nearMiss(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	done := s.timed("near_miss")
	var o query.Options
	var wg sync.WaitGroup
	wg.Go(func() { o = s.options(r.Context(), f) })
	data, latest, err := s.loadNearMiss(r.Context(), f)
	wg.Wait()
	elapsed := done()
	if err != nil {
		s.queryFailed(w, r, "near_miss", err)
		return
	}
	b := s.base(r, "Near misses", "near-miss", v)
	b.Elapsed, b.Options = elapsed, o
	s.render(w, r, http.StatusOK, "nearmiss", nearMissModel(b, v, data, latest.Rows))
}

// loadNearMiss reads the near-miss page and its newest flagged records,
// concurrently.
func (s *Server) loadNearMiss(ctx context.Context, f query.Filter) (query.NearMissPage, query.List, error) {
	var data query.NearMissPage
	var latest query.List
	var err, lerr error
	var wg sync.WaitGroup
	wg.Go(func() { data, err = s.src.NearMiss.NearMiss(ctx, f) })
	wg.Go(func() {
		lf := f
		lf.Category = query.Flagged
		latest, lerr = s.src.Records.Records(ctx, lf, query.Cursor{}, latestFlagged)
	})
	wg.Wait()
	if err == nil {
		err = lerr
	}
	return data, latest, err
}

// ---- record list ----

const pageSize = 100

func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	done := s.timed("records")
	var o query.Options
	total := int64(-1) // unknown
	var wg sync.WaitGroup
	wg.Go(func() { o = s.options(r.Context(), f) })
	if s.src.Analyst != nil {
		wg.Go(func() {
			if n, err := s.src.Analyst.Total(r.Context(), f); err == nil {
				total = int64(n)
			} else {
				s.log.Warn("record total unavailable", "err", err)
			}
		})
	}
	l, err := s.src.Records.Records(r.Context(), f, v.Cursor, pageSize)
	wg.Wait()
	elapsed := done()
	if err != nil {
		s.queryFailed(w, r, "records", err)
		return
	}
	b := s.base(r, "Records", "records", v)
	b.Elapsed, b.Options = elapsed, o
	p := recordsModel(b, v, l, pageSize)
	p.Total = total
	if s.src.Analyst != nil {
		p.ExportCSV, p.ExportJSON = v.Href("/export", "format", "csv"), v.Href("/export", "format", "json")
	}
	s.render(w, r, http.StatusOK, "records", p)
}

// ---- one record ----

var recordIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// parseRecordRef validates the {id} path value and the v parameter.
func parseRecordRef(r *http.Request) (id string, version uint32, err error) {
	id = r.PathValue("id")
	if !recordIDPattern.MatchString(id) {
		return "", 0, bad("record id: malformed")
	}
	for k := range r.URL.Query() {
		if k != "v" && k != "posted" {
			return "", 0, bad("parameter %s: unknown (known: posted, v)", k)
		}
	}
	if vs := r.URL.Query().Get("v"); vs != "" {
		n, err := strconv.ParseUint(vs, 10, 32)
		if err != nil || n == 0 {
			return "", 0, bad("parameter v: %q is not a version number (1, 2, …)", vs)
		}
		version = uint32(n)
	}
	return id, version, nil
}

func (s *Server) record(w http.ResponseWriter, r *http.Request) {
	id, version, err := parseRecordRef(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p := session(r).Principal
	done := s.timed("record")
	d, err := s.src.Record.Record(r.Context(), query.Filter{Tenants: p.Tenants}, id, version)
	elapsed := done()
	if errors.Is(err, query.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "No record "+id+" that you can see.")
		return
	}
	if err != nil {
		s.queryFailed(w, r, "record", err)
		return
	}
	if !s.access(w, r, p, oversight.AccessEvent{Action: "record_view", Tenant: d.Decision.Identity.Tenant,
		Target: &oversight.AccessTarget{RecordID: id, Version: d.Decision.Version}}) {
		return
	}
	in := recordIn{ID: id}
	if ev := r.URL.Query().Get("posted"); eventIDPattern.MatchString(ev) {
		in.Posted = ev
	}
	s.renderRecord(w, r, http.StatusOK, d, elapsed, in)
}

// renderRecord renders one record version; in carries what else the page
// shows (a posted review, a refused form and why).
func (s *Server) renderRecord(w http.ResponseWriter, r *http.Request, code int, d query.Detail, elapsed time.Duration, in recordIn) {
	p := session(r).Principal
	in.ID, in.User, in.CanReview = d.Decision.RecordID, p, p.Can(auth.Reviewer)
	in.Bucket, in.Proofs = s.cfg.ArchiveBucket, s.src.Prover != nil
	if in.EventID = in.Form.EventID; in.EventID == "" {
		eid, err := oversight.NewEventID()
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, "could not prepare the review form")
			return
		}
		in.EventID = eid
	}
	b := s.base(r, "Record "+in.ID, "records", view{})
	b.Elapsed = elapsed
	page, err := recordModel(b, d, in)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not encode the record")
		return
	}
	s.render(w, r, code, "record", page)
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	id, version, err := parseRecordRef(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p := session(r).Principal
	// Tenant check first: a proof carries the record's canonical bytes.
	d, err := s.src.Record.Record(r.Context(), query.Filter{Tenants: p.Tenants}, id, version)
	if err != nil {
		if errors.Is(err, query.ErrNotFound) {
			s.fail(w, r, http.StatusNotFound, "No record "+id+" that you can see.")
			return
		}
		s.queryFailed(w, r, "proof", err)
		return
	}
	if s.src.Prover == nil {
		s.fail(w, r, http.StatusNotFound, "This dashboard has no archive access. Run: auditline prove "+id)
		return
	}
	b, err := s.src.Prover.Prove(r.Context(), id, d.Decision.Version, d.Decision.Request.StartTime.Std())
	if err != nil {
		s.log.Warn("prove failed", "record", id, "err", err)
		s.fail(w, r, http.StatusNotFound, "No inclusion proof yet (the record may not be sealed yet): "+err.Error())
		return
	}
	if !s.access(w, r, p, oversight.AccessEvent{Action: "proof_download", Tenant: d.Decision.Identity.Tenant,
		Target: &oversight.AccessTarget{RecordID: id, Version: d.Decision.Version}}) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="proof-%s-v%d.json"`, id, d.Decision.Version))
	_, _ = w.Write(b)
}

// review records a review (or an approval decision) of one record version;
// review.go says what keeps reviews from silently overwriting each other.
func (s *Server) review(w http.ResponseWriter, r *http.Request) {
	id, _, err := parseRecordRef(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	rf, err := parseReviewForm(postForm(r))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	kind := rf.kind()
	p := session(r).Principal
	// Everything the event says about the record comes from the store, read
	// with the reviewer's tenants, never from the form.
	d, err := s.src.Record.Record(r.Context(), query.Filter{Tenants: p.Tenants}, id, rf.Version)
	if errors.Is(err, query.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "No record "+id+" that you can see.")
		return
	}
	if err != nil {
		s.queryFailed(w, r, "review", err)
		return
	}
	if len(d.Versions) > 0 && d.Versions[0].Version > d.Decision.Version {
		// The record changed since the reviewer looked: show them the
		// latest version, their text still in the form (a new submission:
		// a new event id).
		latest, err := s.src.Record.Record(r.Context(), query.Filter{Tenants: p.Tenants}, id, 0)
		if err != nil {
			s.queryFailed(w, r, "review", err)
			return
		}
		s.m.posts.WithLabelValues(kind, "stale").Inc()
		kept := rf
		kept.EventID = ""
		s.renderRecord(w, r, http.StatusConflict, latest, 0, recordIn{Form: kept, FormError: staleReview(d, latest)})
		return
	}
	if code, msg := reviewRefusal(rf, &d.Decision, p); code != 0 {
		s.m.posts.WithLabelValues(kind, "refused").Inc()
		s.renderRecord(w, r, code, d, 0, recordIn{Form: rf, FormError: msg})
		return
	}
	ev := reviewEvent(rf, d, p, s.now())
	if err := s.src.Events.Post(r.Context(), ev); err != nil {
		s.m.posts.WithLabelValues(kind, "error").Inc()
		s.log.Error("posting review failed", "record", id, "event", rf.EventID, "err", err)
		code, msg := postFailure(err)
		s.renderRecord(w, r, code, d, 0, recordIn{Form: rf, FormError: msg})
		return
	}
	s.m.posts.WithLabelValues(kind, "ok").Inc()
	s.log.Info("review posted", "record", id, "version", d.Decision.Version, "event", rf.EventID, "kind", kind, "outcome", rf.Outcome, "reviewer", p.Name)
	http.Redirect(w, r, "/records/"+id+"?posted="+rf.EventID+"#review", http.StatusSeeOther)
}

// ---- sampling dashboard ----

func (s *Server) sampling(w http.ResponseWriter, r *http.Request) {
	v, f, ok := s.view(w, r)
	if !ok {
		return
	}
	done := s.timed("sampling")
	var o query.Options
	var rs query.ReviewStats
	var wg sync.WaitGroup
	wg.Go(func() { o = s.options(r.Context(), f) })
	if s.src.Analyst != nil {
		wg.Go(func() {
			var err error
			if rs, err = s.src.Analyst.ReviewStats(r.Context(), f); err != nil {
				s.log.Warn("review throughput unavailable", "err", err)
			}
		})
	}
	data, err := s.src.Sampling.Sampling(r.Context(), f)
	wg.Wait()
	elapsed := done()
	if err != nil {
		s.queryFailed(w, r, "sampling", err)
		return
	}
	eid, err := oversight.NewEventID()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not prepare the form")
		return
	}
	b := s.base(r, "Sampling", "sampling", v)
	b.Elapsed, b.Options = elapsed, o
	s.render(w, r, http.StatusOK, "sampling", samplingModel(b, v, data, samplingIn{Principal: session(r).Principal, Return: r.URL.RequestURI(), EventID: eid,
		Stats: rs, Now: s.now()}))
}

func (s *Server) burst(w http.ResponseWriter, r *http.Request) {
	p := session(r).Principal
	if !p.EveryTenant() {
		s.m.denied.WithLabelValues("tenant").Inc()
		s.fail(w, r, http.StatusForbidden, burstNeedsAll)
		return
	}
	bf, err := parseBurstForm(postForm(r))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ev := burstEvent(bf, p, s.now())
	if err := s.src.Events.Post(r.Context(), ev); err != nil {
		s.m.posts.WithLabelValues(oversight.KindSamplingControl, "error").Inc()
		s.log.Error("posting burst switch failed", "event", bf.EventID, "err", err)
		s.fail(w, r, http.StatusBadGateway, "Ingest did not accept the switch, so nothing changed; submit again. ("+err.Error()+")")
		return
	}
	s.m.posts.WithLabelValues(oversight.KindSamplingControl, "ok").Inc()
	s.log.Info("burst switched", "on", bf.On, "tiers", bf.Tiers, "event", bf.EventID, "by", p.Name)
	back := safeNext(r.PostFormValue("return"))
	if !strings.HasPrefix(back, "/sampling") {
		back = "/sampling"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
