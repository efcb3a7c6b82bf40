package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving/register"
	"github.com/atrium-ml/atrium/internal/serving/servingtest"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// testFeatures are the marketplace's feature definitions.
const testFeatures = "testdata/features.yaml"

// project is a small marketplace: 200 listings whose hidden utility is
// quality - price/100 plus a city effect, and 600 sessions over 30 days,
// each showing 8 listings, the label the relevance (0-3) the utility gives.
type project struct {
	dir    string
	eng    offline.Engine
	feats  *spec.Features
	stores register.Stores
}

func newProject(t *testing.T) *project {
	t.Helper()
	ctx := context.Background()
	src, err := os.ReadFile(testFeatures)
	if err != nil {
		t.Fatal(err)
	}
	f, err := spec.ParseFeatures(testFeatures, src)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := duckdb.Open(ctx, t.TempDir(), offline.Options{Features: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	rng := rand.New(rand.NewPCG(7, 7))
	const listings = 200
	utility := make([]float64, listings)
	cities := []string{"paris", "lyon", "nice"}
	var rows []offline.LatestRow
	day0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range listings {
		q, p, c := rng.Float64(), 50+rng.Float64()*100, cities[i%3]
		utility[i] = 2*q - p/100 + map[string]float64{"paris": 0.3, "lyon": 0, "nice": -0.3}[c]
		rows = append(rows, offline.LatestRow{Key: []any{int64(i)}, TS: day0, Values: []any{q, p, c}})
	}
	if err := eng.Append(ctx, "listing_stats", rows); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("session_id,listing_id,ts,relevance\n")
	for s := range 600 {
		ts := day0.Add(24*time.Hour + time.Duration(s)*30*24*time.Hour/600)
		for range 8 {
			l := rng.IntN(listings)
			u := utility[l] + rng.NormFloat64()*0.3
			rel := min(max(int(math.Floor(u*2+1)), 0), 3)
			fmt.Fprintf(&b, "s%d,%d,%s,%d\n", s, l, ts.Format("2006-01-02 15:04:05"), rel)
		}
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "sessions.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	st := servingtest.Open(t)
	return &project{dir: dir, eng: eng, feats: f, stores: register.Stores{Tracking: st.Tracking, Registry: st.Registry, Artifacts: st.Artifacts}}
}

const rankerSpec = `name: ranker
features: {service: ranker}
spine: {path: data/sessions.csv, timestamp: ts, label: relevance, group: session_id}
split: {by: time, valid: 5d, test: 5d}
model: {kind: gbdt, objective: lambdarank, params: {num_iterations: 40, early_stopping_round: 10, min_data_in_leaf: 5}}
tune:
  trials: 6
  parallel: 2
  seed: 3
  pruner: median
  metric: ndcg@5
  space:
    num_leaves: {int: [4, 31], log: true}
    learning_rate: {float: [0.05, 0.3], log: true}
register: {model: ranker, alias: challenger, promote: {alias: champion, if_better_by: MARGIN}}
`

// spec writes a spec file into the project and loads it.
func (p *project) spec(t *testing.T, name, src string) *spec.Training {
	t.Helper()
	path := filepath.Join(p.dir, "training", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := spec.LoadTraining(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (p *project) run(t *testing.T, s *spec.Training, dry bool) (*Result, error) {
	t.Helper()
	return Run(context.Background(), Options{Spec: s, Dir: p.dir, Features: p.feats, CatalogVersion: 3,
		SetVersions: map[string]int{"listing_stats": 2}, Engine: p.eng, Tracker: p.stores, DryRun: dry, Threads: 2})
}

// TestRunTunesRegistersAndGates trains the ranker through the whole
// orchestrator: a first run registers version 1 and, with no champion yet,
// promotes it; a weak model made champion by hand is replaced by the next
// run (the gate one way); a run whose margin no model can reach leaves the
// champion where it is (the other way), and the dry run writes nothing.
func TestRunTunesRegistersAndGates(t *testing.T) {
	ctx := context.Background()
	p := newProject(t)
	s := p.spec(t, "ranker.yaml", strings.Replace(rankerSpec, "MARGIN", "0.002", 1))
	res, err := p.run(t, s, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Trials != 6 || res.Complete+res.Pruned+res.Failed != 6 || res.Complete == 0 {
		t.Errorf("trials %d (complete %d, pruned %d, failed %d), want 6", res.Trials, res.Complete, res.Pruned, res.Failed)
	}
	if res.Registered == nil || res.Registered.Version != "1" || !res.Decision.Promote || res.Champion != nil {
		t.Fatalf("first run: registered %+v decision %+v champion %+v", res.Registered, res.Decision, res.Champion)
	}
	if res.TestMetric < 0.7 || res.ValidMetric < 0.7 {
		t.Errorf("test ndcg@5 %v, valid %v: the ranker did not learn the utility", res.TestMetric, res.ValidMetric)
	}
	t.Logf("first run: %d trials (%d pruned), best %v valid %.4f test %.4f, rows %d/%d/%d dropped %d",
		res.Trials, res.Pruned, res.BestParams, res.ValidMetric, res.TestMetric, res.TrainRows, res.ValidRows, res.TestRows, res.Dropped)
	checkChampion(t, p, "1")
	checkLineage(t, p, res)

	// A weak champion: one tree of two leaves on the price alone.
	weak := fitWeak(t, p)
	reg, err := register.Model(ctx, p.stores, weak, register.Options{Name: "ranker", Alias: "champion"})
	if err != nil {
		t.Fatal(err)
	}
	res, err = p.run(t, s, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Champion == nil || res.Champion.Version != reg.Version || !res.Decision.Promote || res.Champion.TestMetric >= res.TestMetric {
		t.Fatalf("over a weak champion: champion %+v decision %+v test %v", res.Champion, res.Decision, res.TestMetric)
	}
	checkChampion(t, p, res.Registered.Version)

	s = p.spec(t, "ranker.yaml", strings.Replace(rankerSpec, "MARGIN", "0.5", 1))
	res, err = p.run(t, s, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision.Promote || res.Champion == nil || !strings.Contains(res.Decision.Reason, "does not beat") {
		t.Fatalf("margin 0.5: decision %+v champion %+v", res.Decision, res.Champion)
	}
	checkChampion(t, p, "3") // the version of the run before
	if v, err := p.stores.Registry.GetVersionByAlias(ctx, "ranker", "challenger"); err != nil || v.Version != "4" {
		t.Errorf("challenger: %v %v, want version 4", v, err)
	}

	checkDryRun(t, p, s)
}

// checkDryRun runs s dry after the gate's runs: it plans on the real data
// (rows counted per split, the champion read) and trains, tracks and
// registers nothing.
func checkDryRun(t *testing.T, p *project, s *spec.Training) {
	t.Helper()
	ctx := context.Background()
	runs := func() int {
		rs, _, err := p.stores.Tracking.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"1"}, MaxResults: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	before := runs()
	dry, err := p.run(t, s, true)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Registered != nil || dry.RunID != "" || dry.Trials != 0 || dry.BestParams != nil || dry.Decision.Promote {
		t.Errorf("dry run: registered %+v run %q trials %d best %v decision %+v", dry.Registered, dry.RunID, dry.Trials, dry.BestParams, dry.Decision)
	}
	if dry.Fingerprint.Rows != 4800 || dry.TrainRows == 0 || dry.ValidRows == 0 || dry.TestRows == 0 ||
		dry.TrainRows+dry.ValidRows+dry.TestRows+dry.Dropped != 4800 {
		t.Errorf("dry run rows: %d (train %d valid %d test %d dropped %d), want the 4800 counted per split",
			dry.Fingerprint.Rows, dry.TrainRows, dry.ValidRows, dry.TestRows, dry.Dropped)
	}
	want := Plan{Model: "gbdt lambdarank", Split: "by time: valid the 5d before test, test the last 5d", Trials: 6, Parallel: 2,
		Sampler: "tpe", Pruner: "median", Space: []string{"num_leaves int [4, 31] log", "learning_rate float [0.05, 0.3] log"},
		Metric: "ndcg@5", Maximize: true, Experiment: "ranker", Register: "ranker", Alias: "challenger",
		Promote: "champion", IfBetterBy: 0.5, Champion: "3"}
	if got := dry.Plan; got == nil {
		t.Fatal("dry run without a plan")
	} else {
		got.Params = nil
		if got.ChampionTestMetric == nil {
			t.Error("plan without the champion's test metric")
		}
		got.ChampionTestMetric = nil
		if fmt.Sprint(*got) != fmt.Sprint(want) {
			t.Errorf("plan\n%+v\nwant\n%+v", *got, want)
		}
	}
	if n := runs(); n != before {
		t.Errorf("runs after the dry run: %d, want %d (none created)", n, before)
	}
	vs, _, err := p.stores.Registry.SearchModelVersions(ctx, registry.VersionQuery{Filter: "name = 'ranker'"})
	if err != nil || len(vs) != 4 {
		t.Errorf("versions after the dry run: %d (%v), want 4", len(vs), err)
	}
	checkChampion(t, p, "3")
}

// fitWeak fits a ranker that ranks by price alone (one tree of two
// leaves fitted on random labels): a champion any tuned model beats.
func fitWeak(t *testing.T, p *project) *modelfile.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	ds := &ml.Dataset{Columns: []ml.Column{{Name: "price", Kind: ml.Numeric}}}
	for range 50 {
		for range 4 {
			ds.Columns[0].Values = append(ds.Columns[0].Values, float32(50+rng.Float64()*100))
			ds.Label = append(ds.Label, float64(rng.IntN(4)))
		}
		ds.Groups = append(ds.Groups, 4)
	}
	m, err := fit.Fit(context.Background(), fit.Options{Label: "y", Group: "g", Task: "lambdarank",
		Params: map[string]string{"num_iterations": "1", "num_leaves": "2", "min_data_in_leaf": "1"}}, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkChampion(t *testing.T, p *project, want string) {
	t.Helper()
	v, err := p.stores.Registry.GetVersionByAlias(context.Background(), "ranker", "champion")
	if err != nil || v.Version != want {
		t.Fatalf("champion: %v %v, want version %s", v, err, want)
	}
}

// checkLineage checks the registered version's lineage tags, the parent
// run's artifacts and its child runs.
func checkLineage(t *testing.T, p *project, res *Result) {
	t.Helper()
	ctx := context.Background()
	v, err := p.stores.Registry.GetModelVersion(ctx, "ranker", res.Registered.Version)
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, kv := range v.Tags {
		tags[kv.Key] = kv.Value
	}
	want := map[string]string{
		"atrium.feature_service": "ranker", TagFeatures: "listing_stats:quality,listing_stats:price,listing_stats:city",
		TagFeatureVersions: `{"listing_stats":2}`, TagReferenceProfile: ReferenceProfilePath,
		TagTrainingRows: "4800", TagTrainingStart: "2024-01-02T00:00:00Z",
	}
	for k, w := range want {
		if tags[k] != w {
			t.Errorf("version tag %s = %q, want %q", k, tags[k], w)
		}
	}
	if !strings.HasPrefix(tags[TagTrainingHash], "sha256:") || tags[TagTestPrefix+"ndcg@5"] == "" || tags[TagTrainingEnd] == "" {
		t.Errorf("version tags %v: want a hash, an end and atrium.test.ndcg@5", tags)
	}
	run, err := p.stores.Tracking.GetRun(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.Status != "FINISHED" || v.RunID != res.RunID {
		t.Errorf("parent run %s status %s, version's run %s", res.RunID, run.Info.Status, v.RunID)
	}
	dir, _ := tracking.ProxiedPath(run.Info.ArtifactURI)
	prof := readProfile(t, p, res.RunID)
	if prof.Rows != 4800 || len(prof.Columns) != 3 || prof.Prediction == nil || prof.Prediction.Count != int64(res.ValidRows) {
		t.Errorf("profile rows %d columns %d prediction %+v, want 4800, 3, %d predictions", prof.Rows, len(prof.Columns), prof.Prediction, res.ValidRows)
	}
	for _, a := range []string{"model/MLmodel", "model/model.json", "model/model.lgb", "spec/ranker.yaml", "fingerprint.json",
		"plots/learning_curves.png", "plots/param_importance.png", "plots/feature_importance.png", "plots/gain.png"} {
		rc, err := p.stores.Artifacts.Get(ctx, dir+"/"+a)
		if err != nil {
			t.Errorf("artifact %s: %v", a, err)
			continue
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		if strings.HasSuffix(a, ".png") && !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", a)
		}
		if os.Getenv("ATRIUM_TRAIN_PLOTS") != "" { // look at them: ATRIUM_TRAIN_PLOTS=/tmp/dir
			_ = os.WriteFile(filepath.Join(os.Getenv("ATRIUM_TRAIN_PLOTS"), filepath.Base(a)), data, 0o644)
		}
		if a == "model/model.lgb" && !bytes.HasPrefix(data, []byte("tree\n")) {
			t.Errorf("model.lgb starts %q, want LightGBM's text format", data[:min(len(data), 20)])
		}
	}
	children, _, err := p.stores.Tracking.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{run.Info.ExperimentID},
		Filter: fmt.Sprintf("tags.`mlflow.parentRunId` = '%s'", res.RunID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(children) != res.Trials {
		t.Fatalf("%d child runs, want one per trial (%d)", len(children), res.Trials)
	}
	for _, c := range children {
		state := ""
		for _, kv := range c.Data.Tags {
			if kv.Key == TagTrialState {
				state = kv.Value
			}
		}
		wantStatus := map[string]string{"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}[state]
		if wantStatus == "" || c.Info.Status != wantStatus || len(c.Data.Params) < 2 {
			t.Errorf("child run %s: state %q status %s params %d", c.Info.RunID, state, c.Info.Status, len(c.Data.Params))
		}
	}
}

// readProfile reads the reference profile in the artifacts of run id.
func readProfile(t *testing.T, p *project, id string) *profile.Profile {
	t.Helper()
	ctx := context.Background()
	run, err := p.stores.Tracking.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := tracking.ProxiedPath(run.Info.ArtifactURI)
	rc, err := p.stores.Artifacts.Get(ctx, dir+"/"+ReferenceProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	prof, err := profile.Decode(rc)
	if err != nil {
		t.Fatal(err)
	}
	return prof
}

// TestRunKFoldProfile checks the reference profile's prediction
// distribution of a k-fold study: the out-of-fold predictions of every
// fold, one per row outside the test split, not only the last fold's.
func TestRunKFoldProfile(t *testing.T) {
	p := newProject(t)
	src := strings.Replace(strings.Replace(rankerSpec, "MARGIN", "0", 1), "{by: time, valid: 5d, test: 5d}", "{kfold: 3, test: 0.2, seed: 2}", 1)
	src = strings.Replace(src, "trials: 6", "trials: 2", 1)
	res, err := p.run(t, p.spec(t, "ranker.yaml", src), false)
	if err != nil {
		t.Fatal(err)
	}
	prof := readProfile(t, p, res.RunID)
	if want := int64(4800 - res.TestRows); prof.Prediction == nil || prof.Prediction.Count != want || res.TestRows == 0 {
		t.Errorf("k-fold profile prediction %+v (test rows %d), want the %d out-of-fold predictions", prof.Prediction, res.TestRows, want)
	}
}

// TestRunWithoutRegister: without a register block the model stays in the
// parent run, which holds the best parameters as params as it does when
// the model is registered.
func TestRunWithoutRegister(t *testing.T) {
	p := newProject(t)
	src := strings.Replace(rankerSpec, "register: {model: ranker, alias: challenger, promote: {alias: champion, if_better_by: MARGIN}}\n", "", 1)
	res, err := p.run(t, p.spec(t, "ranker.yaml", strings.Replace(src, "trials: 6", "trials: 2", 1)), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Registered != nil {
		t.Fatalf("registered %+v without a register block", res.Registered)
	}
	run, err := p.stores.Tracking.GetRun(context.Background(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for _, kv := range run.Data.Params {
		params[kv.Key] = kv.Value
	}
	if params["task"] != "lambdarank" || params["num_leaves"] != res.BestParams["num_leaves"] || params["learning_rate"] == "" || run.Info.Status != "FINISHED" {
		t.Errorf("parent run %s (%s): params %v, want the task and the best parameters %v", res.RunID, run.Info.Status, params, res.BestParams)
	}
}

// TestRunRemovesTrainingSetEarly checks that the temporary training set
// file is gone once the set is loaded, before the trials: a study killed
// hours later (SIGKILL, out of memory) leaves no copy of it behind.
func TestRunRemovesTrainingSetEarly(t *testing.T) {
	p := newProject(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	seen := &tempWatch{dir: tmp}
	s := p.spec(t, "ranker.yaml", strings.Replace(strings.Replace(rankerSpec, "trials: 6", "trials: 2", 1), "MARGIN", "0", 1))
	_, err := Run(context.Background(), Options{Spec: s, Dir: p.dir, Features: p.feats, Engine: p.eng, Tracker: p.stores,
		Threads: 2, Logger: slog.New(seen)})
	if err != nil {
		t.Fatal(err)
	}
	if !seen.checked {
		t.Fatal(`no "training set" log line: the check never ran`)
	}
	if len(seen.left) > 0 {
		t.Errorf("after loading the training set, the temporary directory still holds %v", seen.left)
	}
}

// tempWatch is a slog handler that lists dir's entries when the
// orchestrator logs the loaded training set.
type tempWatch struct {
	dir     string
	checked bool
	left    []string
}

func (w *tempWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *tempWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *tempWatch) WithGroup(string) slog.Handler            { return w }
func (w *tempWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "training set" {
		return nil
	}
	w.checked = true
	entries, err := os.ReadDir(w.dir)
	for _, e := range entries {
		w.left = append(w.left, e.Name())
	}
	return err
}

// TestRunBadInput checks that problems with what the spec names are
// reported at the spec's lines before any training.
func TestRunBadInput(t *testing.T) {
	p := newProject(t)
	for _, c := range []struct {
		name, from, to, want string
	}{
		{"label missing", "label: relevance", "label: clicked", `ranker.yaml:3: spine.label "clicked" is not a column`},
		{"service missing", "{service: ranker}", "{service: rank}", `ranker.yaml:2: feature service "rank" is not defined`},
		{"empty test split", "valid: 5d, test: 5d", "valid: 5d, test: 60d", "ranker.yaml:4: split: the train part has no rows"},
		{"spine missing", "data/sessions.csv", "data/nope.csv", "ranker.yaml:3: spine data/nope.csv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(rankerSpec, "MARGIN", "0", 1), c.from, c.to, 1)
			_, err := p.run(t, p.spec(t, "ranker.yaml", src), true)
			if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want ErrSpec containing %q", err, c.want)
			}
		})
	}
}

// TestRunResume starts a study of 5 trials kept in the metadata database,
// cancels it once 2 trials finished (its parent run stays RUNNING, as a
// killed run leaves it), and resumes it: the same parent run ends with the 5
// trials of the budget, numbered 0-4, each that ran a child run.
func TestRunResume(t *testing.T) {
	p, ts, opts := resumeProject(t)
	opts.Spec = p.spec(t, "ranker.yaml", strings.Replace(strings.Replace(rankerSpec, "MARGIN", "0", 1), "trials: 6", "trials: 5", 1))
	children := func(ctx context.Context, parent string) []tracking.Run {
		runs, _, err := ts.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"1"},
			Filter: "tags.`mlflow.parentRunId` = '" + parent + "' and attributes.status != 'RUNNING'"})
		if err != nil && ctx.Err() == nil {
			t.Error(err)
		}
		return runs
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // the kill: once two trials are recorded
		defer cancel()
		for ctx.Err() == nil {
			runs, _, _ := ts.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"1"}, Filter: "tags.`atrium.study` = 'ranker'"})
			if len(runs) == 1 && len(children(ctx, runs[0].Info.RunID)) >= 2 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// Any error: a cancel during a storage call may come back as that
	// call's error rather than context.Canceled (as interrupt accepts).
	if _, err := Run(ctx, opts); err == nil {
		t.Fatal("the cancelled run succeeded")
	}
	opts.Resume = true
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Trials != 5 || res.Registered == nil {
		t.Fatalf("resumed run: %d trials, registered %+v", res.Trials, res.Registered)
	}
	numbers := map[string]bool{}
	kids := children(context.Background(), res.RunID)
	for _, c := range kids {
		for _, kv := range c.Data.Tags {
			if kv.Key == "atrium.trial.number" {
				numbers[kv.Value] = true
			}
		}
	}
	// A trial the cancel stopped before its run was created has none; every
	// trial that completed or was pruned has one, and no number is used twice.
	for n := range numbers {
		if k, err := strconv.Atoi(n); err != nil || k < 0 || k > 4 {
			t.Errorf("child run of trial %q, want 0-4", n)
		}
	}
	if len(kids) < res.Complete+res.Pruned || len(numbers) != len(kids) || !numbers["0"] || !numbers["4"] {
		t.Errorf("%d child runs of the resumed parent with trial numbers %v, %d trials complete or pruned: want one run per trial, 0 to 4",
			len(kids), numbers, res.Complete+res.Pruned)
	}
}

// TestRunFailedTrials searches two parameters one combination of whose
// values the learner refuses (each value alone is fine, so the spec is
// valid): that trial fails with the learner's reason, recorded in its
// child run, and the study goes on to a model from the others.
func TestRunFailedTrials(t *testing.T) {
	p := newProject(t)
	src := strings.Replace(strings.Replace(rankerSpec, "MARGIN", "0", 1), "    learning_rate: {float: [0.05, 0.3], log: true}\n",
		"    is_unbalance: {choice: [\"true\", \"false\"]}\n", 1)
	src = strings.Replace(strings.Replace(src, "sampler: tpe\n", "", 1), "  seed: 3\n", "  seed: 3\n  sampler: grid\n", 1)
	s := p.spec(t, "ranker.yaml", strings.Replace(src, "num_leaves: {int: [4, 31], log: true}", "scale_pos_weight: {choice: [\"1\", \"2\"]}", 1))
	res, err := p.run(t, s, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || res.Complete+res.Pruned != 3 || res.BestParams["is_unbalance"] == "true" && res.BestParams["scale_pos_weight"] == "2" {
		t.Fatalf("grid of 4: %d failed, %d complete, %d pruned, best %v; want the trial of is_unbalance with scale_pos_weight 2 failed", res.Failed, res.Complete, res.Pruned, res.BestParams)
	}
	runs, _, err := p.stores.Tracking.SearchRuns(context.Background(), tracking.RunQuery{ExperimentIDs: []string{"1"},
		Filter: "tags.`atrium.trial.state` = 'failed'"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		reason := ""
		for _, kv := range r.Data.Tags {
			if kv.Key == "atrium.trial.error" {
				reason = kv.Value
			}
		}
		if r.Info.Status != "FAILED" || !strings.Contains(reason, "is_unbalance") {
			t.Errorf("failed trial run %s: status %s, reason %q", r.Info.RunID, r.Info.Status, reason)
		}
	}
	if len(runs) != 1 {
		t.Errorf("%d failed trial runs, want 1", len(runs))
	}
}
