package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/modeling/train"
	"github.com/atrium-ml/atrium/internal/platform/proctest"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving/register"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// trainProject writes a small marketplace project (the training package's
// test data, smaller): 150 listings whose hidden utility is quality -
// price/100 plus a city effect, a feature set of their attributes, and 300
// sessions over 30 days of 6 listings each, labelled with the relevance
// (0-3) the utility gives. The features (the training package's
// testdata/features.yaml) are applied and run.
func trainProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	const listings = 150
	utility := make([]float64, listings)
	cities := []string{"paris", "lyon", "nice"}
	var ls strings.Builder
	ls.WriteString("listing_id,ts,quality,price,city\n")
	for i := range listings {
		q, p, c := rng.Float64(), 50+rng.Float64()*100, cities[i%3]
		utility[i] = 2*q - p/100 + map[string]float64{"paris": 0.3, "lyon": 0, "nice": -0.3}[c]
		fmt.Fprintf(&ls, "%d,2024-01-01 00:00:00,%g,%g,%s\n", i, q, p, c)
	}
	var ss strings.Builder
	ss.WriteString("session_id,listing_id,ts,relevance\n")
	day0 := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	for s := range 300 {
		ts := day0.Add(time.Duration(s) * 30 * 24 * time.Hour / 300)
		for range 6 {
			l := rng.IntN(listings)
			rel := min(max(int(math.Floor((utility[l]+rng.NormFloat64()*0.3)*2+1)), 0), 3)
			fmt.Fprintf(&ss, "s%d,%d,%s,%d\n", s, l, ts.Format("2006-01-02 15:04:05"), rel)
		}
	}
	copyFile(t, filepath.Join("..", "..", "internal", "modeling", "train", "testdata", "features.yaml"), filepath.Join(dir, "features", "marketplace.yaml"))
	for name, data := range map[string]string{"data/listings.csv": ls.String(), "data/sessions.csv": ss.String()} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustAtrium(t, dir, "apply")
	mustAtrium(t, dir, "run", "listing_stats", "--start", "2024-01-01", "--end", "2024-01-01")
	return dir
}

// trainSpecFile writes training/ranker.yaml with the promotion margin.
func trainSpecFile(t *testing.T, dir string, margin float64) string {
	t.Helper()
	src := fmt.Sprintf(`name: ranker
features: {service: ranker}
spine: {path: data/sessions.csv, timestamp: ts, label: relevance, group: session_id}
split: {by: time, valid: 5d, test: 5d}
model: {kind: gbdt, objective: lambdarank, params: {num_iterations: 20, min_data_in_leaf: 5}}
tune:
  trials: 3
  parallel: 1
  seed: 3
  metric: ndcg@5
  space:
    num_leaves: {int: [4, 15]}
register: {model: ranker, alias: challenger, promote: {alias: champion, if_better_by: %g}}
`, margin)
	path := filepath.Join(dir, "training", "ranker.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// searchRuns returns the server's runs of the experiment matching filter.
func searchRuns(t *testing.T, base, expID, filter string) []tracking.Run {
	t.Helper()
	var got struct{ Runs []tracking.Run }
	mlflowCall(t, base, http.MethodPost, "/api/2.0/mlflow/runs/search", map[string]any{"experiment_ids": []string{expID}, "filter": filter}, &got)
	return got.Runs
}

func tagMap(kvs []tracking.KV) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestTrainTrackingURI trains a spec of one project with --tracking-uri
// pointing at a real `atrium serve` of another: the parent run, the trial
// child runs, the reference profile, the registered version with its
// lineage and the aliases are on the server, and the training project's
// own tracking store and registry hold nothing. A second run, resumed into
// a parent run found on the server by its study tag, with a margin no model
// reaches, is gated against the server's champion and keeps it.
func TestTrainTrackingURI(t *testing.T) {
	dir := trainProject(t)
	srv := proctest.StartServer(t, nil, []string{mainEnv + "=1"}, os.Args[0], "--repo", t.TempDir(), "serve", "--addr", "127.0.0.1:0")
	spec := trainSpecFile(t, dir, 0)

	code, _, errOut := atrium(t, "--repo", dir, "train", spec, "--tracking-uri", "localhost:5000")
	if code != exitUsage || !strings.Contains(errOut, `--tracking-uri "localhost:5000": want the http(s) URL`) {
		t.Errorf("a bad --tracking-uri: exit %d, stderr %s", code, errOut)
	}

	var res train.Result
	out := mustAtrium(t, dir, "-o", "json", "train", spec, "--tracking-uri", srv.URL)
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Registered == nil || res.Registered.Version != "1" || !res.Decision.Promote || res.Trials != 3 {
		t.Fatalf("first run: %s", out)
	}
	var exp struct{ Experiment tracking.Experiment }
	mlflowCall(t, srv.URL, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=ranker", nil, &exp)
	expID := exp.Experiment.ExperimentID
	parents := searchRuns(t, srv.URL, expID, "tags.`atrium.study` = 'ranker'")
	if len(parents) != 1 || parents[0].Info.RunID != res.RunID || parents[0].Info.Status != "FINISHED" {
		t.Fatalf("the server's parent runs %+v, want run %s FINISHED", parents, res.RunID)
	}
	ptags := tagMap(parents[0].Data.Tags)
	if ptags[train.TagTrainingHash] != res.Fingerprint.Hash || ptags["atrium.promotion.promoted"] != "true" {
		t.Errorf("parent run tags %v", ptags)
	}
	children := searchRuns(t, srv.URL, expID, "tags.`mlflow.parentRunId` = '"+res.RunID+"'")
	if len(children) != 3 {
		t.Errorf("%d child runs of the parent on the server, want 3 trials", len(children))
	}
	for _, c := range children {
		if tags := tagMap(c.Data.Tags); tags[train.TagTrialState] == "" || len(c.Data.Params) == 0 {
			t.Errorf("trial run %s: tags %v, params %v", c.Info.RunID, tags, c.Data.Params)
		}
	}

	// The reference profile, through the server's artifact proxy.
	artDir, ok := tracking.ProxiedPath(parents[0].Info.ArtifactURI)
	if !ok {
		t.Fatalf("parent run's artifacts at %s", parents[0].Info.ArtifactURI)
	}
	resp, err := http.Get(srv.URL + "/api/2.0/mlflow-artifacts/artifacts/" + artDir + "/" + train.ReferenceProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := profile.Decode(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(prof.Columns) != 3 || prof.Prediction == nil {
		t.Fatalf("reference profile on the server: %d, %v", resp.StatusCode, err)
	}

	// The version, its lineage and the aliases.
	var v struct {
		ModelVersion registry.ModelVersion `json:"model_version"`
	}
	mlflowCall(t, srv.URL, http.MethodGet, "/api/2.0/mlflow/model-versions/get?name=ranker&version=1", nil, &v)
	vtags := tagMap(v.ModelVersion.Tags)
	if v.ModelVersion.RunID != res.RunID || vtags[train.TagTrainingHash] != res.Fingerprint.Hash ||
		vtags[train.TagFeatures] != "listing_stats:quality,listing_stats:price,listing_stats:city" ||
		vtags[train.TagReferenceProfile] != train.ReferenceProfilePath || vtags["atrium.feature_service"] != "ranker" {
		t.Errorf("version 1 of run %s, tags %v", v.ModelVersion.RunID, vtags)
	}
	alias := func(name string) string {
		var a struct {
			ModelVersion registry.ModelVersion `json:"model_version"`
		}
		mlflowCall(t, srv.URL, http.MethodGet, "/api/2.0/mlflow/registered-models/alias?name=ranker&alias="+url.QueryEscape(name), nil, &a)
		return a.ModelVersion.Version
	}
	if c, ch := alias("champion"), alias("challenger"); c != "1" || ch != "1" {
		t.Errorf("champion -> %s, challenger -> %s; want 1, 1", c, ch)
	}
	checkNothingTrackedLocally(t, dir)

	// --resume finds the unfinished parent run on the server by its tag
	// (one is planted: no run of the first was left RUNNING).
	var planted struct{ Run tracking.Run }
	mlflowCall(t, srv.URL, http.MethodPost, "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": expID,
		"tags": []tracking.KV{{Key: train.TagStudy, Value: "ranker"}}}, &planted)
	spec = trainSpecFile(t, dir, 0.5)
	out = mustAtrium(t, dir, "-o", "json", "train", spec, "--resume", "--tracking-uri", srv.URL)
	res = train.Result{}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.RunID != planted.Run.Info.RunID {
		t.Errorf("resumed into run %s, want the server's unfinished %s", res.RunID, planted.Run.Info.RunID)
	}
	if res.Champion == nil || res.Champion.Version != "1" || res.Decision.Promote || !strings.Contains(res.Decision.Reason, "does not beat champion version 1") {
		t.Fatalf("margin 0.5: champion %+v, decision %+v", res.Champion, res.Decision)
	}
	parents = searchRuns(t, srv.URL, expID, "attributes.run_id = '"+res.RunID+"'")
	if len(parents) != 1 {
		t.Fatalf("%d runs %s on the server", len(parents), res.RunID)
	}
	if got := tagMap(parents[0].Data.Tags)["atrium.promotion.decision"]; got != res.Decision.Reason {
		t.Errorf("the decision logged on the server: %q, want %q", got, res.Decision.Reason)
	}
	logged := false
	for _, m := range parents[0].Data.Metrics {
		logged = logged || m.Key == "champion_test_ndcg_at_5" && float64(m.Value) == res.Champion.TestMetric
	}
	if !logged {
		t.Errorf("the champion's test metric is not logged: %+v", parents[0].Data.Metrics)
	}
	if c, ch := alias("champion"), alias("challenger"); c != "1" || ch != "2" {
		t.Errorf("after the gated run: champion -> %s, challenger -> %s; want 1, 2", c, ch)
	}
	checkNothingTrackedLocally(t, dir)
}

// checkNothingTrackedLocally checks that the project in dir has no
// experiment ranker, no run and no registered model ranker of its own.
func checkNothingTrackedLocally(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	e := &env{ctx: ctx, stdout: io.Discard, stderr: io.Discard, repo: dir, log: slog.New(slog.DiscardHandler)}
	defer e.close()
	st, err := registryStores(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Tracking.GetExperimentByName(ctx, "ranker"); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("the local tracking store's experiment ranker: %v, want none", err)
	}
	if runs, _, err := st.Tracking.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{tracking.DefaultExpID}}); err != nil || len(runs) != 0 {
		t.Errorf("%d runs in the local tracking store (%v), want none", len(runs), err)
	}
	if _, err := st.Registry.GetRegisteredModel(ctx, "ranker"); !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("the local registry's model ranker: %v, want none", err)
	}
}

// TestTrainSummaryTrackingLine: the text summary names the tracking server
// a run went to, and only then.
func TestTrainSummaryTrackingLine(t *testing.T) {
	res := &train.Result{Study: "ranker", Metric: "auc", Maximize: true, RunID: "abc",
		Registered: &register.Result{Name: "ranker", Version: "2", RunID: "abc"}}
	for _, c := range []struct {
		server string
		want   string // "" for no tracking line
	}{
		{"http://mlflow.internal:8080", "tracking    http://mlflow.internal:8080\nregistered  ranker version 2 (run abc)\n"},
		{"", ""},
	} {
		var b strings.Builder
		if err := writeTrainSummary(&b, "text", res, c.server); err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(b.String(), "tracking ")
		if (c.want == "" && has) || (c.want != "" && !strings.Contains(b.String(), c.want)) {
			t.Errorf("server %q: summary\n%s\nwant %q", c.server, b.String(), c.want)
		}
	}
}

// TestTrainTrackingURIAuth: against a server that requires authentication
// (a token exists), `atrium train --tracking-uri` without credentials, or
// with a wrong token, fails saying so and registers nothing; with MLFLOW_TRACKING_TOKEN, or
// MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD carrying the token,
// it tracks and registers as the token's principal.
func TestTrainTrackingURIAuth(t *testing.T) {
	dir := trainProject(t)
	srvDir := t.TempDir()
	code, tok, errOut := atrium(t, "--repo", srvDir, "token", "create", "--name", "trainer", "--role", "editor", "--expires", "1d")
	if code != exitOK {
		t.Fatalf("token create = %d %q", code, errOut)
	}
	tok = strings.TrimSpace(tok)
	srv := proctest.StartServer(t, nil, []string{mainEnv + "=1"}, os.Args[0], "--repo", srvDir, "serve", "--addr", "127.0.0.1:0")
	spec := trainSpecFile(t, dir, 0)
	for _, env := range []string{"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} {
		t.Setenv(env, "")
	}

	code, _, errOut = atrium(t, "--repo", dir, "train", spec, "--tracking-uri", srv.URL)
	if code == exitOK || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "no credentials sent: set MLFLOW_TRACKING_TOKEN") {
		t.Fatalf("train without credentials: exit %d, stderr %s; want a failure naming the 401 and the variables to set", code, errOut)
	}
	t.Setenv("MLFLOW_TRACKING_TOKEN", "atr_not_a_token")
	code, _, errOut = atrium(t, "--repo", dir, "train", spec, "--tracking-uri", srv.URL)
	if code == exitOK || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "credentials sent") || !strings.Contains(errOut, "were refused") {
		t.Fatalf("train with a wrong token: exit %d, stderr %s; want a failure saying the credentials were refused", code, errOut)
	}
	t.Setenv("MLFLOW_TRACKING_TOKEN", "")

	for i, creds := range []map[string]string{
		{"MLFLOW_TRACKING_TOKEN": tok},
		{"MLFLOW_TRACKING_USERNAME": "anyone", "MLFLOW_TRACKING_PASSWORD": tok},
	} {
		for k, v := range creds {
			t.Setenv(k, v)
		}
		var res train.Result
		out := mustAtrium(t, dir, "-o", "json", "train", spec, "--tracking-uri", srv.URL)
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if want := strconv.Itoa(i + 1); res.Registered == nil || res.Registered.Version != want {
			t.Fatalf("with %v: registered %+v, want version %s", slices.Collect(maps.Keys(creds)), res.Registered, want)
		}
		for k := range creds {
			t.Setenv(k, "")
		}
	}
}

// TestTrainTrackingURIKilled kills (SIGKILL) an `atrium train
// --tracking-uri` process once the server holds two finished trials, and
// resumes it with --resume: the server's parent run, left RUNNING by the
// kill, is the one resumed and ends FINISHED with the whole budget; every
// trial number has one finished child run at most, and the child run of
// the trial the kill interrupted is not left RUNNING.
func TestTrainTrackingURIKilled(t *testing.T) {
	dir := trainProject(t)
	srv := proctest.StartServer(t, nil, []string{mainEnv + "=1"}, os.Args[0], "--repo", t.TempDir(), "serve", "--addr", "127.0.0.1:0")
	const trials = 30
	spec := trainSpecFile(t, dir, 0)
	src, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec, []byte(strings.Replace(string(src), "trials: 3\n", fmt.Sprintf("trials: %d\n", trials), 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	var stderr strings.Builder
	cmd := exec.Command(os.Args[0], "--repo", dir, "train", spec, "--tracking-uri", srv.URL)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	// stop kills the process (a test that fails before the kill does not
	// leave it behind) and returns its stderr once it has exited.
	stop := func() string {
		cmd.Process.Kill() // an error only says it had exited
		<-exited
		return stderr.String()
	}
	t.Cleanup(func() { stop() })

	// children returns the study's parent run on the server (nil before
	// there is one), its child runs that are no longer RUNNING and those
	// that are.
	children := func() (parent *tracking.Run, done, running []tracking.Run) {
		var exps struct{ Experiments []tracking.Experiment }
		mlflowCall(t, srv.URL, http.MethodPost, "/api/2.0/mlflow/experiments/search", map[string]any{"max_results": 100}, &exps)
		for _, e := range exps.Experiments {
			if e.Name != "ranker" {
				continue
			}
			parents := searchRuns(t, srv.URL, e.ExperimentID, "tags.`atrium.study` = 'ranker'")
			if len(parents) != 1 {
				return nil, nil, nil
			}
			for _, c := range searchRuns(t, srv.URL, e.ExperimentID, "tags.`mlflow.parentRunId` = '"+parents[0].Info.RunID+"'") {
				if c.Info.Status == "RUNNING" {
					running = append(running, c)
				} else {
					done = append(done, c)
				}
			}
			return &parents[0], done, running
		}
		return nil, nil, nil
	}
	// The kill comes once two trials are done and, almost always, while
	// a third runs.
	var parent *tracking.Run
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, done, running := children()
		if len(done) >= 2 && len(running) == 1 {
			parent = p
			break
		}
		select {
		case <-exited:
			t.Fatalf("atrium train exited (%v) before it could be killed with two trials done\n%s", waitErr, stop())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two finished trials on the server after 2 minutes\n%s", stop())
		}
	}
	stop()
	p, done, running := children()
	if p == nil || p.Info.RunID != parent.Info.RunID || p.Info.Status != "RUNNING" || len(done) >= trials {
		t.Fatalf("after the kill: parent %+v with %d finished trials; want run %s RUNNING, trials left", p, len(done), parent.Info.RunID)
	}
	killed := len(running) // the trial the kill interrupted, if it caught one
	t.Logf("killed with %d trials done, %d running", len(done), killed)

	var res train.Result
	out := mustAtrium(t, dir, "-o", "json", "train", spec, "--resume", "--tracking-uri", srv.URL)
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The trial the kill interrupted goes stale (no heartbeat) and is
	// failed; it does not count toward the budget, which the resumed
	// process fills. (A kill between a trial's run ending and the study
	// recording it fails the trial with its run already ended: killed 0,
	// failed 1.)
	if res.RunID != parent.Info.RunID || res.Complete+res.Pruned != trials || res.Failed < killed || res.Failed > 1 ||
		res.Trials != res.Complete+res.Pruned+res.Failed || res.Registered == nil || res.Registered.Version != "1" {
		t.Fatalf("resumed: run %s, %d trials (%d complete, %d pruned, %d failed), registered %+v; want run %s, %d complete or pruned, %d or 1 failed, version 1",
			res.RunID, res.Trials, res.Complete, res.Pruned, res.Failed, res.Registered, parent.Info.RunID, trials, killed)
	}
	p, done, running = children()
	if p.Info.Status != "FINISHED" || len(running) != 0 {
		t.Errorf("the resumed parent run is %s with %d child runs RUNNING, want FINISHED and none", p.Info.Status, len(running))
	}
	numbers := map[int]string{}
	for _, c := range done {
		tags := tagMap(c.Data.Tags)
		n, err := strconv.Atoi(tags[train.TagTrialNumber])
		if err != nil || n < 0 || n >= res.Trials {
			t.Errorf("child run %s: trial number %q, want 0-%d", c.Info.RunID, tags[train.TagTrialNumber], res.Trials-1)
		}
		if prev, ok := numbers[n]; ok {
			t.Errorf("trial %d has two finished child runs, %s and %s", n, prev, c.Info.RunID)
		}
		numbers[n] = c.Info.RunID
	}
	if len(done) < res.Complete+res.Pruned {
		t.Errorf("%d finished child runs, want one for each of the %d complete or pruned trials", len(done), res.Complete+res.Pruned)
	}
	// The killed trial's run, if the kill caught one mid-trial, is ended
	// FAILED with the study's stale reason.
	stale := 0
	for _, c := range done {
		if tags := tagMap(c.Data.Tags); c.Info.Status == "FAILED" && strings.Contains(tags["atrium.trial.error"], "its process died") {
			stale++
		}
	}
	if stale != killed {
		t.Errorf("%d child runs failed as stale, want %d: the run of the trial the kill interrupted", stale, killed)
	}
}
