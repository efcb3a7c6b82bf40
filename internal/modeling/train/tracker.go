package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunedb"
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
		if err := k.artifactDir(runs[0].Info.ArtifactURI); err != nil {
			return err
		}
		k.noteJoin(ctx)
		return nil
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

// noteJoin logs that a resumed study has trials running in another
// process: this one joins it (tune runs a study's trials in several
// processes), which is legitimate, and is not refused. Trials whose
// heartbeat is too old are failed first, by the study's own rule, so the
// running ones left are live (or of a process killed less than two
// heartbeats ago, which cannot be told apart yet). Only a note: what it
// cannot read is left to the study to report.
func (k *tracker) noteJoin(ctx context.Context) {
	if k.o.DB == nil {
		return
	}
	st := tunedb.New(k.o.DB)
	dir := tune.Minimize
	if k.o.Spec.Maximize() {
		dir = tune.Maximize
	}
	// The study's name as runStudy opens it.
	id, err := st.CreateStudy(ctx, k.o.Spec.Name+"/"+k.runID, dir)
	if err != nil {
		return
	}
	now := time.Now()
	if _, err := st.FailStale(ctx, id, now.Add(-2*finishHeartbeat), now); err != nil {
		return
	}
	refs, err := st.TrialRefs(ctx, id)
	if err != nil {
		return
	}
	running := 0
	for _, r := range refs {
		if r.State == tune.Running {
			running++
		}
	}
	if running > 0 {
		// A warning, shown by default: a second process may be a mistake.
		k.o.Logger.Warn("--resume joins a live study: another process is running its trials; this one runs trials beside it, "+
			"and once the budget is reached the first process done finishes the study (refit, test, registration, promotion) while the other stops",
			"study", k.o.Spec.Name, "run", k.runID, "running", running)
	}
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
	// The model directory (with model.lgb for a GBDT: serving.MLmodelFiles)
	// is stored by registering it, or by PutModelDir without a register
	// block, below.
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

// finishHeartbeat is how often the process finishing a study says, in its
// finishing claim, that it is alive; a claim without a heartbeat for twice
// that is of a dead process and is taken over. It is tune's default trial
// heartbeat, which runStudy's study uses. A variable for tests.
var finishHeartbeat = 10 * time.Second

// attrFinisher is the user attribute of a finishing claim naming its
// process.
const attrFinisher = "finisher"

// finishClaim is the right to finish a study (refit, test, register,
// promote, end the parent run): several processes may run the trials of
// one study (one started it, others joined with --resume), and each gets
// to the end of the trials once the budget is reached, but only one may
// publish a model. The claim is the single trial of a study of budget 1
// in the tune storage all of them share ("NAME/RUNID/finish"): the storage
// creates trials in a transaction that locks the study's row, so exactly
// one process gets it. The holder heartbeats it; a holder that died
// (killed while refitting) leaves a claim whose heartbeat goes stale,
// failed as stale (which frees its place in the budget) by the next
// claimant, a later --resume.
type finishClaim struct {
	st               tune.Storage
	studyID, trialID int64
	stop             func()
	log              *slog.Logger
	// other, when set, is the process holding the claim ("process 1234 on
	// host"; "another process" when it has not named itself yet), and
	// otherState how far it is: finishing, finished, or failed.
	other, otherState string
}

// claimFinish claims the finishing of the study for this process, or says
// which process holds it. A study kept in memory (no DB) has no other
// process: the claim is always this one's.
func (k *tracker) claimFinish(ctx context.Context) (*finishClaim, error) {
	if k.o.DB == nil || k.runID == "" {
		return &finishClaim{}, nil
	}
	st := tunedb.New(k.o.DB)
	name := k.o.Spec.Name + "/" + k.runID + "/finish"
	id, err := st.CreateStudy(ctx, name, tune.Minimize)
	if err != nil {
		return nil, fmt.Errorf("claim the finishing of study %s: %w", k.o.Spec.Name, err)
	}
	now := time.Now()
	if _, err := st.FailStale(ctx, id, now.Add(-2*finishHeartbeat), now); err != nil {
		return nil, fmt.Errorf("claim the finishing of study %s: %w", k.o.Spec.Name, err)
	}
	ref, err := st.CreateTrial(ctx, id, 1, now)
	if errors.Is(err, tune.ErrBudget) {
		return k.finisher(ctx, st, id)
	}
	if err != nil {
		return nil, fmt.Errorf("claim the finishing of study %s: %w", k.o.Spec.Name, err)
	}
	c := &finishClaim{st: st, studyID: id, trialID: ref.ID, log: k.o.Logger}
	if err := st.SetAttr(ctx, ref.ID, tune.UserAttr, attrFinisher, thisProcess()); err != nil {
		// Not fatal: the claim is held all the same; others name no process.
		k.o.Logger.Warn("could not name this process in the study's finishing claim", "error", err)
	}
	c.stop = c.beat(ctx)
	return c, nil
}

// finisher describes the process holding the study's finishing claim.
func (k *tracker) finisher(ctx context.Context, st tune.Storage, id int64) (*finishClaim, error) {
	trials, err := st.Trials(ctx, id, nil)
	if err != nil {
		return nil, fmt.Errorf("read the finishing claim of study %s: %w", k.o.Spec.Name, err)
	}
	c := &finishClaim{other: "another process", otherState: "finishing"}
	for _, f := range trials {
		if !tune.CountsTowardBudget(f.State, f.SystemAttrs) {
			continue
		}
		if by := f.UserAttrs[attrFinisher]; by != "" {
			c.other = by
		}
		switch f.State {
		case tune.Complete:
			c.otherState = "finished"
		case tune.Failed:
			c.otherState = "failed: " + f.Err
		}
	}
	return c, nil
}

// beat heartbeats the claim until the returned func is called.
func (c *finishClaim) beat(ctx context.Context) func() {
	return tune.KeepAlive(ctx, c.st, c.trialID, finishHeartbeat, func(err error) {
		c.log.Warn("heartbeat of the study's finishing claim", "error", err)
	})
}

// end records how the finishing went: complete; failed (the parent run
// was ended FAILED, and no other process is to finish it); or, when ctx
// was cancelled (the parent run stays RUNNING for --resume), freed, by
// failing the claim as stale, the one way a trial stops counting toward
// the budget, so that the process resuming the study can claim it.
func (c *finishClaim) end(ctx context.Context, cause error) {
	if c.st == nil {
		return
	}
	c.stop()
	interrupted := ctx.Err() != nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := time.Now()
	var err error
	switch {
	case cause == nil:
		err = c.st.FinishTrial(ctx, c.trialID, tune.Complete, 0, "", now)
	case interrupted:
		// The claim's study holds this trial alone (budget 1).
		_, err = c.st.FailStale(ctx, c.studyID, now.Add(time.Second), now)
	default:
		err = c.st.FinishTrial(ctx, c.trialID, tune.Failed, math.NaN(), truncate(cause.Error(), 5000), now)
	}
	if err != nil {
		c.log.Warn("could not record the end of the study's finishing claim", "error", err)
	}
}

// thisProcess names this process for the others working on the study.
func thisProcess() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "this host"
	}
	return fmt.Sprintf("process %d on %s", os.Getpid(), host)
}
