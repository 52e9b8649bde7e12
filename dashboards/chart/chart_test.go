package chart

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended):\n%s", name, got)
	}
}

func TestCharts(t *testing.T) {
	series := []Series{{Name: "blocked"}, {Name: "nearly blocked"}}
	for _, tc := range []struct {
		name string
		svg  string
	}{
		{"columns.svg", string(Columns{Label: "trend", Series: series, Cols: []Column{
			{Label: "10:00", Title: "10:00–11:00", Values: []float64{2, 5}, Hrefs: []string{"/records?a=1&b=2", "/records?c=3"}},
			{Label: "11:00", Title: "11:00–12:00", Values: []float64{0, 12}, Hrefs: []string{"", "/records?d=4"}},
			{Label: "12:00", Title: "12:00–13:00", Values: []float64{1, 0}},
		}}.SVG())},
		{"columns-empty.svg", string(Columns{Label: "nothing", Series: series}.SVG())},
		{"columns-legend-wraps.svg", string(Columns{Label: "many", Width: 300, Series: []Series{{Name: "guardrail intervened"}, {Name: "budget near limit"}, {Name: "fallback after 429"}, {Name: "retries"}},
			Cols: []Column{{Label: "x", Values: []float64{1, 2, 3, 4}}}}.SVG())},
		{"bars.svg", string(Bars{Label: "by team", Series: series, Bars: []Bar{
			{Label: "payments", Values: []float64{3, 9}, Href: "/records?team=payments", Note: "12 of 400 (3.0%)"},
			{Label: "a team with a very long name indeed", Values: []float64{0, 1}, Href: "/records?team=long", Note: "1 of 2"},
			{Label: "", Values: []float64{0, 0}, Note: "0 of 5"},
		}}.SVG())},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, tc.svg) })
	}
}

func TestChartEscapesData(t *testing.T) {
	evil := `<script>alert(1)</script>" onload="x`
	out := string(Bars{Label: evil, Bars: []Bar{{Label: evil, Values: []float64{1}, Href: "javascript:alert(1)", Note: evil}}}.SVG()) +
		string(Columns{Label: evil, Series: []Series{{Name: evil}}, Cols: []Column{{Label: evil, Title: evil, Values: []float64{1}, Hrefs: []string{"javascript:alert(1)"}}}}.SVG())
	for _, bad := range []string{"<script>", `" onload="`, "javascript:"} {
		if strings.Contains(out, bad) {
			t.Errorf("output contains %q:\n%s", bad, out)
		}
	}
}

func TestShortAndNiceMax(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 7: "7", 999: "999", 1500: "1.5k", 12345: "12k", 3_400_000: "3.4M", 0.25: "0.25"} {
		if got := Short(v); got != want {
			t.Errorf("Short(%v) = %s, want %s", v, got, want)
		}
	}
	for v, want := range map[float64]float64{0: 1, 1: 1, 3: 5, 7: 10, 12: 20, 180: 200, 501: 1000} {
		if got := niceMax(v); got != want {
			t.Errorf("niceMax(%v) = %v, want %v", v, got, want)
		}
	}
}
