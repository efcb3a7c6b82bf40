package model

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
	"github.com/atrium-ml/atrium/internal/monitoring/report"
)

// WriteText writes the report as the CLI's text: a header, one line per
// feature, the predictions and the realized metrics.
func WriteText(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "model %s version %s, window %s %s\n", r.Model, r.Version, r.Window.Duration, describe(r.Window))
	if r.Reference != nil {
		fmt.Fprintf(tw, "reference: %s (%d training rows)\n", r.Reference.Path, r.Reference.Rows)
	}
	fmt.Fprintf(tw, "volume: %d rows logged, %.0f served (previous window %.0f%s)\n", r.Volume.Rows, r.Volume.Estimated, r.Volume.Previous, change(r.Volume.Change))
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note: %s\n", n)
	}
	if len(r.Features) > 0 {
		fmt.Fprintf(tw, "drift: %d of %d features drifted (%.0f%%), dataset drift: %v\n\n", r.DriftedCount, r.Tested, 100*r.DriftedShare, r.DatasetDrift)
		fmt.Fprintln(tw, "FEATURE\tKIND\tMETHOD\tSCORE\tTHRESHOLD\tDRIFT\tVS PREVIOUS\tMISSING\tMISSING REF")
		for _, f := range r.Features {
			if f.Drift == nil {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t%s\t%s\t(%s)\n", f.Name, f.Kind, pct(f.Missing.Current), pct(f.Missing.Reference), f.Error)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, f.Drift.Method, num(f.Drift.Score), f.Drift.Threshold,
				yes(f.Drift.Drift), verdict(f.Previous), pct(f.Missing.Current), pct(f.Missing.Reference))
		}
	}
	if p := r.Prediction; p != nil {
		fmt.Fprintln(tw)
		if p.Drift != nil {
			fmt.Fprintf(tw, "predictions: mean %s (training %s), %s %s (threshold %g): drift %s; vs previous window: %s\n",
				num(p.Mean), num(p.ReferenceMean), p.Drift.Method, num(p.Drift.Score), p.Drift.Threshold, yes(p.Drift.Drift), verdict(p.Previous))
		} else {
			fmt.Fprintf(tw, "predictions: %s\n", p.Error)
		}
	}
	if p := r.Performance; p != nil {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "labels: %d of %d predictions labeled, %d duplicates, %d unmatched %s\n", p.Labeled, p.Predictions, p.Duplicates, p.Unmatched, strings.Join(p.UnmatchedExample, "; "))
		if p.Message != "" {
			fmt.Fprintln(tw, p.Message)
		}
		if len(p.Metrics) > 0 {
			fmt.Fprintln(tw, "METRIC\tREALIZED\tTEST\tROWS")
			for _, m := range p.Metrics {
				test := "-"
				if m.Test != nil {
					test = num(*m.Test)
				}
				val := num(m.Value)
				if m.Error != "" {
					val = "(" + m.Error + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", m.Name, val, test, m.Rows)
			}
		}
	}
	return tw.Flush()
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

func yes(b bool) string {
	if b {
		return "DRIFT"
	}
	return "no"
}

func verdict(r *drift.ColumnResult) string {
	if r == nil {
		return "-"
	}
	return yes(r.Drift) + " (" + num(r.Score) + ")"
}

func change(c *float64) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf(", x%.2f", *c)
}

// HTML is the report as a page of internal/monitoring/report: headline
// figures, drift scores ranked, reference and current histograms per
// feature and of the predictions, and realized metrics next to test ones.
func HTML(r *Report, generated time.Time) *report.Report {
	page := &report.Report{
		Title:     fmt.Sprintf("Model %s version %s", r.Model, r.Version),
		Subtitle:  fmt.Sprintf("window %s %s against the training reference and the previous window", r.Window.Duration, describe(r.Window)),
		Generated: generated,
		Summary: []report.Fact{
			{Label: "rows (served)", Value: fmt.Sprintf("%d (%.0f)", r.Volume.Rows, r.Volume.Estimated)},
			{Label: "vs previous window", Value: strings.TrimPrefix(change(r.Volume.Change), ", ")},
			{Label: "drifted features", Value: fmt.Sprintf("%d of %d", r.DriftedCount, r.Tested), Status: status(r.DriftedCount > 0, r.DatasetDrift)},
			{Label: "missing values", Value: pct(r.MissingShare)},
		},
	}
	if r.Prediction != nil && r.Prediction.Drift != nil {
		page.Summary = append(page.Summary, report.Fact{Label: "prediction drift", Value: num(r.Prediction.Drift.Score), Status: status(false, r.Prediction.Drift.Drift)})
	}
	if len(r.Notes) > 0 {
		page.Sections = append(page.Sections, report.Section{Title: "Notes", Status: report.Warn, Text: strings.Join(r.Notes, "\n")})
	}
	if len(r.Features) > 0 {
		page.Sections = append(page.Sections, driftSection(r))
	}
	if p := r.Prediction; p != nil {
		s := report.Section{Title: "Predictions", Text: p.Error}
		if p.Drift != nil {
			s.Status = status(false, p.Drift.Drift)
			s.Text = fmt.Sprintf("mean %s, training mean %s; %s %s (threshold %g)", num(p.Mean), num(p.ReferenceMean), p.Drift.Method, num(p.Drift.Score), p.Drift.Threshold)
			if c := histogram("predictions", p.column, p.current, nil); c != nil {
				s.Charts = append(s.Charts, *c)
			}
		}
		page.Sections = append(page.Sections, s)
	}
	if p := r.Performance; p != nil {
		page.Sections = append(page.Sections, performanceSection(p))
	}
	return page
}

func status(warn, alert bool) report.Status {
	switch {
	case alert:
		return report.Alert
	case warn:
		return report.Warn
	}
	return report.OK
}

func driftSection(r *Report) report.Section {
	s := report.Section{Title: "Feature drift", Status: status(r.DriftedCount > 0, r.DatasetDrift),
		Text: fmt.Sprintf("%d of %d features drift against the training reference (dataset drift when at least %.0f%% do).", r.DriftedCount, r.Tested, 100*r.DriftShare)}
	// Scores ranked by how far past (or close to) their threshold they are.
	ranked := slices.Clone(r.Features)
	ranked = slices.DeleteFunc(ranked, func(f Feature) bool { return f.Drift == nil })
	slices.SortStableFunc(ranked, func(a, b Feature) int { return cmp.Compare(severity(b.Drift), severity(a.Drift)) })
	bars := report.Chart{Title: "drift score / threshold", Kind: report.Bars, Series: []report.Series{{Name: "score / threshold"}}}
	one := 1.0
	bars.Threshold = &one
	for i, f := range ranked {
		bars.Labels = append(bars.Labels, f.Name+" ("+string(f.Drift.Method)+")")
		bars.Series[0].Values = append(bars.Series[0].Values, severity(f.Drift))
		if f.Drift.Drift {
			bars.Marks = append(bars.Marks, i)
		}
	}
	if len(ranked) > 0 {
		s.Charts = append(s.Charts, bars)
	}
	t := report.Table{Columns: []string{"feature", "kind", "method", "score", "threshold", "drift", "vs previous window", "missing", "missing (training)"}}
	for _, f := range r.Features {
		row := []string{f.Name, f.Kind, "-", "-", "-", f.Error, "-", pct(f.Missing.Current), pct(f.Missing.Reference)}
		st := report.Warn
		if f.Drift != nil {
			row[2], row[3], row[4], row[5], row[6] = string(f.Drift.Method), num(f.Drift.Score), num(f.Drift.Threshold), yes(f.Drift.Drift), verdict(f.Previous)
			st = status(false, f.Drift.Drift)
		}
		t.Rows = append(t.Rows, row)
		t.RowStatus = append(t.RowStatus, st)
	}
	s.Tables = append(s.Tables, t)
	for _, f := range ranked {
		if c := histogram(f.Name, f.column, f.current, f.currentCat); c != nil {
			s.Charts = append(s.Charts, *c)
		}
	}
	return s
}

// severity is a score relative to its threshold, larger when closer to
// drifting: score/threshold for distances, threshold/score for p-values.
func severity(r *drift.ColumnResult) float64 {
	if r.Method.IsPValue() {
		if r.Score <= 0 {
			return 100
		}
		return min(r.Threshold/r.Score, 100)
	}
	if r.Threshold <= 0 {
		return 0
	}
	return r.Score / r.Threshold
}

// histogram draws a column's reference sample against the current values
// (shares, so that samples of different sizes compare).
func histogram(name string, ref *profile.Column, cur []float64, curCat []string) *report.Chart {
	if ref == nil {
		return nil
	}
	if ref.Kind == profile.Categorical {
		counts := map[string][2]int64{}
		for _, v := range ref.SampleString {
			c := counts[v]
			c[0]++
			counts[v] = c
		}
		for _, v := range curCat {
			if v != "" {
				c := counts[v]
				c[1]++
				counts[v] = c
			}
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(counts[b][0], counts[a][0]) })
		if len(keys) > 20 {
			keys = keys[:20]
		}
		rc, cc := make([]int64, len(keys)), make([]int64, len(keys))
		for i, k := range keys {
			rc[i], cc[i] = counts[k][0], counts[k][1]
		}
		return &report.Chart{Title: name, Kind: report.Bars, Labels: keys,
			Series: []report.Series{{Name: "training", Values: report.Shares(rc)}, {Name: "current", Values: report.Shares(cc)}}}
	}
	edges := report.Edges(30, ref.SampleFloat, cur)
	if edges == nil {
		return nil
	}
	return &report.Chart{Title: name, Kind: report.Histogram, Edges: edges,
		Series: []report.Series{{Name: "training", Values: report.Shares(report.Bin(ref.SampleFloat, edges))}, {Name: "current", Values: report.Shares(report.Bin(cur, edges))}}}
}

func performanceSection(p *Performance) report.Section {
	s := report.Section{Title: "Realized performance",
		Text: fmt.Sprintf("%d of %d predictions labeled, %d duplicate labels, %d unmatched labels. %s", p.Labeled, p.Predictions, p.Duplicates, p.Unmatched, p.Message)}
	if p.Unmatched > 0 {
		s.Status = report.Warn
		s.Text += " Unmatched: " + strings.Join(p.UnmatchedExample, "; ")
	}
	if len(p.Metrics) == 0 {
		return s
	}
	t := report.Table{Columns: []string{"metric", "realized", "test", "labeled rows"}}
	chart := report.Chart{Title: "realized vs test", Kind: report.Bars, Series: []report.Series{{Name: "realized"}, {Name: "test"}}}
	for _, m := range p.Metrics {
		test, tv := "-", 0.0
		if m.Test != nil {
			test, tv = num(*m.Test), *m.Test
		}
		val := num(m.Value)
		if m.Error != "" {
			val = m.Error
		}
		t.Rows = append(t.Rows, []string{m.Name, val, test, strconv.Itoa(m.Rows)})
		chart.Labels = append(chart.Labels, m.Name)
		chart.Series[0].Values = append(chart.Series[0].Values, m.Value)
		chart.Series[1].Values = append(chart.Series[1].Values, tv)
	}
	s.Tables = append(s.Tables, t)
	s.Charts = append(s.Charts, chart)
	return s
}
