package model

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/monitoring/alert"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Measurer measures monitors of monitors/*.yaml: model measures from model
// reports, feature-set measures from the pipeline runs in the metadata
// database. Reports are computed once per model, version, window and
// evaluation time, however many monitors read them.
type Measurer struct {
	Monitor *Monitor
	// Runs is the metadata database holding the pipeline runs (feature-set
	// measures).
	Runs *meta.DB

	mu    sync.Mutex
	at    time.Time
	cache map[string]reportOrErr
}

type reportOrErr struct {
	rep *Report
	err error
}

var _ alert.Measurer = (*Measurer)(nil)

// Measure implements alert.Measurer.
func (ms *Measurer) Measure(ctx context.Context, m *spec.Monitor, now time.Time) (alert.Measurement, error) {
	if m.Measure.IsFeatureSet() {
		return ms.measureSet(ctx, m, now)
	}
	req := Request{Model: m.Model, Version: m.Version, Window: m.Window.D(), Now: now}
	if m.Method != "" {
		col := m.Feature
		if m.Measure == spec.MeasurePredictionDrift {
			col = PredictionColumn
		}
		req.Methods = map[string]drift.Options{col: {Method: drift.Method(m.Method)}}
	}
	rep, err := ms.report(ctx, req)
	if m.Measure == spec.MeasureVolume && rep != nil {
		// Volume needs no reference: an empty window is 0, the value a
		// volume monitor exists to catch.
		return alert.Measurement{Value: rep.Volume.Estimated, Detail: fmt.Sprintf("version %s", rep.Version)}, nil
	}
	if err != nil {
		return alert.Measurement{}, err
	}
	detail := fmt.Sprintf("version %s, %d rows", rep.Version, rep.Volume.Rows)
	noData := alert.Measurement{NoData: true, Detail: detail}
	if rep.NoData {
		return noData, nil
	}
	value := func(v float64) (alert.Measurement, error) { return alert.Measurement{Value: v, Detail: detail}, nil }
	switch m.Measure {
	case spec.MeasureFeatureDriftShare:
		if rep.Tested == 0 {
			return noData, nil
		}
		return value(rep.DriftedShare)
	case spec.MeasureFeatureDrift:
		f, err := rep.feature(m.Feature)
		if err != nil {
			return alert.Measurement{}, err
		}
		if f.Drift == nil {
			return noData, nil
		}
		return value(f.Drift.Score)
	case spec.MeasurePredictionDrift:
		if rep.Prediction == nil || rep.Prediction.Drift == nil {
			return noData, nil
		}
		return value(rep.Prediction.Drift.Score)
	case spec.MeasureMissingShare:
		if m.Feature == "" {
			return value(rep.MissingShare)
		}
		f, err := rep.feature(m.Feature)
		if err != nil {
			return alert.Measurement{}, err
		}
		return value(f.Missing.Current)
	case spec.MeasureRealizedMetric:
		if rep.Performance == nil {
			return alert.Measurement{}, errors.New("realized metrics need the label store, which this server was not given")
		}
		mt, ok := rep.Performance.Metric(m.Metric)
		if !ok && rep.Performance.Labeled > 0 {
			// Not among the default ones: compute it on the same join.
			return alert.Measurement{}, fmt.Errorf("metric %s is not computed for model %s (computed: %s); name it in the version's atrium.test.<metric> tags", m.Metric, m.Model, metricList(rep.Performance))
		}
		if !ok || mt.Error != "" {
			return noData, nil
		}
		return alert.Measurement{Value: mt.Value, Detail: fmt.Sprintf("version %s, %d labeled rows", rep.Version, mt.Rows)}, nil
	}
	return alert.Measurement{}, fmt.Errorf("measure %s is not a model measure", m.Measure)
}

func metricList(p *Performance) string {
	var s []string
	for _, m := range p.Metrics {
		s = append(s, m.Name)
	}
	return strings.Join(s, ", ")
}

// feature returns the report's feature named name, or an error listing them.
func (r *Report) feature(name string) (*Feature, error) {
	var names []string
	for i := range r.Features {
		if r.Features[i].Name == name {
			return &r.Features[i], nil
		}
		names = append(names, r.Features[i].Name)
	}
	return nil, fmt.Errorf("model %s version %s has no feature %q in its reference profile (features: %s)", r.Model, r.Version, name, strings.Join(names, ", "))
}

func (ms *Measurer) report(ctx context.Context, req Request) (*Report, error) {
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%v", req.Model, req.Version, req.Window, req.Methods)
	ms.mu.Lock()
	if !ms.at.Equal(req.Now) || ms.cache == nil {
		ms.at, ms.cache = req.Now, map[string]reportOrErr{}
	}
	if c, ok := ms.cache[key]; ok {
		ms.mu.Unlock()
		return c.rep, c.err
	}
	ms.mu.Unlock()
	rep, err := ms.Monitor.Compute(ctx, req)
	ms.mu.Lock()
	if ms.at.Equal(req.Now) {
		ms.cache[key] = reportOrErr{rep, err}
	}
	ms.mu.Unlock()
	return rep, err
}

// measureSet measures a feature set's pipeline runs started in the window.
func (ms *Measurer) measureSet(ctx context.Context, m *spec.Monitor, now time.Time) (alert.Measurement, error) {
	if ms.Runs == nil {
		return alert.Measurement{}, errors.New("feature-set measures need the metadata database")
	}
	runs, err := pipeline.ListRuns(ctx, ms.Runs, pipeline.RunFilter{Set: m.FeatureSet, Limit: 10000})
	if err != nil {
		return alert.Measurement{}, fmt.Errorf("runs of feature set %s: %w", m.FeatureSet, err)
	}
	since := now.Add(-m.Window.D())
	var n, failed, checks int
	for _, r := range runs {
		if r.StartedAt.Before(since) || r.StartedAt.After(now) {
			continue
		}
		n++
		if r.Status == pipeline.StatusFailed || r.Status == pipeline.StatusChecksFailed {
			failed++
		}
		for _, c := range r.Checks {
			if !c.Passed {
				checks++
			}
		}
	}
	if n == 0 {
		return alert.Measurement{NoData: true, Detail: "no run in the window"}, nil
	}
	detail := fmt.Sprintf("%d runs", n)
	if m.Measure == spec.MeasureFailedRuns {
		return alert.Measurement{Value: float64(failed), Detail: detail}, nil
	}
	return alert.Measurement{Value: float64(checks), Detail: detail}, nil
}
