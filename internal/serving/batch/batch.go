// Package batch is serving's offline twin: it scores a spine of entity keys
// and times with a registered model version, fetching the version's features
// point in time from the offline store, as /v1/models/{name}/predict fetches
// them from the online store at request time. A batch score and an online
// score of the same entity at the same time are comparable: the same
// version, the same feature service (on-demand features computed by the same
// evaluator), the same model code. `atrium predict --model models:/...` is a
// thin front end to Predict, and the skew check reuses Features.
package batch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/modeling/predict"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/spec"
)

// ErrNoFeatureService: the version names no feature service (no
// atrium.feature_service tag) and the caller gave none.
var ErrNoFeatureService = errors.New("no feature service for the model")

// Sources are what Predict reads: registered versions and the offline store
// with the applied feature definitions.
type Sources struct {
	Loader   *serving.Loader
	Offline  offline.Engine
	Features *spec.Features
}

// Options say which version scores which spine into which file.
type Options struct {
	// Model is models:/<name>@<alias> or models:/<name>/<version>.
	Model string
	// Spine is a CSV or Parquet file: the entity keys of the service's
	// feature sets, a time column and any request-time values the
	// service's on-demand features read (columns named after them).
	Spine string
	// TimeColumn names the spine's time column ("" picks it as historical
	// does).
	TimeColumn string
	// Out is the predictions file (.csv, .tsv or .parquet): Passthrough
	// columns, then "prediction" (or one column per class).
	Out string
	// FeatureService overrides the version's atrium.feature_service tag.
	FeatureService string
	// Passthrough lists the spine columns copied to Out. Default: every
	// spine column.
	Passthrough []string
	// Raw writes margins instead of probabilities.
	Raw bool
}

// Summary describes a Predict.
type Summary struct {
	Model          string  `json:"model"`
	Version        string  `json:"version"`
	FeatureService string  `json:"feature_service"`
	Out            string  `json:"out"`
	Rows           int     `json:"rows"`
	Outputs        int     `json:"outputs"`
	Seconds        float64 `json:"seconds"`
	// OnDemandFailed counts on-demand feature values that could not be
	// computed (scored as missing).
	OnDemandFailed int `json:"on_demand_failed,omitempty"`
}

// Predict resolves the version o.Model names, retrieves its feature
// service's features point in time for every spine row, and writes the
// version's predictions to o.Out. The features go through a temporary file
// next to Out, removed when done.
func Predict(ctx context.Context, src Sources, o Options) (*Summary, error) {
	start := time.Now()
	d, err := src.Loader.LoadURI(ctx, o.Model)
	if err != nil {
		return nil, err
	}
	joined, res, service, cleanup, err := Features(ctx, src, d, o.FeatureService, o.Spine, o.TimeColumn, filepath.Dir(o.Out))
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if res.Rows == 0 {
		return nil, fmt.Errorf("%w: spine %s has no data rows", predict.ErrOptions, o.Spine)
	}
	pass := o.Passthrough
	if pass == nil {
		pass = SpineColumns(res)
	}
	s, err := predict.Run(ctx, predict.Options{Model: o.Model, Loaded: ServedModel(d), Data: joined, Out: o.Out, Passthrough: pass, Raw: o.Raw})
	if err != nil {
		return nil, fmt.Errorf("score %s (version %s) on %s: %w", o.Model, d.Version, o.Spine, err)
	}
	return &Summary{Model: d.Name, Version: d.Version, FeatureService: service, Out: o.Out, Rows: s.Rows, Outputs: s.Outputs,
		OnDemandFailed: res.OnDemandFailed, Seconds: time.Since(start).Seconds()}, nil
}

// Features retrieves the features of d's feature service (service, when
// set, overrides the version's tag) point in time for every row of spine
// into a Parquet file in a temporary directory under dir, and checks that
// every input of d is a column of it (a service feature, or a spine
// column). cleanup removes the file.
func Features(ctx context.Context, src Sources, d *serving.Deployed, service, spine, timeColumn, dir string) (
	path string, res *retrieval.HistoricalResult, usedService string, cleanup func(), err error) {
	if service == "" {
		service = d.FeatureService
	}
	if service == "" {
		return "", nil, "", nil, fmt.Errorf("%w: model %q version %s has no %s tag: register it with atrium fit --register --feature-service SERVICE, or name the service",
			ErrNoFeatureService, d.Name, d.Version, serving.FeatureServiceTag)
	}
	tmp, err := os.MkdirTemp(dir, ".atrium-features-*")
	if err != nil {
		return "", nil, "", nil, fmt.Errorf("temporary features file: %w", err)
	}
	cleanup = func() { os.RemoveAll(tmp) }
	path = filepath.Join(tmp, "features.parquet")
	res, err = retrieval.Historical(ctx, src.Offline, src.Features, retrieval.HistoricalRequest{Spine: spine, TimeColumn: timeColumn, Service: service, Out: path})
	if err != nil {
		cleanup()
		return "", nil, "", nil, fmt.Errorf("features of %s for model %q version %s: %w", service, d.Name, d.Version, err)
	}
	var missing []string
	for _, in := range d.Inputs {
		if !slices.Contains(res.Columns, in.Name) {
			missing = append(missing, in.Name)
		}
	}
	if len(missing) > 0 {
		cleanup()
		return "", nil, "", nil, fmt.Errorf("%w: model %q version %s takes %q, which neither feature service %s nor the spine %s has",
			serving.ErrInvalidInput, d.Name, d.Version, missing, service, spine)
	}
	return path, res, service, cleanup, nil
}

// SpineColumns are the columns of a historical result that came from the
// spine (the others are the features).
func SpineColumns(res *retrieval.HistoricalResult) []string {
	features := make(map[string]bool, len(res.Features))
	for _, f := range res.Features {
		features[f.Name] = true
	}
	var out []string
	for _, c := range res.Columns {
		if !features[c] {
			out = append(out, c)
		}
	}
	return out
}

// ServedModel is d's model with d's input names (an MLflow signature may
// rename a model file's generated feature names), for code that matches
// columns by name. The body is shared, read-only.
func ServedModel(d *serving.Deployed) *modelfile.Model {
	m := *d.Model()
	m.Features = slices.Clone(d.Inputs)
	return &m
}
