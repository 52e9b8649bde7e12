package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/deploy/testenv"
)

type target struct {
	RefID      string          `json:"refId"`
	RawSQL     string          `json:"rawSql"`
	Format     *int            `json:"format"`
	Datasource json.RawMessage `json:"datasource"`
}

type panel struct {
	ID      int                      `json:"id"`
	Type    string                   `json:"type"`
	Title   string                   `json:"title"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []target                 `json:"targets"`
}

type variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

var files = []string{"near-miss.json", "sampling.json"}

// latestVersion is the join that keeps only the latest version of each
// record (dashboards/query/filter.go, latestJoin).
const latestVersion = "ANY LEFT JOIN (\n    SELECT record_id, max(version) AS _latest FROM decision_records PREWHERE version > 1"

func load(t *testing.T, name string) dashboard {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

func TestDashboardJSON(t *testing.T) {
	uids := map[string]bool{}
	for _, f := range files {
		d := load(t, f)
		if d.UID == "" || uids[d.UID] || d.Title == "" {
			t.Errorf("%s: uid %q (dup %v) title %q", f, d.UID, uids[d.UID], d.Title)
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		vars := map[string]bool{}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
		}
		for _, want := range []string{"datasource", "tenant", "team", "alias", "provider"} {
			if !vars[want] {
				t.Errorf("%s: no template variable %q", f, want)
			}
		}
		for _, p := range d.Panels {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q id %d repeated or zero", f, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %q gridPos %+v", f, p.Title, p.GridPos)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, tg := range p.Targets {
				if !strings.Contains(string(tg.Datasource), `"grafana-clickhouse-datasource"`) || !strings.Contains(string(tg.Datasource), `${datasource}`) {
					t.Errorf("%s: panel %q target datasource %s", f, p.Title, tg.Datasource)
				}
				if strings.TrimSpace(tg.RawSQL) == "" || tg.Format == nil {
					t.Errorf("%s: panel %q target %s has no rawSql or format", f, p.Title, tg.RefID)
				}
				if p.Type == "timeseries" && (*tg.Format != 0 || !strings.Contains(tg.RawSQL, " AS time")) {
					t.Errorf("%s: time series %q must return a time column with format 0", f, p.Title)
				}
				if strings.Contains(tg.RawSQL, "decision_records") && (!strings.Contains(tg.RawSQL, latestVersion) || !strings.Contains(tg.RawSQL, "WHERE version >= _latest")) {
					t.Errorf("%s: panel %q reads decision_records without the latest-version condition: it would count old versions", f, p.Title)
				}
			}
		}
	}
}

var (
	timeFilter = regexp.MustCompile(`\$__timeFilter\(([A-Za-z_][A-Za-z0-9_.]*)\)`)
	varRef     = regexp.MustCompile(`\$\{([a-z_]+)(?::([a-z]+))?\}`)
)

// substitute expands the macros of grafana-clickhouse-datasource the panels
// use, as the plugin does ($__timeFilter(col) → col >= toDateTime(from) AND
// col <= toDateTime(to); $__interval_s → seconds), and the template variables
// (${v:singlequote} → 'a','b').
func substitute(sql string, from, to time.Time, interval int, vals map[string][]string) (string, error) {
	sql = timeFilter.ReplaceAllString(sql, fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", from.Unix(), to.Unix()))
	sql = strings.ReplaceAll(sql, "$__interval_s", fmt.Sprint(interval))
	sql = strings.ReplaceAll(sql, "$__fromTime", fmt.Sprintf("toDateTime(%d)", from.Unix()))
	sql = strings.ReplaceAll(sql, "$__toTime", fmt.Sprintf("toDateTime(%d)", to.Unix()))
	var err error
	sql = varRef.ReplaceAllStringFunc(sql, func(m string) string {
		sm := varRef.FindStringSubmatch(m)
		vs, ok := vals[sm[1]]
		if !ok {
			err = fmt.Errorf("unknown variable %s", m)
			return m
		}
		if sm[2] == "singlequote" {
			q := make([]string, len(vs))
			for i, v := range vs {
				q[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
			}
			return strings.Join(q, ",")
		}
		return strings.Join(vs, ",")
	})
	if err != nil {
		return "", err
	}
	if strings.Contains(sql, "$") {
		return "", fmt.Errorf("unsubstituted macro left in: %s", sql)
	}
	return sql, nil
}

// TestPanelSQL runs every panel's and variable's SQL against the real
// ClickHouse, with the variables set to All and to specific values.
func TestPanelSQL(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Name(t)
	ctx := context.Background()
	conn, err := seed.Open(ctx, addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seed.Drop(context.Background(), conn, db); conn.Close() })
	if err := seed.CreateSchema(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	if err := seed.Insert(ctx, conn, db, seed.Table, seed.Generate(3000, seed.Options{End: end, Span: 7 * 24 * time.Hour, Seed: 3})); err != nil {
		t.Fatal(err)
	}
	sw := []byte(`{"schema":"auditline.oversight.v1","event_id":"sw-1","kind":"sampling_control","occurred_at":"2026-11-22T09:00:00Z","reviewer":{"id":"carol","role":"admin"},"rationale":"incident 41","sampling":{"burst":true}}`)
	if err := seed.InsertOversight(ctx, conn, db, sw, "sw-1", end.Add(-time.Hour), 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	all := map[string][]string{"tenant": {"__all"}, "team": {"__all"}, "alias": {"__all"}, "provider": {"__all"}, "datasource": {"ClickHouse"}, "dashboard_url": {"http://x"}}
	some := map[string][]string{"tenant": {"acme"}, "team": {"payments", "legal"}, "alias": {"__all"}, "provider": {"azure", "openai"}, "datasource": {"ClickHouse"}, "dashboard_url": {"http://x"}}
	for _, f := range files {
		d := load(t, f)
		type q struct{ name, sql string }
		var qs []q
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				qs = append(qs, q{p.Title, tg.RawSQL})
			}
		}
		for _, v := range d.Templating.List {
			if s, ok := v.Query.(string); ok && v.Type == "query" {
				qs = append(qs, q{"variable " + v.Name, s})
			}
		}
		for _, qq := range qs {
			for label, vals := range map[string]map[string][]string{"all": all, "some": some} {
				t.Run(f+"/"+qq.name+"/"+label, func(t *testing.T) {
					sql, err := substitute(qq.sql, end.Add(-7*24*time.Hour), end, 3600, vals)
					if err != nil {
						t.Fatal(err)
					}
					rows, err := conn.Query(ctx, sql)
					if err != nil {
						t.Fatalf("%v\n%s", err, sql)
					}
					n := 0
					for rows.Next() {
						n++
					}
					if err := rows.Err(); err != nil {
						t.Fatalf("%v\n%s", err, sql)
					}
					rows.Close()
					if n == 0 && label == "all" {
						t.Errorf("no rows over seeded data:\n%s", sql)
					}
				})
			}
		}
	}
}
