package dashboards

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/internal/httpstatus"
)

type metrics struct {
	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route
	queries  *prometheus.HistogramVec // page
	logins   *prometheus.CounterVec   // result
	posts    *prometheus.CounterVec   // kind, result
	denied   *prometheus.CounterVec   // reason
	// throttled counts login attempts refused before a password check.
	throttled *prometheus.CounterVec // reason: per_ip, global, backoff, busy
	// access counts access events by action and result (queued, refused);
	// accessPosted and accessLost count what ingest took or refused for good.
	access                   *prometheus.CounterVec
	accessPosted, accessLost prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, sessions *auth.Sessions) (*metrics, error) {
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_dashboard_requests_total", Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "auditline_dashboard_request_duration_seconds", Help: "HTTP request latency by route pattern.", Buckets: buckets}, []string{"route"}),
		queries:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "auditline_dashboard_query_duration_seconds", Help: "Time spent in ClickHouse per page (all of a page's queries, run concurrently).", Buckets: buckets}, []string{"page"}),
		logins:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_dashboard_logins_total", Help: "Login attempts by result (ok, bad_credentials, throttled, sso)."}, []string{"result"}),
		posts:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_dashboard_oversight_posts_total", Help: "Oversight events posted to ingest by kind and result."}, []string{"kind", "result"}),
		denied:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_dashboard_denied_total", Help: "Requests refused by reason (csrf, role, tenant)."}, []string{"reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_dashboard_login_throttled_total",
			Help: "Login attempts refused before any password check, by reason (per_ip, global, backoff, busy)."}, []string{"reason"}),
		access: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditline_dashboard_access_events_total",
			Help: "Access events (who looked at what) by action and result: queued for ingest, or refused because the queue was full (the read was refused too)."}, []string{"action", "result"}),
		accessPosted: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_dashboard_access_events_posted_total", Help: "Access events ingest acknowledged."}),
		accessLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "auditline_dashboard_access_events_lost_total",
			Help: "Access events ingest refused for good or that were still queued when the shutdown drain ended (should stay 0)."}),
	}
	sess := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "auditline_dashboard_sessions", Help: "Sessions held in memory."}, func() float64 { return float64(sessions.Len()) })
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.queries, m.logins, m.posts, m.denied, m.throttled, m.access, m.accessPosted, m.accessLost, sess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("dashboards: register metrics: %w", err)
		}
	}
	return m, nil
}

// instrument counts requests by the mux pattern that served them (never by
// raw path: record ids would explode the label set).
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := httpstatus.New(w)
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		code := sw.Code()
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
