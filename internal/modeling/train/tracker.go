package train

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/serving/register"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Lineage tags of the registered version and the parent run (the shared
// contract read by serving and monitoring).
const (
	TagFeatures         = "atrium.features"
	TagFeatureVersions  = "atrium.feature_versions"
	TagTrainingRows     = "atrium.training.rows"
	TagTrainingStart    = "atrium.training.start"
	TagTrainingEnd      = "atrium.training.end"
	TagTrainingHash     = "atrium.training.hash"
	TagReferenceProfile = "atrium.reference_profile"
	TagTrainingSpec     = "atrium.training.spec"
	// TagTestPrefix + metric ("atrium.test.ndcg@10") is a test metric of the
	// version.
	TagTestPrefix = "atrium.test."
	// TagStudy marks a study's parent run (its name): --resume finds the run
	// by it.
	TagStudy = "atrium.study"
	// TagParentRun is MLflow's nesting tag.
	TagParentRun = "mlflow.parentRunId"
	// TagTrialState is a child run's trial state: complete, pruned, failed.
	TagTrialState = "atrium.trial.state"
	// TagTrialNumber is a child run's trial number in the study.
	TagTrialNumber = "atrium.trial.number"
)

// ReferenceProfilePath is the reference profile's artifact path, relative
// to the version's run artifact root.
const ReferenceProfilePath = "reference/profile.json"

// tracker writes the study's runs to Options.Tracker (a dry run stops
// before it is made). The trial methods are safe for concurrent use (the
// Tracker is).
type tracker struct {
	o      *Options
	t      register.Tracker
	res    *Result
	runID  string
	expID  string // the parent run's experiment, the trials' too
	artDir string // the parent run's directory in the artifact store
	// resumed is true when runID is an interrupted study's parent run
	// (Resume), not one this process created.
	resumed bool
}

func newTracker(o *Options, res *Result) *tracker { return &tracker{o: o, t: o.Tracker, res: res} }

func (k *tracker) now() int64 { return k.o.Now().UnixMilli() }

// start creates the parent run, tagged with what makes the study's trials
// comparable (studyParts), or with Resume finds the study's unfinished one
// and checks that the spec still matches it. A resume that cannot continue
// is an ErrResume error and leaves every run as it was.
func (k *tracker) start(ctx context.Context) error {
	t := k.o.Spec
	parts := studyParts(k.o, k.res)
	if k.o.Resume {
		// Found, not created: a refused resume leaves the tracker as it was.
		expID, ok, err := k.t.FindExperiment(ctx, t.Name)
		if err != nil {
			return fmt.Errorf("experiment %s: %w", t.Name, err)
		}
		if !ok {
			return resumeError(fmt.Sprintf("--resume: no interrupted study of %s to resume (no experiment %s); run without --resume", t.Name, t.Name))
		}
		k.expID = expID
		runs, err := k.t.SearchRuns(ctx, expID, fmt.Sprintf("tags.`%s` = '%s' and attributes.status = 'RUNNING'", TagStudy, t.Name),
			[]string{"attributes.start_time DESC"}, 1)
		if err != nil {
			return fmt.Errorf("find the study's parent run: %w", err)
		}
		switch {
		case len(runs) == 0:
			return resumeError(fmt.Sprintf("--resume: no interrupted study of %s to resume; run without --resume", t.Name))
		case len(runs[0].Data.Params) > 0:
			// The parent run holds no params until the model is registered
			// in it: a run with params died while registering, and is not
			// resumed.
			return resumeError(fmt.Sprintf("--resume: no interrupted study of %s to resume (the last unfinished run, %s, stopped while registering its model); run without --resume",
				t.Name, runs[0].Info.RunID))
		}
		if err := checkStudyParts(t.Name, parts, runs[0].Data.Tags); err != nil {
			return err
		}
		k.runID, k.resumed = runs[0].Info.RunID, true
		return k.artifactDir(runs[0].Info.ArtifactURI)
	}
	expID, err := k.t.ExperimentID(ctx, t.Name)
	if err != nil {
		return fmt.Errorf("experiment %s: %w", t.Name, err)
	}
	k.expID = expID
	tags := []tracking.KV{
		{Key: tracking.TagRunName, Value: t.Name}, {Key: "mlflow.source.name", Value: "atrium train"},
		{Key: "mlflow.source.type", Value: "LOCAL"}, {Key: TagStudy, Value: t.Name}, {Key: TagTrainingSpec, Value: t.File}}
	runID, uri, err := k.t.CreateRun(ctx, expID, k.now(), append(tags, studyTags(parts)...))
	if err != nil {
		return fmt.Errorf("create the study's parent run: %w", err)
	}
	k.runID = runID
	return k.artifactDir(uri)
}

func (k *tracker) artifactDir(uri string) error {
	k.res.RunID = k.runID
	dir, ok := tracking.ProxiedPath(uri)
	if !ok {
		return fmt.Errorf("run %s stores artifacts at %s, outside the artifact store", k.runID, uri)
	}
	k.artDir = dir
	return nil
}

// trialRun is a trial's child run.
type trialRun struct{ id string }

// startTrial creates a trial's child run with its parameters.
func (k *tracker) startTrial(ctx context.Context, number int, params map[string]string) (*trialRun, error) {
	id, _, err := k.t.CreateRun(ctx, k.expID, k.now(), []tracking.KV{
		{Key: tracking.TagRunName, Value: fmt.Sprintf("%s-trial-%d", k.o.Spec.Name, number)},
		{Key: TagParentRun, Value: k.runID}, {Key: TagTrialNumber, Value: strconv.Itoa(number)}})
	if err != nil {
		return nil, fmt.Errorf("trial %d: create run: %w", number, err)
	}
	var kv []tracking.KV
	for _, name := range slices.Sorted(maps.Keys(params)) {
		kv = append(kv, tracking.KV{Key: register.MetricName(name), Value: params[name]})
	}
	if err := k.t.LogBatch(ctx, id, nil, kv, nil); err != nil {
		return nil, fmt.Errorf("trial %d: log params: %w", number, err)
	}
	return &trialRun{id: id}, nil
}

// endTrial logs the trial's per-iteration metric and final state.
func (k *tracker) endTrial(ctx context.Context, r *trialRun, state string, f *fitResult, reason string) error {
	if r == nil || r.id == "" {
		return nil
	}
	// A trial stopped by a cancelled study is still recorded as such.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := k.now()
	key := "valid_" + register.MetricName(k.res.Metric)
	var ms []tracking.Metric
	if f != nil {
		for i, v := range f.curve {
			ms = append(ms, tracking.Metric{Key: key, Value: wire.Float(v), Timestamp: now, Step: int64(i + 1)})
		}
		if state == "complete" {
			ms = append(ms, tracking.Metric{Key: "best_" + key, Value: wire.Float(f.value), Timestamp: now, Step: int64(f.iterations)},
				tracking.Metric{Key: "iterations", Value: wire.Float(f.iterations), Timestamp: now})
		}
	}
	tags := []tracking.KV{{Key: TagTrialState, Value: state}}
	if reason != "" {
		tags = append(tags, tracking.KV{Key: "atrium.trial.error", Value: truncate(reason, 5000)})
	}
	// MLflow's batch limit is 1000 metrics.
	for len(ms) > 0 {
		n := min(len(ms), 1000)
		if err := k.t.LogBatch(ctx, r.id, ms[:n], nil, tags); err != nil {
			return err
		}
		ms, tags = ms[n:], nil
	}
	if tags != nil {
		if err := k.t.LogBatch(ctx, r.id, nil, nil, tags); err != nil {
			return err
		}
	}
	status := map[string]string{"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}[state]
	return k.t.EndRun(ctx, r.id, status, now)
}

// closeStaleTrials ends, as FAILED with the study's reason, the child runs
// still RUNNING of trials the study failed as stale: their process died
// (killed mid-trial), so nothing else will end them, and an MLflow UI would
// show them running forever. Runs are matched by their trial number tag,
// which is set when the run is created. A live trial of another process
// working on the study is Running in the study, not stale, and keeps its
// run.
func (k *tracker) closeStaleTrials(ctx context.Context, trials []tune.FrozenTrial) error {
	stale := map[string]tune.FrozenTrial{}
	for _, f := range trials {
		if f.State == tune.Failed && f.SystemAttrs[tune.SystemAttrStale] != "" {
			stale[strconv.Itoa(f.Number)] = f
		}
	}
	if len(stale) == 0 || k.runID == "" {
		return nil
	}
	runs, err := k.t.SearchRuns(ctx, k.expID, fmt.Sprintf("tags.`%s` = '%s' and attributes.status = 'RUNNING'", TagParentRun, k.runID), nil, 1000)
	if err != nil {
		return fmt.Errorf("find the trials' unfinished runs: %w", err)
	}
	for _, r := range runs {
		f, ok := stale[tagValue(r.Data.Tags, TagTrialNumber)]
		if !ok {
			continue
		}
		if err := k.endTrial(ctx, &trialRun{id: r.Info.RunID}, "failed", nil, f.Err); err != nil {
			return fmt.Errorf("end trial %d's run %s: %w", f.Number, r.Info.RunID, err)
		}
	}
	return nil
}

func tagValue(kvs []tracking.KV, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// put stores data at path under the parent run's artifacts.
func (k *tracker) put(ctx context.Context, path string, data []byte) error {
	p := path
	if k.artDir != "" {
		p = k.artDir + "/" + path
	}
	if err := k.t.PutArtifact(ctx, p, data); err != nil {
		return fmt.Errorf("store artifact %s of run %s: %w", path, k.runID, err)
	}
	return nil
}

// lineage are the version's lineage tags.
func (k *tracker) lineage(set *trainingSet) map[string]string {
	fp := set.fp
	versions, _ := json.Marshal(fp.FeatureVersions) // a map of ints always encodes
	tags := map[string]string{
		TagFeatures:         strings.Join(fp.Features, ","),
		TagFeatureVersions:  string(versions),
		TagTrainingRows:     strconv.FormatInt(fp.Rows, 10),
		TagTrainingHash:     fp.Hash,
		TagReferenceProfile: ReferenceProfilePath,
		TagTrainingSpec:     k.o.Spec.File,
	}
	if !fp.Start.IsZero() {
		tags[TagTrainingStart], tags[TagTrainingEnd] = fp.Start.Format(time.RFC3339), fp.End.Format(time.RFC3339)
	}
	return tags
}

// finish stores the study's artifacts in the parent run (spec,
// fingerprint, reference profile, plots, the model), registers the version
// with its lineage, applies the gate's decision and ends the run.
func (k *tracker) finish(ctx context.Context, m *modelfile.Model, set *trainingSet, best *fitResult, pd plotData) error {
	t, res := k.o.Spec, k.res
	specData, err := os.ReadFile(t.File)
	if err != nil {
		return fmt.Errorf("read the spec to log it: %w", err)
	}
	fp, _ := json.MarshalIndent(set.fp, "", "  ") // plain data always encodes
	profile, err := referenceProfile(set, best, m)
	if err != nil {
		return err
	}
	files := map[string][]byte{"spec/" + filepath.Base(t.File): specData, "fingerprint.json": fp, ReferenceProfilePath: profile}
	if plots, err := plotFiles(pd); err != nil {
		k.o.Logger.Warn("plots not drawn", "error", err)
	} else {
		maps.Copy(files, plots)
	}
	if m.Algorithm == modelfile.AlgorithmGBDT {
		// A LightGBM text copy beside the MLflow model directory: what
		// lightgbm.Booster(model_file=...) reads (mlflow.lightgbm's name).
		lgb, err := m.MarshalLightGBM()
		if err != nil {
			return err
		}
		files["model/model.lgb"] = lgb
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := k.put(ctx, name, files[name]); err != nil {
			return err
		}
	}
	lineage := k.lineage(set)
	now := k.now()
	mkey := register.MetricName(res.Metric)
	metrics := []tracking.Metric{{Key: "test_" + mkey, Value: wire.Float(res.TestMetric), Timestamp: now},
		{Key: "best_valid_" + mkey, Value: wire.Float(res.ValidMetric), Timestamp: now},
		{Key: "best_trial", Value: wire.Float(res.BestTrial), Timestamp: now}}
	if res.Champion != nil {
		metrics = append(metrics, tracking.Metric{Key: "champion_test_" + mkey, Value: wire.Float(res.Champion.TestMetric), Timestamp: now})
	}
	tags := []tracking.KV{{Key: "atrium.promotion.decision", Value: truncate(res.Decision.Reason, 5000)},
		{Key: "atrium.promotion.promoted", Value: strconv.FormatBool(res.Decision.Promote)}}
	for _, key := range slices.Sorted(maps.Keys(lineage)) {
		tags = append(tags, tracking.KV{Key: key, Value: lineage[key]})
	}
	if err := k.t.LogBatch(ctx, k.runID, metrics, nil, tags); err != nil {
		return fmt.Errorf("log the study's results: %w", err)
	}
	if r := t.Register; r != nil {
		lineage[TagTestPrefix+res.Metric] = strconv.FormatFloat(res.TestMetric, 'g', -1, 64)
		reg, err := register.Model(ctx, k.t, m, register.Options{Name: r.Model, Alias: r.Alias, FeatureService: t.Features.Service,
			Source: "atrium train", Run: k.runID, VersionTags: lineage, Now: k.o.Now})
		if err != nil {
			return err
		}
		res.Registered = reg
		if res.Decision.Promote {
			if err := k.t.SetAlias(ctx, r.Model, res.Decision.Alias, reg.Version); err != nil {
				return fmt.Errorf("promote %s version %s to %s: %w", r.Model, reg.Version, res.Decision.Alias, err)
			}
		}
	} else {
		// What registering logs, the model's params among them: without
		// a register block the parent run holds them all the same.
		if err := register.LogRunData(ctx, k.t, k.runID, m, k.o.Now()); err != nil {
			return err
		}
		if err := register.PutModelDir(ctx, k.t, k.artDir+"/"+register.ArtifactPath, m, k.o.Now()); err != nil {
			return fmt.Errorf("store the model in run %s: %w", k.runID, err)
		}
	}
	if err := k.t.EndRun(ctx, k.runID, "FINISHED", now); err != nil {
		return fmt.Errorf("end the study's parent run %s: %w", k.runID, err)
	}
	return nil
}

// fail ends the parent run as FAILED with the error as a tag; the run of a
// study that was interrupted (ctx cancelled) stays RUNNING for --resume.
func (k *tracker) fail(ctx context.Context, cause error) {
	if k.runID == "" || ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := k.t.SetTag(ctx, k.runID, tracking.KV{Key: "atrium.error", Value: truncate(cause.Error(), 5000)}); err != nil {
		k.o.Logger.Warn("could not tag the parent run with its error", "run", k.runID, "error", err)
	}
	if err := k.t.EndRun(ctx, k.runID, "FAILED", k.now()); err != nil {
		k.o.Logger.Warn("could not mark the parent run failed", "run", k.runID, "error", err)
	}
}
