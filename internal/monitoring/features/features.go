// Package features reports a feature set's quality over time from the
// profiles `atrium run` stores for each published partition
// (internal/data/profile/profiledb): per day and feature the volume, missing
// share, mean and quantiles, and whether the day drifts from a reference
// window, tested with internal/monitoring/drift on the profiles' samples
// (Evidently's default test selection and thresholds, the samples standing
// in for the data).
//
// The reference of a day is either the previous N days that have rows
// (Reference.Previous) or a fixed range of days (Reference.Start..End). Its
// sample is the reference days' samples pooled in proportion to each day's
// count of values, up to profile.DefaultSampleSize values, so that a busy day
// weighs more than a quiet one, as it would in the pooled data.
//
// A day drifts when at least half of its features drift (Evidently's dataset
// drift); its drifted features are listed either way. A day without rows, or
// whose volume is under half or over twice the reference's mean, is flagged
// for volume.
package features

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/data/profile/profiledb"
	"github.com/atrium-ml/atrium/internal/monitoring/datadrift"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// Reference is the window a day is compared with: the Previous days before
// it (with rows), or the fixed days Start..End (UTC dates, both included).
type Reference struct {
	Previous   int
	Start, End time.Time
}

// String describes the reference ("previous 7 days", "2026-11-01..2026-11-07").
func (r Reference) String() string {
	if r.Previous > 0 {
		return fmt.Sprintf("previous %d days", r.Previous)
	}
	return r.Start.Format(time.DateOnly) + ".." + r.End.Format(time.DateOnly)
}

// Options is one report.
type Options struct {
	Set string
	// Since and Until bound the days reported (UTC dates, both included).
	Since, Until time.Time
	Reference    Reference
	// Overrides set a feature's drift method or threshold.
	Overrides map[string]drift.Options
}

// Volume flag bounds: a day's rows against the reference days' mean.
const (
	VolumeLow  = 0.5
	VolumeHigh = 2.0
)

// Report is the trend of a set.
type Report struct {
	Set       string   `json:"set"`
	Since     string   `json:"since"`
	Until     string   `json:"until"`
	Reference string   `json:"reference"`
	Features  []string `json:"features"`
	Days      []Day    `json:"days"`
	// DriftedDays and VolumeDays list the flagged days.
	DriftedDays []string `json:"drifted_days"`
	VolumeDays  []string `json:"volume_days"`

	// refSamples are the reference samples of the last day, by feature, for
	// the HTML report's histograms.
	lastRef map[string]sample
}

// Day is one partition.
type Day struct {
	Date  string `json:"date"`
	RunID string `json:"run_id"`
	Rows  int64  `json:"rows"`
	// ReferenceDays are the days compared with (empty: no reference, e.g.
	// the first days of the set with a previous-days reference).
	ReferenceDays []string `json:"reference_days"`
	// VolumeRatio is Rows over the reference days' mean rows (0 without a
	// reference); Volume flags it outside [VolumeLow, VolumeHigh] or when
	// the day has no rows.
	VolumeRatio  float64 `json:"volume_ratio"`
	Volume       bool    `json:"volume_flag"`
	DriftedShare float64 `json:"drifted_share"`
	Drift        bool    `json:"drift"`
	// Drifted names the drifted features.
	Drifted  []string     `json:"drifted"`
	Features []FeatureDay `json:"features"`
	// Note explains a day without a verdict.
	Note string `json:"note,omitempty"`
}

// FeatureDay is one feature on one day.
type FeatureDay struct {
	Feature      string             `json:"feature"`
	Kind         string             `json:"kind"`
	Count        int64              `json:"count"`
	Missing      int64              `json:"missing"`
	MissingShare float64            `json:"missing_share"`
	Mean         float64            `json:"mean"`
	Std          float64            `json:"std"`
	Min          float64            `json:"min"`
	Max          float64            `json:"max"`
	Quantiles    []profile.Quantile `json:"quantiles,omitempty"`
	Distinct     int64              `json:"distinct"`
	// Drift is the test against the reference (nil: not tested, see Note).
	Drift *drift.ColumnResult `json:"drift,omitempty"`
	Note  string              `json:"note,omitempty"`

	sample sample
}

type sample struct {
	num []float64
	cat []string
}

// ErrInput: the options do not fit (empty window, reference without data).
var ErrInput = errors.New("bad feature monitor request")

// Build reads the profiles and computes the report.
func Build(ctx context.Context, db *meta.DB, o Options) (*Report, error) {
	if o.Until.Before(o.Since) {
		return nil, fmt.Errorf("%w: until %s is before since %s", ErrInput, day(o.Until), day(o.Since))
	}
	from := o.Since
	ref := o.Reference
	switch {
	case ref.Previous > 0:
		from = o.Since.AddDate(0, 0, -ref.Previous)
	case !ref.Start.IsZero() && !ref.End.Before(ref.Start):
		from = minTime(from, ref.Start)
	default:
		return nil, fmt.Errorf("%w: reference: want previous:N with N > 0 or START..END", ErrInput)
	}
	to := o.Until
	if ref.Previous == 0 && ref.End.After(to) {
		to = ref.End
	}
	entries, err := profiledb.List(ctx, db, o.Set, day(from), day(to))
	if err != nil {
		return nil, err
	}
	rep := &Report{Set: o.Set, Since: day(o.Since), Until: day(o.Until), Reference: ref.String(), DriftedDays: []string{}, VolumeDays: []string{}}
	for _, e := range entries {
		for _, c := range e.Profile.Columns {
			if !slices.Contains(rep.Features, c.Name) {
				rep.Features = append(rep.Features, c.Name)
			}
		}
	}
	var fixed []profiledb.Entry
	if ref.Previous == 0 {
		for _, e := range entries {
			if e.Date >= day(ref.Start) && e.Date <= day(ref.End) && e.Profile.Rows > 0 {
				fixed = append(fixed, e)
			}
		}
		if len(fixed) == 0 {
			return nil, fmt.Errorf("%w: the reference %s has no profiled rows of %s", ErrInput, ref, o.Set)
		}
	}
	for i, e := range entries {
		if e.Date < rep.Since || e.Date > rep.Until {
			continue
		}
		refs := fixed
		if ref.Previous > 0 {
			lo := day(mustDate(e.Date).AddDate(0, 0, -ref.Previous))
			refs = nil
			for _, r := range entries[:i] {
				if r.Date >= lo && r.Profile.Rows > 0 {
					refs = append(refs, r)
				}
			}
		}
		d := compareDay(e, refs, rep.Features, o.Overrides)
		if d.Drift {
			rep.DriftedDays = append(rep.DriftedDays, d.Date)
		}
		if d.Volume {
			rep.VolumeDays = append(rep.VolumeDays, d.Date)
		}
		rep.Days = append(rep.Days, d)
		if len(refs) > 0 {
			rep.lastRef = pooled(refs, rep.Features)
		}
	}
	if len(rep.Days) == 0 {
		return nil, fmt.Errorf("%w: %s has no profiled partition from %s to %s", profiledb.ErrNone, o.Set, rep.Since, rep.Until)
	}
	return rep, nil
}

func compareDay(e profiledb.Entry, refs []profiledb.Entry, features []string, overrides map[string]drift.Options) Day {
	d := Day{Date: e.Date, RunID: e.RunID, Rows: e.Profile.Rows, ReferenceDays: []string{}, Drifted: []string{}}
	for _, r := range refs {
		d.ReferenceDays = append(d.ReferenceDays, r.Date)
	}
	var refRows int64
	for _, r := range refs {
		refRows += r.Profile.Rows
	}
	if len(refs) > 0 {
		d.VolumeRatio = float64(d.Rows) / (float64(refRows) / float64(len(refs)))
		d.Volume = d.VolumeRatio < VolumeLow || d.VolumeRatio > VolumeHigh
	}
	if d.Rows == 0 {
		d.Volume, d.Note = true, "no rows"
	}
	ref := pooled(refs, features)
	tested := 0
	for _, name := range features {
		c, ok := e.Profile.Column(name)
		if !ok {
			d.Features = append(d.Features, FeatureDay{Feature: name, Note: "not in this day's profile"})
			continue
		}
		f := FeatureDay{Feature: name, Kind: c.Kind, Count: c.Count, Missing: c.Missing, Mean: c.Mean, Std: c.Std, Min: c.Min, Max: c.Max,
			Quantiles: c.Quantiles, Distinct: c.Distinct, sample: sample{c.SampleFloat, c.SampleString}}
		if c.Count+c.Missing > 0 {
			f.MissingShare = float64(c.Missing) / float64(c.Count+c.Missing)
		}
		switch {
		case len(refs) == 0:
			f.Note = "no reference days"
		case c.Count == 0:
			f.Note = "no values"
		default:
			r := ref[name]
			var res drift.ColumnResult
			var err error
			if c.Kind == profile.Numeric {
				res, err = drift.CompareNumeric(name, r.num, c.SampleFloat, overrides[name])
			} else {
				res, err = drift.CompareCategorical(name, r.cat, c.SampleString, overrides[name])
			}
			if err != nil {
				f.Note = err.Error()
				break
			}
			f.Drift = &res
			tested++
			if res.Drift {
				d.Drifted = append(d.Drifted, name)
			}
		}
		d.Features = append(d.Features, f)
	}
	if tested > 0 {
		d.DriftedShare = float64(len(d.Drifted)) / float64(tested)
		d.Drift = d.DriftedShare >= drift.DefaultDriftShare
	} else if d.Note == "" {
		d.Note = "no reference days"
		if len(refs) > 0 {
			d.Note = "no feature could be tested"
		}
	}
	return d
}

// pooled draws each feature's reference sample from the days' samples, a
// share of profile.DefaultSampleSize proportional to each day's count of
// values (all of a day's sample at most), in a fixed pseudo-random order so
// that the same profiles give the same reference.
func pooled(refs []profiledb.Entry, features []string) map[string]sample {
	out := make(map[string]sample, len(features))
	for _, name := range features {
		var total int64
		for _, r := range refs {
			if c, ok := r.Profile.Column(name); ok {
				total += c.Count
			}
		}
		var s sample
		for _, r := range refs {
			c, ok := r.Profile.Column(name)
			if !ok || c.Count == 0 {
				continue
			}
			k := int(math.Round(float64(profile.DefaultSampleSize) * float64(c.Count) / float64(total)))
			s.num = append(s.num, take(c.SampleFloat, k, r.Date)...)
			s.cat = append(s.cat, take(c.SampleString, k, r.Date)...)
		}
		out[name] = s
	}
	return out
}

func take[T any](xs []T, k int, seed string) []T {
	if k >= len(xs) {
		return xs
	}
	var h uint64 = 14695981039346656037 // FNV-1a of the date: a fixed seed per day
	for i := 0; i < len(seed); i++ {
		h = (h ^ uint64(seed[i])) * 1099511628211
	}
	c := slices.Clone(xs)
	rand.New(rand.NewPCG(h, 7)).Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	return c[:k]
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func mustDate(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ranked orders the features of a day by drift strength (untested last).
func ranked(d Day) []FeatureDay {
	fs := slices.Clone(d.Features)
	slices.SortStableFunc(fs, func(a, b FeatureDay) int { return cmp.Compare(strength(b), strength(a)) })
	return fs
}

func strength(f FeatureDay) float64 {
	if f.Drift == nil {
		return -1
	}
	return datadrift.Strength(*f.Drift)
}
