package model

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// Options configure a Monitor.
type Options struct {
	Registry  *registry.Store
	Tracking  *tracking.Store
	Artifacts artifact.Store
	// LogDir is the directory of the prediction log (the offline store's
	// directory: predictions/ under it).
	LogDir string
	// Labels, when set, give realized performance (see Performance).
	Labels LabelSource
	// MaxRows bounds the rows of a window read into memory (default
	// DefaultMaxRows): above it drift and performance are computed on whole
	// requests drawn at random (Report.Sample says so); volumes and version
	// counts are always exact.
	MaxRows int64
	Logger  *slog.Logger
}

// Monitor computes model reports. It is a prometheus.Collector of the last
// drift scores it computed per model, version and feature. Safe for
// concurrent use.
type Monitor struct {
	opts            Options
	featureDrift    *prometheus.GaugeVec
	predictionDrift *prometheus.GaugeVec
}

// New returns a Monitor.
func New(opts Options) *Monitor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = DefaultMaxRows
	}
	return &Monitor{
		opts: opts,
		featureDrift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atrium_feature_drift_score",
			Help: "Drift score of a model input between the version's training reference and the last monitored window (the method's score: a distance, or a p-value for ks, chisquare and z).",
		}, []string{"model", "version", "feature"}),
		predictionDrift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atrium_prediction_drift_score",
			Help: "Drift score of a model's predictions between the version's training reference and the last monitored window.",
		}, []string{"model", "version"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	m.featureDrift.Describe(ch)
	m.predictionDrift.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	m.featureDrift.Collect(ch)
	m.predictionDrift.Collect(ch)
}

// Request says what to report on.
type Request struct {
	Model string
	// Version to report on. Default: the version that scored the newest row
	// of the window (the one being served), or the newest registered one
	// when the window is empty.
	Version string
	// Window is the length of the current window, ending at Now. Required.
	Window time.Duration
	// Now ends the window. Default: time.Now().
	Now time.Time
	// Methods pins the drift test of some features (by name; the
	// prediction's under PredictionColumn).
	Methods map[string]drift.Options
}

// PredictionColumn names the predictions in Request.Methods.
const PredictionColumn = "prediction"

// Report is a model's monitor over one window: drift, missing values and
// volume against the version's training reference and against the previous
// window of the same length, and realized performance when labels arrived.
type Report struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	Window  Window `json:"window"`
	// Versions counts the window's rows by version (shadow rows excluded).
	Versions  []VersionRows     `json:"versions"`
	Reference *ReferenceSummary `json:"reference,omitempty"`
	Volume    Volume            `json:"volume"`
	// NoData: the window holds no prediction of the version; nothing below
	// is computed.
	NoData bool `json:"no_data"`
	// Sample is set when the window held more rows than the monitor reads
	// (Options.MaxRows): features, predictions and performance are then
	// computed on Sample.Rows whole-request rows of Sample.Of.
	Sample *SampleSize `json:"sample,omitempty"`
	// Notes say what could not be computed and why.
	Notes []string `json:"notes,omitempty"`
	// Features in the reference's column order.
	Features []Feature `json:"features"`
	// DriftedCount of the Tested features drift against the reference;
	// DatasetDrift when DriftedShare >= DriftShare (Evidently's rule).
	Tested       int     `json:"tested"`
	DriftedCount int     `json:"drifted_count"`
	DriftedShare float64 `json:"drifted_share"`
	DriftShare   float64 `json:"drift_share"`
	DatasetDrift bool    `json:"dataset_drift"`
	// MissingShare is the share of missing values over all features.
	MissingShare float64     `json:"missing_share"`
	Prediction   *Prediction `json:"prediction,omitempty"`
	// Performance is realized performance (nil without a label source).
	Performance *Performance `json:"performance,omitempty"`
}

// SampleSize is how many of a window's rows a report read.
type SampleSize struct {
	Rows int   `json:"rows"`
	Of   int64 `json:"of"`
}

// Window is [Start, End).
type Window struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration string    `json:"duration"`
}

// VersionRows is one version's share of the window.
type VersionRows struct {
	Version string `json:"version"`
	Rows    int    `json:"rows"`
}

// ReferenceSummary describes the training profile compared with.
type ReferenceSummary struct {
	Path  string    `json:"path"`
	Rows  int64     `json:"rows"`
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// Volume is the number of scored rows: logged, and estimated from the
// sampling rate (what was served); Previous is the previous window's
// estimate and Change the ratio of the two (absent when the previous window
// is empty).
type Volume struct {
	Rows      int      `json:"rows"`
	Estimated float64  `json:"estimated"`
	Previous  float64  `json:"previous"`
	Change    *float64 `json:"change,omitempty"`
}

// Feature is one model input's comparison.
type Feature struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Drift against the reference's sample; Previous against the previous
	// window (absent when it is empty).
	Drift    *drift.ColumnResult `json:"drift,omitempty"`
	Previous *drift.ColumnResult `json:"previous,omitempty"`
	// Error says why Drift is absent (no value in the window).
	Error   string  `json:"error,omitempty"`
	Missing Missing `json:"missing"`
	// Current and reference values, for plots: a numeric input's histogram
	// of both samples is drawn from these.
	current    []float64
	currentCat []string
	column     *profile.Column
}

// Missing shares of values.
type Missing struct {
	Current   float64  `json:"current"`
	Reference float64  `json:"reference"`
	Previous  *float64 `json:"previous,omitempty"`
}

// Prediction compares the predictions.
type Prediction struct {
	Drift    *drift.ColumnResult `json:"drift,omitempty"`
	Previous *drift.ColumnResult `json:"previous,omitempty"`
	Mean     float64             `json:"mean"`
	// ReferenceMean is the predictions' mean on the training data.
	ReferenceMean float64 `json:"reference_mean"`
	Error         string  `json:"error,omitempty"`
	current       []float64
	column        *profile.Column
}

// DefaultMaxRows bounds the rows of one window a report reads into memory
// (Options.MaxRows): atrium.yaml's monitoring.max_rows default.
const DefaultMaxRows = spec.DefaultMaxRows

// counts are a window's rows by version and route (predlog.Counts), none
// when no file covers the window.
func (m *Monitor) counts(ctx context.Context, model string, since, until time.Time) ([]predlog.VersionCount, error) {
	if m.opts.LogDir == "" {
		return nil, errNoLog
	}
	c, err := predlog.Counts(ctx, m.opts.LogDir, model, since, until)
	if errors.Is(err, predlog.ErrNoPredictions) {
		return nil, nil
	}
	return c, err
}

var errNoLog = errors.New("no prediction log: it lives in the embedded offline store's directory (stores.offline duckdb://)")

// read returns a window's rows of version (with its shadow rows when shadow
// is set), at most about Options.MaxRows of them, drawn by whole requests
// (predlog.Selection).
func (m *Monitor) read(ctx context.Context, model, version string, shadow bool, since, until time.Time) (*predlog.Sample, error) {
	if m.opts.LogDir == "" {
		return nil, errNoLog
	}
	s, err := predlog.ReadSample(ctx, m.opts.LogDir, model, since, until, predlog.Selection{Version: version, Shadow: shadow, MaxRows: m.opts.MaxRows})
	if errors.Is(err, predlog.ErrNoPredictions) {
		return &predlog.Sample{}, nil
	}
	return s, err
}

// served sums the counts of version (shadow rows only when shadow is set).
func served(counts []predlog.VersionCount, version string, shadow bool) (rows int64, estimated float64) {
	for _, c := range counts {
		if c.Version == version && (shadow || c.Route != predlog.RouteShadow) {
			rows += c.Rows
			estimated += c.Estimated
		}
	}
	return rows, estimated
}

// Compute builds the report of a request. A model or version that is not
// registered is ErrUnknownModel; a version without a training profile gives
// a report of volume only, with ErrNoReference (the report is returned with
// the error).
func (m *Monitor) Compute(ctx context.Context, req Request) (*Report, error) {
	if req.Window <= 0 {
		return nil, fmt.Errorf("window %s: expected a positive duration", req.Window)
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	end := req.Now.UTC()
	start := end.Add(-req.Window)
	if _, err := m.opts.Registry.GetRegisteredModel(ctx, req.Model); err != nil {
		return nil, registryError(err, req.Model, "")
	}
	cur, err := m.counts(ctx, req.Model, start, end)
	if err != nil {
		return nil, err
	}
	prev, err := m.counts(ctx, req.Model, start.Add(-req.Window), start)
	if err != nil {
		return nil, err
	}
	rep := &Report{Model: req.Model, Window: Window{Start: start, End: end, Duration: durationText(req.Window)}, Features: []Feature{}}
	byVersion := map[string]int{}
	var newest predlog.VersionCount
	for _, c := range cur {
		if c.Route == predlog.RouteShadow {
			continue
		}
		byVersion[c.Version] += int(c.Rows)
		if !c.Newest.Before(newest.Newest) {
			newest = c
		}
	}
	for v, n := range byVersion {
		rep.Versions = append(rep.Versions, VersionRows{Version: v, Rows: n})
	}
	slices.SortFunc(rep.Versions, func(a, b VersionRows) int { return int(versionNumber(b.Version) - versionNumber(a.Version)) })
	rep.Version = req.Version
	if rep.Version == "" {
		rep.Version = newest.Version
	}
	v, err := m.resolveVersion(ctx, req.Model, rep.Version)
	if err != nil {
		return nil, err
	}
	rep.Version = v.Version
	// A pinned version's shadow rows count: it may be served only as a shadow.
	shadow := req.Version != ""
	rep.Volume = volume(cur, prev, v.Version, shadow)
	rep.NoData = rep.Volume.Rows == 0
	if rep.NoData {
		rep.Notes = append(rep.Notes, fmt.Sprintf("no prediction of version %s in %s: nothing to compare", v.Version, describe(rep.Window)))
	}
	var curRows, prevRows []predlog.Row
	if !rep.NoData {
		s, err := m.read(ctx, req.Model, v.Version, shadow, start, end)
		if err != nil {
			return nil, err
		}
		p, err := m.read(ctx, req.Model, v.Version, shadow, start.Add(-req.Window), start)
		if err != nil {
			return nil, err
		}
		curRows, prevRows = s.Rows, p.Rows
		if int64(len(s.Rows)) < s.Of {
			rep.Sample = &SampleSize{Rows: len(s.Rows), Of: s.Of}
			rep.Notes = append(rep.Notes, fmt.Sprintf("the window holds %d rows of version %s: drift and performance are computed on %d of them, whole requests drawn at random (monitor max_rows: %d)", s.Of, v.Version, len(s.Rows), m.opts.MaxRows))
		}
	}
	ref, refErr := m.LoadReference(ctx, v)
	if refErr == nil {
		rep.Reference = &ReferenceSummary{Path: ref.Path, Rows: ref.Profile.Rows, Start: ref.Profile.Start, End: ref.Profile.End}
	} else if !errors.Is(refErr, ErrNoReference) {
		return nil, refErr
	} else {
		rep.Notes = append(rep.Notes, refErr.Error())
	}
	if m.opts.Labels != nil {
		perf, err := m.performance(ctx, rep, curRows, ref)
		if err != nil {
			return nil, err
		}
		rep.Performance = perf
	}
	if refErr != nil || rep.NoData {
		return rep, refErr
	}
	m.compare(rep, ref.Profile, curRows, prevRows, req.Methods)
	return rep, nil
}

func volume(cur, prev []predlog.VersionCount, version string, shadow bool) Volume {
	rows, est := served(cur, version, shadow)
	_, previous := served(prev, version, shadow)
	v := Volume{Rows: int(rows), Estimated: est, Previous: previous}
	if v.Previous > 0 {
		c := v.Estimated / v.Previous
		v.Change = &c
	}
	return v
}

func (m *Monitor) compare(rep *Report, ref *profile.Profile, cur, prev []predlog.Row, methods map[string]drift.Options) {
	rep.DriftShare = drift.DefaultDriftShare
	var missing, cells int
	for i := range ref.Columns {
		c := &ref.Columns[i]
		f := Feature{Name: c.Name, Kind: c.Kind, column: c}
		opt := methods[c.Name]
		var curMissing int
		var err error
		if c.Kind == profile.Categorical {
			f.currentCat = stringValues(cur, c.Name)
			curMissing = countEmpty(f.currentCat)
			var res drift.ColumnResult
			res, err = drift.CompareCategorical(c.Name, c.SampleString, f.currentCat, opt)
			if err == nil {
				f.Drift = &res
			}
			if p := stringValues(prev, c.Name); len(prev) > 0 {
				if res, perr := drift.CompareCategorical(c.Name, p, f.currentCat, opt); perr == nil {
					f.Previous = &res
				}
				f.Missing.Previous = share(countEmpty(p), len(p))
			}
		} else {
			f.current = floatValues(cur, c.Name)
			curMissing = countNaN(f.current)
			var res drift.ColumnResult
			res, err = drift.CompareNumeric(c.Name, c.SampleFloat, f.current, opt)
			if err == nil {
				f.Drift = &res
			}
			if p := floatValues(prev, c.Name); len(prev) > 0 {
				if res, perr := drift.CompareNumeric(c.Name, p, f.current, opt); perr == nil {
					f.Previous = &res
				}
				f.Missing.Previous = share(countNaN(p), len(p))
			}
		}
		if err != nil {
			f.Error = err.Error()
			if curMissing == len(cur) {
				f.Error = fmt.Sprintf("no value of %s in the window's predictions: all %d missing, or the version does not log it", c.Name, len(cur))
			}
		}
		f.Missing.Current = *share(curMissing, len(cur))
		if n := c.Count + c.Missing; n > 0 {
			f.Missing.Reference = float64(c.Missing) / float64(n)
		}
		missing += curMissing
		cells += len(cur)
		if f.Drift != nil {
			rep.Tested++
			if f.Drift.Drift {
				rep.DriftedCount++
			}
			m.featureDrift.WithLabelValues(rep.Model, rep.Version, c.Name).Set(f.Drift.Score)
		}
		rep.Features = append(rep.Features, f)
	}
	if rep.Tested > 0 {
		rep.DriftedShare = float64(rep.DriftedCount) / float64(rep.Tested)
		rep.DatasetDrift = rep.DriftedShare >= rep.DriftShare
	}
	if cells > 0 {
		rep.MissingShare = float64(missing) / float64(cells)
	}
	if len(ref.Columns) == 0 {
		rep.Notes = append(rep.Notes, "the reference profile has no feature column")
	}
	rep.Prediction = m.comparePredictions(rep, ref.Prediction, cur, prev, methods[PredictionColumn])
}

func (m *Monitor) comparePredictions(rep *Report, ref *profile.Column, cur, prev []predlog.Row, opt drift.Options) *Prediction {
	p := &Prediction{column: ref}
	p.current = scores(cur)
	if p.current == nil {
		p.Error = "the predictions have several outputs (multiclass): their drift is not computed"
		return p
	}
	p.Mean = mean(p.current)
	if ps := scores(prev); len(ps) > 0 {
		if res, err := drift.CompareNumeric(PredictionColumn, ps, p.current, opt); err == nil {
			p.Previous = &res
		}
	}
	if ref == nil {
		p.Error = "the reference profile has no predictions (profile.prediction): drift against training needs them"
		return p
	}
	p.ReferenceMean = ref.Mean
	res, err := drift.CompareNumeric(PredictionColumn, ref.SampleFloat, p.current, opt)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	p.Drift = &res
	m.predictionDrift.WithLabelValues(rep.Model, rep.Version).Set(res.Score)
	return p
}

// scores returns the single output of each row (nil when a row has several).
func scores(rs []predlog.Row) []float64 {
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		switch len(r.Scores) {
		case 0:
			out = append(out, math.NaN())
		case 1:
			out = append(out, r.Scores[0])
		default:
			return nil
		}
	}
	return out
}

func floatValues(rs []predlog.Row, name string) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		v, ok := r.Features[name]
		if !ok {
			v = math.NaN()
		}
		out[i] = v
	}
	return out
}

func stringValues(rs []predlog.Row, name string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Categorical[name]
	}
	return out
}

// countNaN counts a numeric column's missing values (NaN, ±Inf).
func countNaN(x []float64) int {
	return count(x, func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
}

// countEmpty counts a categorical column's missing values ("").
func countEmpty(x []string) int { return count(x, func(v string) bool { return v == "" }) }

func count[T any](x []T, missing func(T) bool) int {
	n := 0
	for _, v := range x {
		if missing(v) {
			n++
		}
	}
	return n
}

func share(n, of int) *float64 {
	s := 0.0
	if of > 0 {
		s = float64(n) / float64(of)
	}
	return &s
}

func mean(x []float64) float64 {
	var s float64
	var n int
	for _, v := range x {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			s += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

func durationText(d time.Duration) string {
	for _, u := range []struct {
		s string
		d time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}} {
		if d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.s)
		}
	}
	return d.String()
}

func describe(w Window) string {
	return fmt.Sprintf("[%s, %s)", w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339))
}
