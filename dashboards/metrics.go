package dashboards

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards/auth"
)

type metrics struct {
	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route
	queries  *prometheus.HistogramVec // page
	logins   *prometheus.CounterVec   // result
	posts    *prometheus.CounterVec   // kind, result
	denied   *prometheus.CounterVec   // reason
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
	}
	sess := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "auditline_dashboard_sessions", Help: "Sessions held in memory."}, func() float64 { return float64(sessions.Len()) })
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.queries, m.logins, m.posts, m.denied, sess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("dashboards: register metrics: %w", err)
		}
	}
	return m, nil
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument counts requests by the mux pattern that served them (never by
// raw path: record ids would explode the label set).
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
