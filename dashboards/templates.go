package dashboards

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/chart"
	"github.com/auditline/auditline/enrich/record"
)

var pageNames = []string{"login", "error", "nearmiss", "records", "record", "sampling", "approvals", "usage", "access"}

func funcs() template.FuncMap {
	return template.FuncMap{
		"join":   strings.Join,
		"reason": reasonLabel,
		"short":  func(v uint64) string { return chart.Short(float64(v)) },
		"pct":    pct,
		"sub":    func(a, b uint64) uint64 { return a - min(a, b) },
		"inc":    func(i int) int { return i + 1 },
		"ms":     func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" },
		"dur":    stepLabel,
		"iso": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02T15:04Z")
		},
		"stamp": func(v any) string {
			switch t := v.(type) {
			case record.Time:
				if t.IsZero() {
					return "–"
				}
				return t.Std().Format("2006-01-02 15:04:05.000")
			case time.Time:
				if t.IsZero() {
					return "–"
				}
				return t.UTC().Format("2006-01-02 15:04:05")
			}
			return fmt.Sprint(v)
		},
		"between": func(a, b record.Time) string {
			if a.IsZero() || b.IsZero() {
				return "–"
			}
			return strconv.FormatInt(int64(b-a), 10)
		},
		"nf": func(f *float64) string {
			if f == nil {
				return "–"
			}
			return strconv.FormatFloat(*f, 'f', -1, 64)
		},
		"pctf": func(f *float64) string {
			if f == nil {
				return "–"
			}
			return strconv.FormatFloat(*f, 'f', 1, 64) + "%"
		},
		"choices":  choices,
		"list":     func(vs ...string) []string { return vs },
		"category": func(c string) string { return categoryLabels[c] },
		"approval": approvalLabel,
		"ago": func(now, t time.Time) string {
			if t.IsZero() {
				return "–"
			}
			return age(now.Sub(t))
		},
		"usd": func(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 2, 64) },
		"f1":  func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
		"tenants": func(ts []string) string {
			if len(ts) == 1 && ts[0] == auth.AllTenants {
				return "all tenants"
			}
			if len(ts) > 3 {
				return strconv.Itoa(len(ts)) + " tenants"
			}
			return strings.Join(ts, ", ")
		},
	}
}

// choice is one option of a dropdown.
type choice struct {
	Value    string
	Selected bool
}

// choices is a dropdown's options: the values of the lists, in order,
// without duplicates or empty ones, and cur (the value in force) even when
// no list has it, selected.
func choices(cur string, lists ...[]string) []choice {
	var out []choice
	seen := map[string]bool{}
	add := func(v string) {
		if v == "" || seen[v] {
			return
		}
		seen[v] = true
		out = append(out, choice{Value: v, Selected: v == cur})
	}
	for _, l := range lists {
		for _, v := range l {
			add(v)
		}
	}
	add(cur)
	return out
}

func stepLabel(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		if d == 24*time.Hour {
			return "day"
		}
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d >= time.Hour && d%time.Hour == 0:
		if d == time.Hour {
			return "hour"
		}
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	if d == time.Minute {
		return "minute"
	}
	return strconv.Itoa(int(d/time.Minute)) + " minutes"
}

// parsePages parses each page with the layout; a page is rendered by
// executing "layout", which calls the page's "content".
func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs()).ParseFS(webFS, "web/templates/layout.html", "web/templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboards: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}
