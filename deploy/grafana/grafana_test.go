package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditline/auditline/dashboards/seed"
	"github.com/auditline/auditline/dashboards/seed/seedtest"
	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/store"
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

var files = []string{"near-miss.json", "sampling.json", "completeness.json"}

// filterVars are the template variables a dashboard must have: the record
// filters, except on the completeness dashboard (emitters are not scoped by
// tenant, team, alias or provider).
func filterVars(file string) []string {
	if file == "completeness.json" {
		return []string{"datasource"}
	}
	return []string{"datasource", "tenant", "team", "alias", "provider"}
}

// latestVersion is the join that keeps only the latest version of each
// record (dashboards/query/filter.go, latestJoin).
const latestVersion = "ANY LEFT JOIN (\n    SELECT record_id, max(version) AS _latest FROM " + store.TableDecisions + " PREWHERE version > 1"

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
		for _, want := range filterVars(f) {
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
				// ClickHouse 20.x+ refuses an unnamed subquery in a JOIN (code 206);
				// 18.16 accepts it, so this is checked here, not only by running it.
				if bad := testenv.UnnamedSubqueries(tg.RawSQL); len(bad) > 0 {
					t.Errorf("%s: panel %q: subqueries without an alias %q", f, p.Title, bad)
				}
				if strings.Contains(tg.RawSQL, store.TableDecisions) && (!strings.Contains(tg.RawSQL, latestVersion) || !strings.Contains(tg.RawSQL, "WHERE version >= _latest")) {
					t.Errorf("%s: panel %q reads decision_records without the latest-version condition: it would count old versions", f, p.Title)
				}
			}
		}
	}
}

// TestPanelTables: the panels read only tables and views the store creates
// (store.Names, the constants Go code uses), so renaming one in store
// without the panels fails here rather than on a dashboard.
func TestPanelTables(t *testing.T) {
	names := store.Names()
	n := 0
	for _, f := range files {
		for _, p := range load(t, f).Panels {
			for _, tg := range p.Targets {
				for _, r := range testenv.TablesRead(tg.RawSQL) {
					n++
					if !slices.Contains(names, r) {
						t.Errorf("%s: panel %q reads %q, which is not in store.Names", f, p.Title, r)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no table names found in the panels; the parser is broken")
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
func TestPanelSQL(t *testing.T) { testenv.ForEachClickHouse(t, testPanelSQL) }

func testPanelSQL(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Name(t)
	ctx := context.Background()
	conn := seedtest.Schema(t, addr, db)
	end := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	recs := seed.Generate(3000, seed.Options{End: end, Span: 7 * 24 * time.Hour, Seed: 3})
	pluginSequences(recs[:300])
	if err := seed.Insert(ctx, conn, db, seed.Table, recs); err != nil {
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

// pluginSequences makes recs the records of two LiteLLM plugin emitters
// (a marker and an outcome each, under the gateway_config of number 1), with
// a gap in each, and some of them missing_outcome, for the completeness
// dashboard.
func pluginSequences(recs []seed.Positioned) {
	for i := range recs {
		d := &recs[i].D
		em := []string{"em-a", "em-b"}[i%2]
		n := int64(i/2)*2 + 2
		if n > 40 {
			n += 3 // numbers 41..43 (after the 20th record of each) are lost
		}
		d.Emitter.ID, d.Emitter.ConfigSeq, d.Emitter.ConfigHash = em, 1, "sha256:00"
		for j := range d.Evidence.Sources {
			d.Evidence.Sources[j].Emitter, d.Evidence.Sources[j].Seq = em, n+int64(j%2)
		}
		if i%25 == 0 {
			d.Completeness = record.MissingOutcome
		}
	}
}
