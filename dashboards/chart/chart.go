// Package chart draws the dashboards' charts as inline SVG on the server.
//
// Why server-side SVG: the pages then work with no JavaScript, no library and
// no network beyond the dashboard itself; a chart is part of the HTML the
// browser already has, prints, and survives a strict Content-Security-Policy
// (only SVG presentation attributes, no inline style or script). Every label
// and link goes through html/template, so a team or alias name can never
// inject markup. Each bar segment is a link: clicking it drills down to the
// records behind it.
package chart

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strconv"
)

// Palette is the fixed series colours: the eight colour-blind-safe Okabe–Ito
// colours first, then four more so that a dozen reasons stay distinct.
var Palette = []string{"#D55E00", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
	"#8C564B", "#7F7F7F", "#BCBD22", "#17BECF"}

// Series is one stacked layer.
type Series struct {
	Name  string
	Color string // "" picks Palette[i]
}

// Column is one x position of a stacked column chart.
type Column struct {
	Label  string    // x-axis label (shown on some columns only when crowded)
	Values []float64 // one per series
	Hrefs  []string  // one per series: where a click on the segment goes ("" none)
	Title  string    // tooltip prefix, e.g. the bucket's time range
}

// Columns draws stacked vertical columns: the trend charts.
type Columns struct {
	Label  string // accessible name of the chart
	Series []Series
	Cols   []Column
	Width  int // viewBox width; default 900
	Height int // viewBox height; default 240
}

// Bar is one row of a horizontal bar chart.
type Bar struct {
	Label  string
	Values []float64 // one per series, stacked
	Href   string
	Note   string // right-hand text, e.g. "12 of 340 (3.5%)"
}

// Bars draws horizontal stacked bars: the breakdowns.
type Bars struct {
	Label  string
	Series []Series
	Bars   []Bar
	Width  int // default 440
}

type rect struct {
	X, Y, W, H float64
	Color      string
	Href       string
	Title      string
}

type text struct {
	X, Y   float64
	Anchor string
	Text   string
	Class  string
	Href   string
}

type line struct{ X1, Y1, X2, Y2 float64 }

type svg struct {
	Label         string
	Width, Height int
	Rects         []rect
	Texts         []text
	Lines         []line
	Legend        []legendItem
}

type legendItem struct {
	X, Y  float64
	Color string
	Name  string
}

var tmpl = template.Must(template.New("svg").Parse(`<svg class="chart" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Label}}" xmlns="http://www.w3.org/2000/svg">` +
	`<title>{{.Label}}</title>` +
	`{{range .Lines}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}" stroke="#ddd" stroke-width="1"/>{{end}}` +
	`{{range .Rects}}{{if .Href}}<a href="{{.Href}}">{{end}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Color}}"><title>{{.Title}}</title></rect>{{if .Href}}</a>{{end}}{{end}}` +
	`{{range .Texts}}{{if .Href}}<a href="{{.Href}}">{{end}}<text x="{{.X}}" y="{{.Y}}" text-anchor="{{.Anchor}}" class="{{.Class}}">{{.Text}}</text>{{if .Href}}</a>{{end}}{{end}}` +
	`{{range .Legend}}<rect x="{{.X}}" y="{{.Y}}" width="10" height="10" fill="{{.Color}}"/><text x="{{printf "%.1f" .X}}" dx="14" y="{{.Y}}" dy="9" class="legend">{{.Name}}</text>{{end}}` +
	`</svg>`))

func (s svg) render() template.HTML {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, s); err != nil {
		// The template is constant and its data plain values: an error here is
		// a bug; show it in place of the chart rather than fail the page.
		return template.HTML(template.HTMLEscapeString("chart: " + err.Error()))
	}
	return template.HTML(b.String())
}

func color(ss []Series, i int) string {
	if i < len(ss) && ss[i].Color != "" {
		return ss[i].Color
	}
	return Palette[i%len(Palette)]
}

// niceMax rounds v up to 1, 2 or 5 × 10^n, for gridlines.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func axis(v float64) string {
	if v >= 1e3 {
		return Short(v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Short formats a count compactly: 950, 1.2k, 3.4M.
func Short(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// SVG renders the column chart.
func (c Columns) SVG() template.HTML {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 900
	}
	if h == 0 {
		h = 240
	}
	const left, right, bottom = 48.0, 36.0, 22.0
	s := svg{Label: c.Label, Width: w, Height: h}
	// Legend first: it wraps onto as many rows as it needs, and the plot
	// starts below it.
	lx, ly := left, 4.0
	for j := range c.Series {
		wd := 24 + 7*float64(len([]rune(c.Series[j].Name)))
		if lx+wd > float64(w)-right && lx > left {
			lx, ly = left, ly+16
		}
		s.Legend = append(s.Legend, legendItem{X: lx, Y: ly, Color: color(c.Series, j), Name: c.Series[j].Name})
		lx += wd
	}
	top := ly + 22
	if len(c.Series) == 0 {
		top = 12
	}
	maxV := 0.0
	for _, col := range c.Cols {
		sum := 0.0
		for _, v := range col.Values {
			sum += v
		}
		maxV = math.Max(maxV, sum)
	}
	top1 := niceMax(maxV)
	plotW, plotH := float64(w)-left-right, float64(h)-top-bottom
	for i := 0; i <= 4; i++ {
		y := top + plotH - plotH*float64(i)/4
		s.Lines = append(s.Lines, line{left, y, float64(w) - right, y})
		s.Texts = append(s.Texts, text{X: left - 4, Y: y + 4, Anchor: "end", Text: axis(top1 * float64(i) / 4), Class: "axis"})
	}
	n := len(c.Cols)
	if n == 0 {
		s.Texts = append(s.Texts, text{X: float64(w) / 2, Y: float64(h) / 2, Anchor: "middle", Text: "no data in this range", Class: "empty"})
		return s.render()
	}
	slot := plotW / float64(n)
	barW := math.Max(1, slot*0.8)
	every := int(math.Ceil(float64(n) / 8)) // at most ~8 x labels
	for i, col := range c.Cols {
		x := left + float64(i)*slot + (slot-barW)/2
		y := top + plotH
		for j, v := range col.Values {
			if v <= 0 {
				continue
			}
			hh := plotH * v / top1
			y -= hh
			r := rect{X: round(x), Y: round(y), W: round(barW), H: round(math.Max(hh, 0.5)), Color: color(c.Series, j),
				Title: fmt.Sprintf("%s — %s: %s", col.Title, seriesName(c.Series, j), Short(v))}
			if j < len(col.Hrefs) {
				r.Href = col.Hrefs[j]
			}
			s.Rects = append(s.Rects, r)
		}
		if i%every == 0 {
			s.Texts = append(s.Texts, text{X: round(x + barW/2), Y: float64(h) - 6, Anchor: "middle", Text: col.Label, Class: "axis"})
		}
	}
	return s.render()
}

func seriesName(ss []Series, i int) string {
	if i < len(ss) {
		return ss[i].Name
	}
	return ""
}

func round(v float64) float64 { return math.Round(v*10) / 10 }

// SVG renders the bar chart.
func (b Bars) SVG() template.HTML {
	w := b.Width
	if w == 0 {
		w = 440
	}
	const rowH, labelW, noteW, top = 22.0, 140.0, 120.0, 4.0
	h := int(top + rowH*float64(max(len(b.Bars), 1)) + 4)
	s := svg{Label: b.Label, Width: w, Height: h}
	if len(b.Bars) == 0 {
		s.Texts = append(s.Texts, text{X: float64(w) / 2, Y: 16, Anchor: "middle", Text: "no data", Class: "empty"})
		return s.render()
	}
	maxV := 0.0
	for _, bar := range b.Bars {
		sum := 0.0
		for _, v := range bar.Values {
			sum += v
		}
		maxV = math.Max(maxV, sum)
	}
	if maxV == 0 {
		maxV = 1
	}
	plotW := float64(w) - labelW - noteW
	for i, bar := range b.Bars {
		y := top + float64(i)*rowH
		label := bar.Label
		if label == "" {
			label = "(none)"
		}
		if len([]rune(label)) > 20 {
			label = string([]rune(label)[:19]) + "…"
		}
		s.Texts = append(s.Texts, text{X: labelW - 6, Y: y + 15, Anchor: "end", Text: label, Class: "label", Href: bar.Href})
		x := labelW
		for j, v := range bar.Values {
			if v <= 0 {
				continue
			}
			ww := math.Max(plotW*v/maxV, 1)
			s.Rects = append(s.Rects, rect{X: round(x), Y: y + 3, W: round(ww), H: rowH - 6, Color: color(b.Series, j), Href: bar.Href,
				Title: fmt.Sprintf("%s — %s: %s", bar.Label, seriesName(b.Series, j), Short(v))})
			x += ww
		}
		s.Texts = append(s.Texts, text{X: float64(w) - 2, Y: y + 15, Anchor: "end", Text: bar.Note, Class: "note"})
	}
	return s.render()
}
