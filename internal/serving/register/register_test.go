package register

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/artifact/proxy"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/servingtest"
	"github.com/atrium-ml/atrium/internal/tracking"
)

const trainCSV = "../../modeling/fit/testdata/train.csv"

func stores(t *testing.T) Stores {
	st := servingtest.Open(t)
	return Stores{Tracking: st.Tracking, Registry: st.Registry, Artifacts: st.Artifacts}
}

// fitted trains a small binary GBDT on the fit package's testdata (two
// numeric features and a categorical one).
func fitted(t *testing.T) *modelfile.Model {
	t.Helper()
	res, err := fit.Run(context.Background(), fit.Options{Data: trainCSV, Label: "y", Task: "binary", ValidFraction: 0.25, Seed: 3,
		Params: map[string]string{"num_iterations": "8", "min_data_in_leaf": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Model
}

// trainPredictions loads the training file for m and returns it with m's
// predictions of its rows.
func trainPredictions(t *testing.T, m *modelfile.Model) (*ml.Dataset, []float64) {
	t.Helper()
	ds, err := ml.Load(context.Background(), trainCSV, m.LoadOptions())
	if err != nil {
		t.Fatal(err)
	}
	pred, err := m.Predict(ds)
	if err != nil {
		t.Fatal(err)
	}
	return ds, pred
}

// TestModelServable registers a fitted model twice and checks what the
// registry, the run and the serving loader see: the second version moves the
// alias, carries the feature service tag, and loads back predicting what the
// fitted model predicts.
func TestModelServable(t *testing.T) {
	ctx := context.Background()
	st := stores(t)
	m := fitted(t)
	first, err := Model(ctx, st, m, Options{Name: "churn", Alias: "champion"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Model(ctx, st, m, Options{Name: "churn", Alias: "champion", FeatureService: "churn_v1", Experiment: "churn-fits", RunName: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Version != "1" || second.Version != "2" {
		t.Fatalf("versions %s, %s; want 1, 2", first.Version, second.Version)
	}
	if second.ModelURI != "models:/churn@champion" || second.Source != "runs:/"+second.RunID+"/model" {
		t.Errorf("result %+v", second)
	}

	v, err := st.Registry.GetVersionByAlias(ctx, "churn", "champion")
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "2" || v.RunID != second.RunID {
		t.Errorf("champion -> version %s of run %s, want 2 of %s", v.Version, v.RunID, second.RunID)
	}
	run, err := st.Tracking.GetRun(ctx, second.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.Status != "FINISHED" || run.Info.RunName != "second" {
		t.Errorf("run status %s name %q", run.Info.Status, run.Info.RunName)
	}
	exp, err := st.Tracking.GetExperimentByName(ctx, "churn-fits")
	if err != nil || exp.ExperimentID != run.Info.ExperimentID {
		t.Errorf("run in experiment %s, churn-fits is %+v (%v)", run.Info.ExperimentID, exp, err)
	}
	params := map[string]string{}
	for _, p := range run.Data.Params {
		params[p.Key] = p.Value
	}
	if params["task"] != "binary" || params["algorithm"] != "gbdt" || params["label"] != "y" || params["num_iterations"] != "8" {
		t.Errorf("params %v", params)
	}
	metrics := map[string]float64{}
	for _, mt := range run.Data.Metrics {
		metrics[mt.Key] = float64(mt.Value)
	}
	if metrics["train_rows"] != float64(m.Training.Rows) || len(m.Training.Metrics) == 0 {
		t.Errorf("metrics %v, model's %v", metrics, m.Training.Metrics)
	}
	for k, want := range m.Training.Metrics {
		if got, ok := metrics[metricName(k)]; !ok || got != want {
			t.Errorf("metric %s = %v (logged: %v), want %v", metricName(k), got, ok, want)
		}
	}

	loader := &serving.Loader{Registry: st.Registry, Artifacts: st.Artifacts}
	d, err := loader.LoadURI(ctx, "models:/churn@champion")
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != "2" || d.FeatureService != "churn_v1" || d.Platform != serving.FlavorAtrium {
		t.Errorf("loaded version %s, feature service %q, flavor %s", d.Version, d.FeatureService, d.Platform)
	}
	old, err := loader.LoadURI(ctx, "models:/churn/1")
	if err != nil {
		t.Fatal(err)
	}
	if old.FeatureService != "" {
		t.Errorf("version 1 has feature service %q, registered without one", old.FeatureService)
	}

	// The loaded version scores the training file as the fitted model does.
	_, want := trainPredictions(t, m)
	ds2, err := ml.Load(ctx, trainCSV, m.LoadOptions())
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Predict(ctx, ds2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d predictions, want %d", len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("row %d: served %v, fitted %v", i, got[i], want[i])
		}
	}
}

func TestModelRefusesBadOptions(t *testing.T) {
	st := stores(t)
	m := fitted(t)
	for _, tt := range []struct {
		name string
		o    Options
		want []string
	}{
		{"no name", Options{}, []string{"name is required"}},
		{"reserved alias and bad name", Options{Name: "a/b", Alias: "latest"}, []string{`model name "a/b"`, `alias "latest"`}},
		{"version alias", Options{Name: "ok", Alias: "v3"}, []string{`alias "v3"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Model(context.Background(), st, m, tt.o)
			if !errors.Is(err, ErrOptions) {
				t.Fatalf("err %v, want ErrOptions", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// Nothing was created.
	if _, err := st.Registry.GetRegisteredModel(context.Background(), "ok"); err == nil {
		t.Error("a refused registration created the model")
	}
}

func TestMetricName(t *testing.T) {
	for in, want := range map[string]string{"valid_ndcg@10": "valid_ndcg_at_10", "valid_auc": "valid_auc", "a*b": "a_b"} {
		if got := metricName(in); got != want {
			t.Errorf("metricName(%q) = %q, want %q", in, got, want)
		}
	}
}

// routes serves a fixed list of routes as a server.API.
type routes []server.Route

// serve serves st's MLflow tracking and registry API and artifact proxy, as
// `atrium serve` composes them, until the test ends.
func serve(t *testing.T, st Stores) *httptest.Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	reg := registry.NewAPI(st.Registry, log).Routes()
	srv := server.New(server.Options{Logger: log},
		routes(append(tracking.NewAPI(st.Tracking, st.Artifacts, log).RoutesWith(reg...), reg...)),
		proxy.New(st.Artifacts, proxy.Options{Logger: log}))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

func (r routes) Routes() []server.Route { return r }

// TestModelRemote publishes through a real server's MLflow API and artifact
// proxy (what `atrium serve` composes, over httptest) and loads the version
// back from the server's own stores, as serving does.
func TestModelRemote(t *testing.T) {
	ctx := context.Background()
	st := stores(t)
	hs := serve(t, st)
	m := fitted(t)
	remote := &Remote{URL: hs.URL}
	for i, o := range []Options{{Name: "churn"}, {Name: "churn", Alias: "champion", FeatureService: "churn_v1", Experiment: "remote-fits"}} {
		res, err := Model(ctx, remote, m, o)
		if err != nil {
			t.Fatal(err)
		}
		if want := strconv.Itoa(i + 1); res.Version != want {
			t.Fatalf("remote registration %d made version %s", i, res.Version)
		}
	}
	loader := &serving.Loader{Registry: st.Registry, Artifacts: st.Artifacts}
	d, err := loader.LoadURI(ctx, "models:/churn@champion")
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != "2" || d.FeatureService != "churn_v1" || len(d.Inputs) != len(m.Features) {
		t.Errorf("loaded version %s, feature service %q, %d inputs", d.Version, d.FeatureService, len(d.Inputs))
	}
	exp, err := st.Tracking.GetExperimentByName(ctx, "remote-fits")
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Registry.GetModelVersion(ctx, "churn", "2")
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.Tracking.GetRun(ctx, v.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.Status != "FINISHED" || run.Info.ExperimentID != exp.ExperimentID || len(run.Data.Metrics) == 0 || len(run.Data.Params) == 0 {
		t.Errorf("run %+v with %d metrics and %d params", run.Info, len(run.Data.Metrics), len(run.Data.Params))
	}

	// A server's error answer is reported with its status.
	bad := &Remote{URL: hs.URL + "/nowhere"}
	if _, err := Model(ctx, bad, m, Options{Name: "churn", Experiment: "e"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a wrong URL: %v", err)
	}
}
