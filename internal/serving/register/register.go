// Package register publishes a fitted model as a registered model version,
// the way the MLflow client does for a Python model: a run with the fit's
// parameters and metrics, the model as an MLflow model directory of the
// atrium flavor under the run's artifacts ("model/"), a version of the
// registered model whose source is runs:/<run>/model, its lineage tags, and
// optionally an alias. `atrium fit --register` and the demo call Model.
//
// The version is servable at once: serving.Loader reads the same directory
// back through the registry (the run's artifact URI is mlflow-artifacts:/,
// the server's artifact proxy, which is the project's artifact store).
package register

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// ErrOptions marks a mistake in Options (a usage error on the command line).
var ErrOptions = errors.New("invalid register options")

// ArtifactPath is the run-relative directory the model is logged under, as
// mlflow's log_model(name="model") writes it.
const ArtifactPath = "model"

// Tags written on the run, as the MLflow client writes them.
const (
	tagSourceName = "mlflow.source.name"
	tagSourceType = "mlflow.source.type"
)

// Stores are where a model is published: the project's tracking store, its
// registry (on the same metadata database) and its artifact store.
type Stores struct {
	Tracking  *tracking.Store
	Registry  *registry.Store
	Artifacts artifact.Store
}

// Options say under which name and with what lineage a model is registered.
type Options struct {
	// Name is the registered model's name; it is created on first use.
	// Required.
	Name string
	// Experiment names the experiment of the run, created when missing.
	// Default: MLflow's Default experiment (id 0).
	Experiment string
	// RunName names the run. Default: the tracking store picks one.
	RunName string
	// FeatureService, when set, is written as the version's tag
	// atrium.feature_service (serving.FeatureServiceTag): /v1 predict and
	// rank, atrium predict --model and atrium skew fetch the version's
	// features from it.
	FeatureService string
	// Alias, when set, is pointed at the new version (champion, say):
	// servers following it switch to the version within their poll interval.
	Alias string
	// Source is recorded as the run's mlflow.source.name tag. Default
	// "atrium fit".
	Source string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Run, when set, is an existing RUNNING run to publish into instead of
	// a new one (the training orchestrator's parent run, which holds the
	// study's other artifacts); Model then neither tags it nor ends it: the
	// caller owns the run. Experiment and RunName are not used.
	Run string
	// VersionTags are further tags of the new version (the orchestrator's
	// lineage: atrium.features, atrium.training.hash, ...).
	VersionTags map[string]string
}

// Result names what Model created.
type Result struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	RunID   string `json:"run_id"`
	// Alias is Options.Alias ("" when none was set).
	Alias string `json:"alias,omitempty"`
	// Source is the version's source, runs:/<run_id>/model.
	Source string `json:"source"`
	// ModelURI is how to refer to the version: models:/<name>@<alias> with
	// an alias, models:/<name>/<version> otherwise.
	ModelURI string `json:"model_uri"`
	// Artifacts is where the model directory is, the run's artifact URI
	// plus /model.
	Artifacts string `json:"artifacts"`
}

// Validate reports every problem of the options, one per line, as an
// ErrOptions error.
func (o *Options) Validate() error {
	var problems []error
	if o.Name == "" {
		problems = append(problems, fmt.Errorf("%w: a registered model name is required", ErrOptions))
	} else if err := registry.ValidateName(o.Name, "name"); err != nil {
		problems = append(problems, fmt.Errorf("%w: model name %q: %v", ErrOptions, o.Name, err))
	}
	if o.Alias != "" {
		if err := registry.ValidateAlias(o.Alias, true); err != nil {
			problems = append(problems, fmt.Errorf("%w: alias %q: %v", ErrOptions, o.Alias, err))
		}
	}
	return errors.Join(problems...)
}

// Target is where Model publishes: Stores (the project's own stores,
// embedded) or a Remote server's MLflow API. Its methods are the MLflow
// tracking and registry calls of a publication; they are safe for
// concurrent use.
type Target interface {
	// ExperimentID returns the id of the named experiment, creating it when
	// missing; "" is the Default experiment (id 0).
	ExperimentID(ctx context.Context, name string) (string, error)
	// CreateRun creates a RUNNING run of the experiment with the tags.
	CreateRun(ctx context.Context, expID string, start int64, tags []tracking.KV) (runID, artifactURI string, err error)
	// RunInfo is an existing run's metadata (its experiment, status,
	// artifact URI).
	RunInfo(ctx context.Context, runID string) (*tracking.RunInfo, error)
	// LogBatch logs metrics, params and tags to a run in one call, within
	// MLflow's limits (1000 metrics, 100 params, 100 tags): the caller
	// splits larger batches. A NaN or infinite metric may be dropped (JSON
	// has none).
	LogBatch(ctx context.Context, runID string, metrics []tracking.Metric, params, tags []tracking.KV) error
	// PutArtifact stores data at path of the artifact store (the path of a
	// mlflow-artifacts:/ URI).
	PutArtifact(ctx context.Context, path string, data []byte) error
	// EndRun sets a run's final status (FINISHED, FAILED, KILLED) and end
	// time.
	EndRun(ctx context.Context, runID, status string, end int64) error
	// EnsureModel creates the registered model unless it exists.
	EnsureModel(ctx context.Context, name string) error
	// CreateVersion creates a version of the registered model from source
	// (runs:/<run>/<path>) and returns its number.
	CreateVersion(ctx context.Context, name, source, runID string, tags []tracking.KV) (version string, err error)
	// SetAlias points the alias at the version.
	SetAlias(ctx context.Context, name, alias, version string) error
}

// Tracker is a Target a training study is also tracked in (the training
// orchestrator's seam, internal/modeling/train): beyond publishing, it
// finds runs, tags them, and reads registered versions back. Stores and
// *Remote implement it; its methods are safe for concurrent use.
type Tracker interface {
	Target
	// FindExperiment returns the id of the named experiment, without
	// creating it: ok is false when there is none.
	FindExperiment(ctx context.Context, name string) (id string, ok bool, err error)
	// SearchRuns returns up to max runs of the experiment that match the
	// filter (MLflow's search syntax), in orderBy's order.
	SearchRuns(ctx context.Context, expID, filter string, orderBy []string, max int) ([]tracking.Run, error)
	// SetTag sets one tag of a run.
	SetTag(ctx context.Context, runID string, tag tracking.KV) error
	// Version resolves a version of the registered model: a number, or
	// "@alias". An unknown model or version, or a missing alias, is
	// serving.ErrNotFound.
	Version(ctx context.Context, name, version string) (*registry.ModelVersion, error)
	// LoadVersion resolves a version as Version does and loads its model
	// directory with serving's loader (serving.Loader), ready to predict.
	LoadVersion(ctx context.Context, name, version string) (*serving.Deployed, error)
}

var _ Tracker = Stores{}

// Model publishes m to t: a finished run holding its parameters, metrics and
// model directory, then a new version of the registered model, tagged and
// aliased as the options say. A failure after the run was created marks the
// run FAILED (the version is created last but for its alias, so a half
// publication never shows as a version).
func Model(ctx context.Context, t Target, m *modelfile.Model, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if o.Source == "" {
		o.Source = "atrium fit"
	}
	if o.Run != "" {
		info, err := t.RunInfo(ctx, o.Run)
		if err != nil {
			return nil, fmt.Errorf("register %s: run %s: %w", o.Name, o.Run, err)
		}
		res, err := publish(ctx, t, m, o, o.Run, info.ArtifactURI, now)
		if err != nil {
			return nil, err
		}
		return res, setAlias(ctx, t, o, res)
	}
	expID, err := t.ExperimentID(ctx, o.Experiment)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", o.Name, err)
	}
	tags := []tracking.KV{{Key: tagSourceName, Value: o.Source}, {Key: tagSourceType, Value: "LOCAL"}}
	if o.RunName != "" {
		tags = append(tags, tracking.KV{Key: tracking.TagRunName, Value: o.RunName})
	}
	if o.FeatureService != "" {
		tags = append(tags, tracking.KV{Key: serving.FeatureServiceTag, Value: o.FeatureService})
	}
	runID, artifactURI, err := t.CreateRun(ctx, expID, now().UnixMilli(), tags)
	if err != nil {
		return nil, fmt.Errorf("register %s: create run: %w", o.Name, err)
	}
	res, err := publish(ctx, t, m, o, runID, artifactURI, now)
	status := "FINISHED"
	if err != nil {
		status = "FAILED"
	}
	// The run's status is recorded even when the request's context ended:
	// a run left RUNNING forever reads as a fit still in progress.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if uerr := t.EndRun(uctx, runID, status, now().UnixMilli()); uerr != nil && err == nil {
		err = fmt.Errorf("register %s: finish run %s: %w", o.Name, runID, uerr)
	}
	if err != nil {
		return nil, err
	}
	return res, setAlias(ctx, t, o, res)
}

// setAlias points Options.Alias (when set) at the new version.
func setAlias(ctx context.Context, t Target, o Options, res *Result) error {
	if o.Alias == "" {
		return nil
	}
	if err := t.SetAlias(ctx, o.Name, o.Alias, res.Version); err != nil {
		return fmt.Errorf("register %s: set alias %s to version %s: %w", o.Name, o.Alias, res.Version, err)
	}
	res.Alias = o.Alias
	res.ModelURI = "models:/" + o.Name + "@" + o.Alias
	return nil
}

// publish logs the run's parameters, metrics and model directory and
// registers the version.
func publish(ctx context.Context, t Target, m *modelfile.Model, o Options, runID, artifactURI string, now func() time.Time) (*Result, error) {
	dir, ok := tracking.ProxiedPath(artifactURI)
	if !ok {
		return nil, fmt.Errorf("register %s: run %s stores artifacts at %s, outside the artifact store (mlflow-artifacts:/): set the experiment's artifact location to the default",
			o.Name, runID, artifactURI)
	}
	params, metrics := runData(m, now().UnixMilli())
	if err := t.LogBatch(ctx, runID, metrics, params, nil); err != nil {
		return nil, fmt.Errorf("register %s: log params and metrics to run %s: %w", o.Name, runID, err)
	}
	modelDir := ArtifactPath
	if dir != "" {
		modelDir = dir + "/" + ArtifactPath
	}
	if err := PutModelDir(ctx, t, modelDir, m, now()); err != nil {
		return nil, fmt.Errorf("register %s: %w", o.Name, err)
	}
	if err := t.EnsureModel(ctx, o.Name); err != nil {
		return nil, fmt.Errorf("register %s: create registered model: %w", o.Name, err)
	}
	var vtags []tracking.KV
	if o.FeatureService != "" {
		vtags = []tracking.KV{{Key: serving.FeatureServiceTag, Value: o.FeatureService}}
	}
	for _, k := range slices.Sorted(maps.Keys(o.VersionTags)) {
		vtags = append(vtags, tracking.KV{Key: k, Value: o.VersionTags[k]})
	}
	source := "runs:/" + runID + "/" + ArtifactPath
	version, err := t.CreateVersion(ctx, o.Name, source, runID, vtags)
	if err != nil {
		return nil, fmt.Errorf("register %s: create version: %w", o.Name, err)
	}
	return &Result{Name: o.Name, Version: version, RunID: runID, Source: source,
		ModelURI: "models:/" + o.Name + "/" + version, Artifacts: artifactURI + "/" + ArtifactPath}, nil
}

// PutModelDir stores m's MLflow model directory (serving.MLmodelFiles,
// created at created) under dir of t's artifact store: the model file
// first, MLmodel last, so that a directory whose MLmodel is visible is
// whole.
func PutModelDir(ctx context.Context, t Target, dir string, m *modelfile.Model, created time.Time) error {
	files, err := serving.MLmodelFiles(m, created)
	if err != nil {
		return err
	}
	for _, name := range serving.ModelDirOrder(files) {
		p := name
		if dir != "" {
			p = dir + "/" + name
		}
		if err := t.PutArtifact(ctx, p, files[name]); err != nil {
			return fmt.Errorf("store model file %s: %w", name, err)
		}
	}
	return nil
}

// The embedded target: the project's stores.

// ExperimentID implements Target.
func (st Stores) ExperimentID(ctx context.Context, name string) (string, error) {
	return experiment(ctx, st.Tracking, name)
}

// CreateRun implements Target.
func (st Stores) CreateRun(ctx context.Context, expID string, start int64, tags []tracking.KV) (string, string, error) {
	run, err := st.Tracking.CreateRun(ctx, tracking.RunCreate{ExperimentID: expID, StartTime: start, Tags: tags})
	if err != nil {
		return "", "", err
	}
	return run.Info.RunID, run.Info.ArtifactURI, nil
}

// RunInfo implements Target.
func (st Stores) RunInfo(ctx context.Context, runID string) (*tracking.RunInfo, error) {
	return st.Tracking.RunInfoOf(ctx, runID)
}

// LogBatch implements Target.
func (st Stores) LogBatch(ctx context.Context, runID string, metrics []tracking.Metric, params, tags []tracking.KV) error {
	return st.Tracking.LogBatch(ctx, runID, metrics, params, tags)
}

// PutArtifact implements Target.
func (st Stores) PutArtifact(ctx context.Context, path string, data []byte) error {
	return st.Artifacts.Put(ctx, path, bytes.NewReader(data))
}

// EndRun implements Target.
func (st Stores) EndRun(ctx context.Context, runID, status string, end int64) error {
	_, err := st.Tracking.UpdateRun(ctx, runID, tracking.RunUpdate{Status: &status, EndTime: &end})
	return err
}

// EnsureModel implements Target.
func (st Stores) EnsureModel(ctx context.Context, name string) error {
	_, err := st.Registry.CreateRegisteredModel(ctx, name, nil, "")
	if errors.Is(err, wire.ErrAlreadyExists) {
		return nil
	}
	return err
}

// CreateVersion implements Target.
func (st Stores) CreateVersion(ctx context.Context, name, source, runID string, tags []tracking.KV) (string, error) {
	v, err := st.Registry.CreateModelVersion(ctx, registry.VersionCreate{Name: name, Source: source, RunID: runID, Tags: tags})
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// SetAlias implements Target.
func (st Stores) SetAlias(ctx context.Context, name, alias, version string) error {
	return st.Registry.SetAlias(ctx, name, alias, version)
}

// SearchRuns implements Tracker.
func (st Stores) SearchRuns(ctx context.Context, expID, filter string, orderBy []string, max int) ([]tracking.Run, error) {
	runs, _, err := st.Tracking.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{expID}, Filter: filter,
		OrderBy: orderBy, MaxResults: int64(max)})
	return runs, err
}

// SetTag implements Tracker.
func (st Stores) SetTag(ctx context.Context, runID string, tag tracking.KV) error {
	return st.Tracking.SetTag(ctx, runID, tag)
}

// Version implements Tracker with serving's loader.
func (st Stores) Version(ctx context.Context, name, version string) (*registry.ModelVersion, error) {
	return st.loader().Version(ctx, name, version)
}

// LoadVersion implements Tracker with serving's loader.
func (st Stores) LoadVersion(ctx context.Context, name, version string) (*serving.Deployed, error) {
	return st.loader().Load(ctx, name, version)
}

func (st Stores) loader() *serving.Loader {
	return &serving.Loader{Registry: st.Registry, Artifacts: st.Artifacts}
}

// experiment returns the id of the named experiment of ts, creating it
// when missing; "" is the Default experiment.
// FindExperiment implements Tracker.
func (st Stores) FindExperiment(ctx context.Context, name string) (string, bool, error) {
	if name == "" {
		return tracking.DefaultExpID, true, nil
	}
	e, err := st.Tracking.GetExperimentByName(ctx, name)
	switch {
	case errors.Is(err, wire.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("experiment %q: %w", name, err)
	}
	return e.ExperimentID, true, nil
}

func experiment(ctx context.Context, ts *tracking.Store, name string) (string, error) {
	if name == "" {
		return tracking.DefaultExpID, nil
	}
	e, err := ts.GetExperimentByName(ctx, name)
	if err == nil {
		return e.ExperimentID, nil
	}
	if !errors.Is(err, wire.ErrNotFound) {
		return "", fmt.Errorf("experiment %q: %w", name, err)
	}
	id, err := ts.CreateExperiment(ctx, name, "", nil)
	if errors.Is(err, wire.ErrAlreadyExists) { // created concurrently
		e, err = ts.GetExperimentByName(ctx, name)
		if err != nil {
			return "", fmt.Errorf("experiment %q: %w", name, err)
		}
		return e.ExperimentID, nil
	}
	if err != nil {
		return "", fmt.Errorf("create experiment %q: %w", name, err)
	}
	return id, nil
}

// LogRunData logs to run runID what a registration logs of m (runData):
// its training parameters, task, algorithm and sizes as params, and its
// final metrics. For a run whose model is kept without being registered.
func LogRunData(ctx context.Context, t Target, runID string, m *modelfile.Model, now time.Time) error {
	params, metrics := runData(m, now.UnixMilli())
	if err := t.LogBatch(ctx, runID, metrics, params, nil); err != nil {
		return fmt.Errorf("log params and metrics to run %s: %w", runID, err)
	}
	return nil
}

// runData is what the run records of m: its training parameters, task,
// algorithm and sizes as params, and its final metrics. Metric names take
// MLflow's characters: "@" becomes "_at_" (valid_ndcg@10 ->
// valid_ndcg_at_10, as mlflow.lightgbm's autolog names it), anything else
// outside them "_".
func runData(m *modelfile.Model, ts int64) ([]tracking.KV, []tracking.Metric) {
	params := []tracking.KV{{Key: "task", Value: m.Task}, {Key: "algorithm", Value: m.Algorithm},
		{Key: "num_features", Value: strconv.Itoa(len(m.Features))}}
	var metrics []tracking.Metric
	if t := m.Training; t != nil {
		for _, k := range slices.Sorted(maps.Keys(t.Params)) {
			params = append(params, tracking.KV{Key: metricName(k), Value: t.Params[k]})
		}
		for _, kv := range [][2]string{{"label", t.Label}, {"weight", t.Weight}, {"group", t.Group}, {"data", t.Data}, {"valid", t.Valid}} {
			if kv[1] != "" {
				params = append(params, tracking.KV{Key: kv[0], Value: kv[1]})
			}
		}
		params = append(params, tracking.KV{Key: "seed", Value: strconv.FormatUint(t.Seed, 10)})
		metrics = append(metrics, tracking.Metric{Key: "train_rows", Value: wire.Float(t.Rows), Timestamp: ts})
		if t.ValidRows > 0 {
			metrics = append(metrics, tracking.Metric{Key: "valid_rows", Value: wire.Float(t.ValidRows), Timestamp: ts})
		}
		if t.Iterations > 0 {
			metrics = append(metrics, tracking.Metric{Key: "iterations", Value: wire.Float(t.Iterations), Timestamp: ts})
		}
		for _, k := range slices.Sorted(maps.Keys(t.Metrics)) {
			metrics = append(metrics, tracking.Metric{Key: metricName(k), Value: wire.Float(t.Metrics[k]), Timestamp: ts, Step: int64(t.Iterations)})
		}
	}
	return dedupParams(params), metrics
}

// dedupParams keeps the first of params with the same key: a training
// parameter named like one of the descriptive ones ("task") is the same
// value.
func dedupParams(params []tracking.KV) []tracking.KV {
	seen := make(map[string]bool, len(params))
	out := params[:0]
	for _, p := range params {
		if !seen[p.Key] {
			seen[p.Key] = true
			out = append(out, p)
		}
	}
	return out
}

// MetricName maps a name to MLflow's key characters (letters, digits, _ - .
// space : /): "@" becomes "_at_", anything else outside them "_".
func MetricName(k string) string { return metricName(k) }

// metricName is MetricName.
func metricName(k string) string {
	k = strings.ReplaceAll(k, "@", "_at_")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_-. :/", r):
			return r
		}
		return '_'
	}, k)
}
