// Package report renders monitoring results as one self-contained HTML file:
// sections of charts (inline SVG, drawn here) and tables, with no script, no
// stylesheet or font from elsewhere, so the file opens offline in any
// browser and can be mailed or attached to a ticket as it is.
//
// The package knows nothing of drift or profiles: callers (atrium monitor
// features, drift, model) fill a Report with Sections, each holding Charts
// and Tables, and call Render. Every text is escaped; non-finite values are
// left out of charts (a gap in a line, no bar).
package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"
)

// Status flags a section, a table row or a chart point.
type Status string

// Statuses. The zero value is neutral.
const (
	OK    Status = "ok"
	Warn  Status = "warn"
	Alert Status = "alert"
)

// Report is one HTML page.
type Report struct {
	Title string
	// Subtitle is one line under the title (what was compared, the window).
	Subtitle string
	// Generated is shown in the footer (zero: not shown).
	Generated time.Time
	// Summary is a row of headline figures (e.g. "drifted columns: 3 of 50").
	Summary  []Fact
	Sections []Section
}

// Fact is a headline figure.
type Fact struct {
	Label, Value string
	Status       Status
}

// Section is a titled part of the page: text, then charts (in a grid), then
// tables.
type Section struct {
	Title  string
	Status Status
	Text   string
	Charts []Chart
	Tables []Table
}

// Table is a plain table; RowStatus (optional, same length as Rows) colours
// whole rows.
type Table struct {
	Caption   string
	Columns   []string
	Rows      [][]string
	RowStatus []Status
}

// Chart kinds.
const (
	// Histogram: Edges (n+1) and Series of n values each, drawn as
	// overlapping translucent bars (reference and current distributions).
	Histogram = "histogram"
	// Bars: Labels and Series of len(Labels) values each, drawn as
	// horizontal grouped bars (drift scores ranked, category shares), with
	// Threshold as a vertical line when set.
	Bars = "bars"
	// Line: Labels along x (days) and Series of len(Labels) values, with
	// Marks highlighting points (days that drifted) and Threshold as a
	// horizontal line when set.
	Line = "line"
)

// Chart is one plot.
type Chart struct {
	Title string
	Kind  string
	// Edges are a histogram's bin edges.
	Edges []float64
	// Labels are the categories of bars or the x values of a line.
	Labels []string
	Series []Series
	// Threshold, when not nil, is drawn as a reference line.
	Threshold *float64
	// Marks are indices into Labels (a line's points, bars' rows) drawn as
	// alerts.
	Marks []int
}

// Series is one named list of values.
type Series struct {
	Name   string
	Values []float64
}

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"svg": func(c Chart) template.HTML { return template.HTML(renderChart(c)) },
	"rowStatus": func(t Table, i int) Status {
		if i < len(t.RowStatus) {
			return t.RowStatus[i]
		}
		return ""
	},
	"when": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}).Parse(pageTemplate))

// Render writes the report as one HTML document.
func Render(w io.Writer, r *Report) error {
	if err := page.Execute(w, r); err != nil {
		return fmt.Errorf("render report %q: %w", r.Title, err)
	}
	return nil
}
