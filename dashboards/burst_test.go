package dashboards

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/query"
	"github.com/auditline/auditline/ingest/topic"
)

// sampled is a store whose sampling page is page.
type sampled struct {
	*fake
	page query.SamplingPage
}

func (s sampled) Sampling(context.Context, query.Filter) (query.SamplingPage, error) {
	return s.page, nil
}

// TestBurstShownTruthfully: the burst state on the sampling page agrees with
// the records. Enrich's automatic burst (near misses or failures spiking)
// switches burst sampling on without an oversight event, so a range with
// records sampled in burst and no switch by hand shows "Burst automatic",
// never "Burst off · never switched" (issue 18: 202 samples said burst while
// the page said off).
func TestBurstShownTruthfully(t *testing.T) {
	switched := query.Burst{Known: true, On: false, By: "carol", Role: "admin", Rationale: "incident over", At: time.Unix(1763700000, 0)}
	for _, tc := range []struct {
		name       string
		burst      query.Burst
		inBurst    uint64
		state      []string // in #burst-state
		notState   []string
		truth      string // in #burst-truth
		withRecord bool   // a link to the records sampled in burst
	}{
		{"automatic burst, never switched by hand", query.Burst{}, 202,
			[]string{"burst-auto", "Burst automatic", "by enrich: 202 records sampled in burst; never switched by hand"}, []string{"Burst off", ">never switched<"},
			"202 records in this range were sampled in burst by enrich&#39;s automatic burst mode", true},
		{"no burst at all", query.Burst{}, 0, []string{"burst-off", "Burst off", "never switched"}, []string{"automatic"},
			"No record in this range was sampled in burst, and no one has switched burst mode.", false},
		{"switched off by hand, records sampled in burst before", switched, 7, []string{"burst-off", "Burst off", "switched by carol"}, []string{"automatic"},
			"Burst is off now, but 7 records in this range were sampled in burst", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{records: map[string]query.Detail{}}
			src := sampled{fake: f, page: query.SamplingPage{Step: time.Hour, Burst: tc.burst,
				Tiers: []query.Tier{{Tier: "high", Total: 400, Sampled: tc.inBurst + 3, Baseline: 3, Burst: tc.inBurst, Rate: 0.01}}}}
			cfg := NewDefaultConfig()
			cfg.Ingest.Token = "t"
			cfg.Auth.Users = []auth.UserConfig{{Name: "viv", PasswordHash: hash(t, "viv-pw"), Role: "viewer", Tenants: []string{"*"}}}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			srv, err := New(cfg, topic.Shared{}, Settings{Registry: prometheus.NewRegistry(), Sources: Sources{NearMiss: f, Records: f, Record: f, Sampling: src, Events: f}})
			if err != nil {
				t.Fatal(err)
			}
			b := newBrowser(t, srv.Handler(), "192.0.2.10:5555", "127.0.0.1:8090")
			if w := b.login("viv", "viv-pw"); w.Code != http.StatusSeeOther {
				t.Fatalf("login: %d", w.Code)
			}
			w := b.do("GET", "/sampling?range=24h", nil)
			if w.Code != http.StatusOK {
				t.Fatalf("sampling: %d", w.Code)
			}
			page := w.Body.String()
			state := between(page, `id="burst-state"`, "</div>")
			for _, s := range tc.state {
				if !strings.Contains(page, `class="kpi `+s+`"`) && !strings.Contains(state, s) {
					t.Errorf("burst state lacks %q: %s", s, state)
				}
			}
			for _, s := range tc.notState {
				if strings.Contains(state, s) {
					t.Errorf("burst state says %q: %s", s, state)
				}
			}
			truth := between(page, `id="burst-truth"`, "</p>")
			if !strings.Contains(truth, tc.truth) || strings.Contains(truth, "sample=burst") != tc.withRecord {
				t.Errorf("burst truth: %s", truth)
			}
		})
	}
}

// between returns the text of page from the first from up to the next to.
func between(page, from, to string) string {
	_, rest, ok := strings.Cut(page, from)
	if !ok {
		return ""
	}
	s, _, _ := strings.Cut(rest, to)
	return s
}
