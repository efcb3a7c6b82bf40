package features

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/atrium-ml/atrium/internal/monitoring/datadrift"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
	"github.com/atrium-ml/atrium/internal/monitoring/report"
)

// WriteText prints the days (one line each, flags first) and, per feature,
// its trend.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "feature set %s, %s to %s, reference: %s\n\n", r.Set, r.Since, r.Until, r.Reference)
	fmt.Fprintln(tw, "DATE\tROWS\tVOLUME\tDRIFTED\tFLAGS\tDRIFTED FEATURES")
	for _, d := range r.Days {
		var flags []string
		if d.Drift {
			flags = append(flags, "DRIFT")
		}
		if d.Volume {
			flags = append(flags, "VOLUME")
		}
		vol := "-"
		if len(d.ReferenceDays) > 0 {
			vol = fmt.Sprintf("%.2fx", d.VolumeRatio)
		}
		drifted := strings.Join(d.Drifted, ", ")
		if d.Note != "" {
			drifted = strings.TrimSpace(drifted + " (" + d.Note + ")")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f%%\t%s\t%s\n", d.Date, d.Rows, vol, 100*d.DriftedShare, strings.Join(flags, " "), drifted)
	}
	for _, name := range r.Features {
		fmt.Fprintf(tw, "\n%s\nDATE\tCOUNT\tMISSING\tMEAN\tP05\tP50\tP95\tDRIFT TEST\tSCORE\t\n", name)
		for _, d := range r.Days {
			f, ok := feature(d, name)
			if !ok {
				continue
			}
			test, score := "-", f.Note
			if f.Drift != nil {
				test = string(f.Drift.Method)
				score = fmt.Sprintf("%.4g", f.Drift.Score)
				if f.Drift.Drift {
					score += " DRIFT"
				}
			}
			fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Date, f.Count, 100*f.MissingShare,
				numeric(f, f.Mean), q(f, 0.05), q(f, 0.5), q(f, 0.95), test, score)
		}
	}
	return tw.Flush()
}

func feature(d Day, name string) (FeatureDay, bool) {
	for _, f := range d.Features {
		if f.Feature == name {
			return f, true
		}
	}
	return FeatureDay{}, false
}

func numeric(f FeatureDay, v float64) string {
	if f.Kind != "numeric" || f.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4g", v)
}

func q(f FeatureDay, level float64) string {
	for _, x := range f.Quantiles {
		if x.Q == level {
			return numeric(f, x.Value)
		}
	}
	return "-"
}

func qv(f FeatureDay, level float64) float64 {
	for _, x := range f.Quantiles {
		if x.Q == level {
			return x.Value
		}
	}
	return math.NaN()
}

// HTML builds the report page: flagged days, the volume trend, and per
// feature its trends (mean and 5-95% band, missing share, drift score) and
// the last day's distribution against its reference.
func (r *Report) HTML(now time.Time) *report.Report {
	labels := make([]string, len(r.Days))
	rows := make([]float64, len(r.Days))
	shares := make([]float64, len(r.Days))
	var driftMarks, volMarks []int
	days := report.Table{Columns: []string{"date", "rows", "volume vs reference", "drifted share", "flags", "drifted features"}}
	for i, d := range r.Days {
		labels[i], rows[i], shares[i] = d.Date, float64(d.Rows), d.DriftedShare
		var flags []string
		st := report.Status("")
		if d.Drift {
			flags, st = append(flags, "drift"), report.Alert
			driftMarks = append(driftMarks, i)
		}
		if d.Volume {
			flags = append(flags, "volume")
			volMarks = append(volMarks, i)
			if st == "" {
				st = report.Warn
			}
		}
		vol := "-"
		if len(d.ReferenceDays) > 0 {
			vol = fmt.Sprintf("%.2fx", d.VolumeRatio)
		}
		days.Rows = append(days.Rows, []string{d.Date, fmt.Sprint(d.Rows), vol, fmt.Sprintf("%.0f%%", 100*d.DriftedShare), strings.Join(flags, ", "), strings.Join(d.Drifted, ", ") + note(d.Note)})
		days.RowStatus = append(days.RowStatus, st)
	}
	st := report.OK
	if len(r.DriftedDays) > 0 {
		st = report.Alert
	} else if len(r.VolumeDays) > 0 {
		st = report.Warn
	}
	half := drift.DefaultDriftShare
	rep := &report.Report{
		Title:     "Feature set " + r.Set,
		Subtitle:  fmt.Sprintf("%s to %s; each day against the %s", r.Since, r.Until, r.Reference),
		Generated: now,
		Summary: []report.Fact{
			{Label: "days drifted", Value: fmt.Sprintf("%d of %d", len(r.DriftedDays), len(r.Days)), Status: st},
			{Label: "days flagged for volume", Value: fmt.Sprint(len(r.VolumeDays))},
			{Label: "features", Value: fmt.Sprint(len(r.Features))},
		},
		Sections: []report.Section{{Title: "Days", Status: st, Charts: []report.Chart{
			{Title: "rows per day", Kind: report.Line, Labels: labels, Marks: volMarks, Series: []report.Series{{Name: "rows", Values: rows}}},
			{Title: "share of features drifted", Kind: report.Line, Labels: labels, Marks: driftMarks, Threshold: &half, Series: []report.Series{{Name: "drifted", Values: shares}}},
		}, Tables: []report.Table{days}}},
	}
	last := r.Days[len(r.Days)-1]
	var lastCols []drift.ColumnResult
	for _, f := range ranked(last) {
		if f.Drift != nil {
			lastCols = append(lastCols, *f.Drift)
		}
	}
	if len(lastCols) > 0 {
		rep.Sections = append(rep.Sections, datadrift.DriftSection("Drift on "+last.Date+", by feature", lastCols))
	}
	for _, name := range r.Features {
		mean, p05, p95, miss, score := series(len(r.Days)), series(len(r.Days)), series(len(r.Days)), series(len(r.Days)), series(len(r.Days))
		var th *float64
		var marks []int
		kind := ""
		for i, d := range r.Days {
			f, ok := feature(d, name)
			if !ok {
				continue
			}
			kind = f.Kind
			if f.Count+f.Missing > 0 {
				miss[i] = f.MissingShare
			}
			if f.Kind == "numeric" && f.Count > 0 {
				mean[i], p05[i], p95[i] = f.Mean, qv(f, 0.05), qv(f, 0.95)
			}
			if f.Drift != nil {
				score[i] = f.Drift.Score
				t := f.Drift.Threshold
				th = &t
				if f.Drift.Drift {
					marks = append(marks, i)
				}
			}
		}
		sec := report.Section{Title: name}
		if len(marks) > 0 {
			sec.Status = report.Alert
			sec.Text = "Drifted on " + strings.Join(pick(labels, marks), ", ") + "."
		}
		if kind == "numeric" {
			sec.Charts = append(sec.Charts, report.Chart{Title: "mean and 5%-95% quantiles", Kind: report.Line, Labels: labels, Marks: marks,
				Series: []report.Series{{Name: "mean", Values: mean}, {Name: "p05", Values: p05}, {Name: "p95", Values: p95}}})
		}
		sec.Charts = append(sec.Charts,
			report.Chart{Title: "missing share", Kind: report.Line, Labels: labels, Series: []report.Series{{Name: "missing", Values: miss}}},
			report.Chart{Title: "drift score", Kind: report.Line, Labels: labels, Marks: marks, Threshold: th, Series: []report.Series{{Name: "score", Values: score}}})
		if f, ok := feature(last, name); ok && r.lastRef != nil {
			ref := r.lastRef[name]
			var rn, cn []float64
			if f.Kind == "numeric" {
				rn, cn = nonNil(ref.num), nonNil(f.sample.num)
			}
			sec.Charts = append(sec.Charts, datadrift.DistributionChart(last.Date+" vs reference (samples)", rn, cn, ref.cat, f.sample.cat))
		}
		rep.Sections = append(rep.Sections, sec)
	}
	return rep
}

func nonNil(x []float64) []float64 {
	if x == nil {
		return []float64{}
	}
	return x
}

func series(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

func pick(labels []string, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = labels[j]
	}
	return out
}

func note(n string) string {
	if n == "" {
		return ""
	}
	return " (" + n + ")"
}
