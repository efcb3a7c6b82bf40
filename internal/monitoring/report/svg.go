package report

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/data/profile"
)

// palette colours series in order: reference first (slate), current second
// (orange), then others.
var palette = []string{"#486581", "#e8590c", "#2f9e44", "#7048e8", "#c2255c"}

const alertColour = "#e12d39"

func colour(i int) string { return palette[i%len(palette)] }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// num formats a value for an axis or a label.
func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func esc(s string) string { return template.HTMLEscapeString(s) }

// renderChart draws c as an <svg> element; an unknown kind or a chart without
// data draws a short note instead, so a report never fails on one plot.
func renderChart(c Chart) string {
	var b strings.Builder
	switch c.Kind {
	case Histogram:
		histogramSVG(&b, c)
	case Bars:
		barsSVG(&b, c)
	case Line:
		lineSVG(&b, c)
	default:
		fmt.Fprintf(&b, `<p>unknown chart kind %q</p>`, esc(c.Kind))
	}
	return b.String()
}

// maxOf is the largest finite value of the series (0 when none).
func maxOf(series []Series) float64 {
	m := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			if finite(v) {
				m = max(m, v)
			}
		}
	}
	return m
}

func legend(b *strings.Builder, series []Series, x, y float64) {
	for i, s := range series {
		if s.Name == "" {
			continue
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s" opacity="0.7"/><text x="%.1f" y="%.1f">%s</text>`,
			x, y+float64(i)*14, colour(i), x+14, y+float64(i)*14+9, esc(s.Name))
	}
}

func histogramSVG(b *strings.Builder, c Chart) {
	const w, h, left, right, top, bottom = 360.0, 200.0, 40.0, 10.0, 10.0, 24.0
	n := len(c.Edges) - 1
	if n < 1 || !finite(c.Edges[0]) || !finite(c.Edges[n]) {
		b.WriteString(`<p>no data</p>`)
		return
	}
	lo, hi := c.Edges[0], c.Edges[n]
	if hi == lo {
		hi = lo + 1
	}
	ymax := maxOf(c.Series)
	if ymax == 0 {
		ymax = 1
	}
	sx := func(v float64) float64 { return left + (v-lo)/(hi-lo)*(w-left-right) }
	sy := func(v float64) float64 { return h - bottom - v/ymax*(h-top-bottom) }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart histogram" width="%g" height="%g" viewBox="0 0 %g %g">`, w, h, w, h)
	for i, s := range c.Series {
		for j := 0; j < n && j < len(s.Values); j++ {
			v := s.Values[j]
			if !finite(v) || v <= 0 {
				continue
			}
			x0, x1 := sx(c.Edges[j]), sx(c.Edges[j+1])
			fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.55"/>`,
				x0, sy(v), max(x1-x0-0.5, 0.5), sy(0)-sy(v), colour(i))
		}
	}
	axes(b, left, top, w-right, h-bottom)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`,
		left, h-8, esc(num(c.Edges[0])), w-right, h-8, esc(num(c.Edges[n])))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-3, top+8, esc(num(ymax)))
	legend(b, c.Series, w-right-90, top)
	b.WriteString(`</svg>`)
}

func axes(b *strings.Builder, x0, y0, x1, y1 float64) {
	fmt.Fprintf(b, `<path d="M%.1f %.1fV%.1fH%.1f" stroke="#9fb3c8" fill="none"/>`, x0, y0, y1, x1)
}

func barsSVG(b *strings.Builder, c Chart) {
	const w, labelW, right, top = 480.0, 150.0, 50.0, 6.0
	if len(c.Labels) == 0 || len(c.Series) == 0 {
		b.WriteString(`<p>no data</p>`)
		return
	}
	barH := 12.0
	rowH := barH*float64(len(c.Series)) + 6
	h := top + rowH*float64(len(c.Labels)) + 14 + 14*float64(namedSeries(c.Series))
	xmax := maxOf(c.Series)
	if c.Threshold != nil && finite(*c.Threshold) {
		xmax = max(xmax, *c.Threshold)
	}
	if xmax <= 0 {
		xmax = 1
	}
	sx := func(v float64) float64 { return labelW + v/xmax*(w-labelW-right) }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart bars" width="%g" height="%.0f" viewBox="0 0 %g %.0f">`, w, h, w, h)
	for r, label := range c.Labels {
		y := top + float64(r)*rowH
		fill := "#486581"
		if slices.Contains(c.Marks, r) {
			fill = alertColour
		}
		if len([]rune(label)) > 24 {
			label = string([]rune(label)[:23]) + "…"
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" style="fill:%s">%s</text>`, labelW-4, y+rowH/2+3, fill, esc(label))
		for i, s := range c.Series {
			if r >= len(s.Values) || !finite(s.Values[r]) {
				continue
			}
			v := max(s.Values[r], 0)
			by := y + float64(i)*barH
			col := colour(i)
			if len(c.Series) == 1 && slices.Contains(c.Marks, r) {
				col = alertColour
			}
			fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.8"/><text x="%.1f" y="%.1f">%s</text>`,
				labelW, by, max(sx(v)-labelW, 0.5), barH-2, col, sx(v)+3, by+barH-3, esc(num(s.Values[r])))
		}
	}
	bottom := top + rowH*float64(len(c.Labels))
	if c.Threshold != nil && finite(*c.Threshold) {
		x := sx(*c.Threshold)
		fmt.Fprintf(b, `<line class="threshold" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 3"/><text x="%.1f" y="%.1f">threshold %s</text>`,
			x, top, x, bottom, alertColour, x+2, bottom+11, esc(num(*c.Threshold)))
	}
	legend(b, c.Series, labelW, bottom+16)
	b.WriteString(`</svg>`)
}

func namedSeries(series []Series) int {
	n := 0
	for _, s := range series {
		if s.Name != "" {
			n++
		}
	}
	return n
}

func lineSVG(b *strings.Builder, c Chart) {
	const w, h, left, right, top, bottom = 360.0, 180.0, 46.0, 10.0, 10.0, 24.0
	n := len(c.Labels)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, v := range s.Values {
			if finite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if c.Threshold != nil && finite(*c.Threshold) {
		lo, hi = min(lo, *c.Threshold), max(hi, *c.Threshold)
	}
	if n == 0 || math.IsInf(lo, 1) {
		b.WriteString(`<p>no data</p>`)
		return
	}
	if hi == lo {
		lo, hi = lo-1, hi+1
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	sx := func(i int) float64 {
		if n == 1 {
			return (left + w - right) / 2
		}
		return left + float64(i)/float64(n-1)*(w-left-right)
	}
	sy := func(v float64) float64 { return h - bottom - (v-lo)/(hi-lo)*(h-top-bottom) }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart line" width="%g" height="%g" viewBox="0 0 %g %g">`, w, h, w, h)
	axes(b, left, top, w-right, h-bottom)
	if c.Threshold != nil && finite(*c.Threshold) {
		y := sy(*c.Threshold)
		fmt.Fprintf(b, `<line class="threshold" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 3"/>`, left, y, w-right, y, alertColour)
	}
	for i, s := range c.Series {
		// A missing value breaks the line: one <polyline> per finite run.
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(b, `<polyline class="series" points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, strings.Join(pts, " "), colour(i))
			}
			pts = pts[:0]
		}
		for j := 0; j < n && j < len(s.Values); j++ {
			v := s.Values[j]
			if !finite(v) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(j), sy(v)))
			r, col := 1.8, colour(i)
			if slices.Contains(c.Marks, j) {
				r, col = 3.5, alertColour
			}
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>`, sx(j), sy(v), r, col)
		}
		flush()
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`,
		left-3, top+8, esc(num(hi-pad)), left-3, h-bottom, esc(num(lo+pad)))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`, left, h-8, esc(c.Labels[0]))
	if n > 1 {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, w-right, h-8, esc(c.Labels[n-1]))
	}
	legend(b, c.Series, w-right-90, top)
	b.WriteString(`</svg>`)
}

// Shares turns counts into shares of their total (all zero when the total is
// zero), for histograms of samples of different sizes.
func Shares(counts []int64) []float64 {
	var total int64
	for _, c := range counts {
		total += c
	}
	out := make([]float64, len(counts))
	if total == 0 {
		return out
	}
	for i, c := range counts {
		out[i] = float64(c) / float64(total)
	}
	return out
}

// Bin counts the finite values of xs in the bins of edges (the last bin
// includes its upper edge; values outside the edges are not counted).
func Bin(xs []float64, edges []float64) []int64 {
	n := len(edges) - 1
	if n < 1 {
		return nil
	}
	counts := make([]int64, n)
	for _, x := range xs {
		if !finite(x) || x < edges[0] || x > edges[n] {
			continue
		}
		i, found := slices.BinarySearch(edges, x)
		if !found {
			i--
		}
		counts[min(max(i, 0), n-1)]++
	}
	return counts
}

// Edges returns bins equal-width bins spanning the finite values of every
// sample (one bin around the value when they are all equal; nil when there is
// no finite value).
func Edges(bins int, samples ...[]float64) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range samples {
		for _, x := range s {
			if finite(x) {
				lo, hi = min(lo, x), max(hi, x)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return nil
	}
	return profile.HistogramEdges(lo, hi, bins)
}
