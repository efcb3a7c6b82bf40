package datadrift

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/monitoring/drift"
	"github.com/atrium-ml/atrium/internal/monitoring/report"
)

// Strength puts scores of every method on one scale for ranking: 1 at the
// threshold, above 1 drifted (score/threshold for distances,
// threshold/score for p-values, capped at 100 for p = 0).
func Strength(c drift.ColumnResult) float64 {
	if c.Method.IsPValue() {
		if c.Score <= c.Threshold/100 {
			return 100
		}
		return c.Threshold / c.Score
	}
	if c.Threshold <= 0 {
		return 0
	}
	return c.Score / c.Threshold
}

// DriftSection is the ranked drift table and chart shared by the reports:
// columns by Strength, drifted ones marked.
func DriftSection(title string, cols []drift.ColumnResult) report.Section {
	ranked := slices.Clone(cols)
	slices.SortStableFunc(ranked, func(a, b drift.ColumnResult) int { return cmp.Compare(Strength(b), Strength(a)) })
	one := 1.0
	chart := report.Chart{Title: "score relative to its threshold (≥ 1: drift)", Kind: report.Bars, Threshold: &one,
		Series: []report.Series{{}}}
	table := report.Table{Columns: []string{"column", "type", "method", "score", "threshold", "drift"}}
	sec := report.Section{Title: title, Status: report.OK}
	for i, c := range ranked {
		chart.Labels = append(chart.Labels, c.Column)
		chart.Series[0].Values = append(chart.Series[0].Values, Strength(c))
		verdict, st := "no", report.Status("")
		if c.Drift {
			verdict, st = "DRIFT", report.Alert
			chart.Marks = append(chart.Marks, i)
			sec.Status = report.Alert
		}
		table.Rows = append(table.Rows, []string{c.Column, c.Type, string(c.Method), fmt.Sprintf("%.4g", c.Score), fmt.Sprintf("%g", c.Threshold), verdict})
		table.RowStatus = append(table.RowStatus, st)
	}
	sec.Charts = []report.Chart{chart}
	sec.Tables = []report.Table{table}
	return sec
}

// DistributionChart draws a numeric column's reference and current
// distributions as shares over common bins, or a categorical column's top
// categories (by reference then current count).
func DistributionChart(title string, refNum, curNum []float64, refCat, curCat []string) report.Chart {
	if refNum != nil {
		edges := report.Edges(40, refNum, curNum)
		return report.Chart{Title: title, Kind: report.Histogram, Edges: edges, Series: []report.Series{
			{Name: "reference", Values: report.Shares(report.Bin(refNum, edges))},
			{Name: "current", Values: report.Shares(report.Bin(curNum, edges))},
		}}
	}
	return categoryChart(title, counts(refCat), counts(curCat))
}

// categoryChart is DistributionChart for a categorical column given as value
// counts.
func categoryChart(title string, rc, cc map[string]int64) report.Chart {
	keys := make([]string, 0, len(rc)+len(cc))
	for k := range rc {
		keys = append(keys, k)
	}
	for k := range cc {
		if _, ok := rc[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(rc[b], rc[a]), cmp.Compare(cc[b], cc[a]), cmp.Compare(a, b))
	})
	if len(keys) > 20 {
		keys = keys[:20]
	}
	rt, ct := total(rc), total(cc)
	ch := report.Chart{Title: title, Kind: report.Bars, Labels: keys, Series: []report.Series{{Name: "reference"}, {Name: "current"}}}
	for _, k := range keys {
		ch.Series[0].Values = append(ch.Series[0].Values, share(rc[k], rt))
		ch.Series[1].Values = append(ch.Series[1].Values, share(cc[k], ct))
	}
	return ch
}

func counts(xs []string) map[string]int64 {
	m := map[string]int64{}
	for _, x := range xs {
		if x != "" {
			m[x]++
		}
	}
	return m
}

func total(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

func share(n, t int64) float64 {
	if t == 0 {
		return 0
	}
	return float64(n) / float64(t)
}

// Report builds the HTML report: the summary, the ranked scores, and, when
// Run kept them (Options.Distributions), each column's reference and current
// distributions, drifted columns first.
func (r *Result) Report(now time.Time) *report.Report {
	st := report.OK
	if r.DatasetDrift {
		st = report.Alert
	}
	rep := &report.Report{
		Title:     "Data drift",
		Subtitle:  fmt.Sprintf("reference %s (%d rows) vs current %s (%d rows)", r.Reference, r.ReferenceRows, r.Current, r.CurrentRows),
		Generated: now,
		Summary: []report.Fact{
			{Label: "drifted columns", Value: fmt.Sprintf("%d of %d", r.DriftedCount, len(r.Columns)), Status: st},
			{Label: fmt.Sprintf("dataset drift (share ≥ %g)", r.DriftShare), Value: yesNo(r.DatasetDrift), Status: st},
		},
		Sections: []report.Section{DriftSection("Drift by column", r.Columns)},
	}
	if r.charts != nil {
		dist := report.Section{Title: "Distributions", Text: "Shares of non-missing values per bin (numeric) or category (top 20), reference and current."}
		ranked := slices.Clone(r.Columns)
		slices.SortStableFunc(ranked, func(a, b drift.ColumnResult) int { return cmp.Compare(Strength(b), Strength(a)) })
		for _, c := range ranked {
			dist.Charts = append(dist.Charts, r.charts[c.Column])
		}
		rep.Sections = append(rep.Sections, dist)
	}
	if len(r.Skipped) > 0 {
		t := report.Table{Columns: []string{"column", "reason"}}
		for _, s := range r.Skipped {
			t.Rows = append(t.Rows, []string{s.Column, s.Reason})
		}
		rep.Sections = append(rep.Sections, report.Section{Title: "Columns not tested", Tables: []report.Table{t}})
	}
	return rep
}

// chartTitle names a column's distribution chart after its verdict.
func chartTitle(c drift.ColumnResult) string {
	title := fmt.Sprintf("%s: %s %.4g", c.Column, c.Method, c.Score)
	if c.Drift {
		title += " (drift)"
	}
	return title
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
