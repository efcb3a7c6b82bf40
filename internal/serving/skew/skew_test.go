package skew_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/batch"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/serving/servingtest"
	"github.com/atrium-ml/atrium/internal/serving/skew"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking"
)

const skewFeatures = `entities:
  - {name: user, join_keys: [user_id]}
  - {name: listing, join_keys: [listing_id]}
sources:
  - {name: s, format: csv, path: s.csv, timestamp: ts}
feature_sets:
  - name: users
    entity: user
    source: s
    features:
      - {name: budget, type: float64, expr: budget}
  - name: listings
    entity: listing
    source: s
    features:
      - {name: rent, type: float64, expr: rent}
feature_services:
  - {name: svc, features: [users, listings]}
`

// The offline store's values, from day 1: what a consistent online store
// serves on day 2.
var (
	budgets = map[string]float64{"u1": 1000, "u2": 2500}
	rents   = map[string]float64{"l1": 500, "l2": 1900}
	day1    = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	day2    = day1.Add(24 * time.Hour)
)

// skewWorld is a real registry, artifact store, DuckDB offline store holding
// the feature sets above, and a prediction log directory.
type skewWorld struct {
	src    batch.Sources
	reg    *registry.Store
	runs   *tracking.Store
	logDir string
}

func newSkewWorld(t *testing.T) *skewWorld {
	t.Helper()
	ctx := context.Background()
	f, err := spec.ParseFeatures("features.yaml", []byte(skewFeatures))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := duckdb.Open(ctx, t.TempDir(), offline.Options{Features: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	var users, listings []offline.LatestRow
	for k, v := range budgets {
		users = append(users, offline.LatestRow{Key: []any{k}, TS: day1, Values: []any{v}})
	}
	for k, v := range rents {
		listings = append(listings, offline.LatestRow{Key: []any{k}, TS: day1, Values: []any{v}})
	}
	if err := eng.Append(ctx, "users", users); err != nil {
		t.Fatal(err)
	}
	if err := eng.Append(ctx, "listings", listings); err != nil {
		t.Fatal(err)
	}
	st := servingtest.Open(t)
	return &skewWorld{src: batch.Sources{Loader: &serving.Loader{Registry: st.Registry, Artifacts: st.Artifacts}, Offline: eng, Features: f},
		reg: st.Registry, runs: st.Tracking, logDir: t.TempDir()}
}

// register logs m as a new version of "ranker" tagged with the feature
// service svc, as atrium fit --register does.
func (w *skewWorld) register(t *testing.T, m *modelfile.Model) string {
	t.Helper()
	ctx := context.Background()
	run, err := w.runs.CreateRun(ctx, tracking.RunCreate{})
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := tracking.ProxiedPath(run.Info.ArtifactURI)
	files, err := serving.MLmodelFiles(m, day1)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := w.src.Loader.Artifacts.Put(ctx, dir+"/model/"+name, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.reg.GetRegisteredModel(ctx, "ranker"); err != nil {
		if _, err := w.reg.CreateRegisteredModel(ctx, "ranker", nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	v, err := w.reg.CreateModelVersion(ctx, registry.VersionCreate{Name: "ranker", Source: "runs:/" + run.Info.RunID + "/model",
		RunID: run.Info.RunID, Tags: []tracking.KV{{Key: serving.FeatureServiceTag, Value: "svc"}}})
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

// trainModel fits a small GBDT on budget and rent.
func trainModel(t *testing.T) *modelfile.Model {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	const n = 300
	ds := &ml.Dataset{Label: make([]float64, n), Columns: []ml.Column{{Name: "budget", Values: make([]float32, n)}, {Name: "rent", Values: make([]float32, n)}}}
	for i := range n {
		budget, rent := 500+r.Float64()*2500, 300+r.Float64()*2000
		ds.Columns[0].Values[i], ds.Columns[1].Values[i] = float32(budget), float32(rent)
		if rent/budget+0.2*r.NormFloat64() < 0.7 {
			ds.Label[i] = 1
		}
	}
	p, err := gbdt.ParseParams(map[string]string{"objective": "binary", "num_iterations": "10", "num_leaves": "7", "min_data_in_leaf": "5"})
	if err != nil {
		t.Fatal(err)
	}
	gm, err := gbdt.Train(context.Background(), ds, nil, p, gbdt.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := modelfile.NewGBDT(gm, ds)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// served is one logged request: its route, entity keys (none for infer),
// the feature values served and the time.
type served struct {
	id, version string
	route       predlog.Route
	user        string
	listings    []string
	// budget and rent are the values served (NaN: the offline store's).
	budget, rent float64
	at           time.Time
}

// logRequests logs the requests as serving does, scored by the version
// that answered them (a deleted version's scores are the first's: never
// compared).
func (w *skewWorld) logRequests(t *testing.T, d *serving.Deployed, reqs ...served) {
	t.Helper()
	ctx := context.Background()
	lw, err := predlog.Open(ctx, predlog.Options{Dir: w.logDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range reqs {
		n := max(1, len(q.listings))
		ds := d.NewDataset(n)
		rec := predlog.Record{RequestID: q.id, Time: q.at, Model: "ranker", Version: q.version, Route: q.route, Rows: n,
			Features: []string{"budget", "rent"}}
		if q.user != "" {
			rec.Context = []predlog.Field{{Name: "user_id", Value: q.user}}
			rec.Entities = []predlog.Column{{Name: "listing_id", Values: q.listings}}
		}
		for r := range n {
			budget, rent := q.budget, q.rent
			if math.IsNaN(budget) {
				budget = budgets[q.user]
			}
			if math.IsNaN(rent) {
				rent = rents[q.listings[r]]
			}
			ds.Columns[0].Float64[r], ds.Columns[1].Float64[r] = budget, rent
			rec.Values = append(rec.Values, budget, rent)
		}
		if rec.Scores, err = d.Predict(ctx, ds); err != nil {
			t.Fatal(err)
		}
		if !lw.Log(rec) {
			t.Fatalf("request %s not logged", q.id)
		}
	}
	if err := lw.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// Rows without the entity keys the feature service joins on (OIP infer
// requests, which send feature values) are left out and counted, not
// reported as missing offline; a version deleted since it scored rows is
// listed as not rescored with its row count while the others are checked;
// a window with nothing comparable says why, naming no temporary file.
func TestCheckLeavesOutWhatCannotBeCompared(t *testing.T) {
	ctx := context.Background()
	w := newSkewWorld(t)
	m := trainModel(t)
	v1, v2 := w.register(t, m), w.register(t, m)
	d, err := w.src.Loader.Load(ctx, "ranker", v1)
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	hour := func(h int) time.Time { return day2.Add(time.Duration(h) * time.Hour) }
	w.logRequests(t, d,
		// Hour 1: rank requests of v1, consistent with the offline store,
		// infer requests of v1 with any values, rank requests of v2.
		served{id: "rank-1", version: v1, route: predlog.RouteRank, user: "u1", listings: []string{"l1", "l2"}, budget: nan, rent: nan, at: hour(1)},
		served{id: "rank-2", version: v1, route: predlog.RouteRank, user: "u2", listings: []string{"l2"}, budget: nan, rent: nan, at: hour(1)},
		served{id: "infer-1", version: v1, route: predlog.RouteInfer, budget: 1234, rent: 99, at: hour(1)},
		served{id: "infer-2", version: v1, route: predlog.RouteInfer, budget: 1, rent: 2, at: hour(1)},
		served{id: "rank-3", version: v2, route: predlog.RouteRank, user: "u1", listings: []string{"l1", "l2", "l1"}, budget: nan, rent: nan, at: hour(1)},
		// Hour 2: infer requests only.
		served{id: "infer-3", version: v1, route: predlog.RouteInfer, budget: 1234, rent: 99, at: hour(2)},
		served{id: "infer-4", version: v2, route: predlog.RouteInfer, budget: 1234, rent: 99, at: hour(2)},
		// Hour 3: the deleted version's rows only.
		served{id: "rank-4", version: v2, route: predlog.RouteRank, user: "u1", listings: []string{"l1"}, budget: nan, rent: nan, at: hour(3)},
	)
	if err := w.reg.DeleteModelVersion(ctx, "ranker", v2); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, tc := range []struct {
		name         string
		from, to     int
		err          error
		says         []string
		compared     int
		withoutKeys  int
		notRescored  []skew.NotRescored
		versionsSeen int
	}{
		{name: "mixed window", from: 1, to: 2, compared: 3, withoutKeys: 2, versionsSeen: 1,
			notRescored: []skew.NotRescored{{Version: v2, Rows: 3, Reason: skew.NotRescoredDeleted}}},
		{name: "infer rows only", from: 2, to: 3, err: skew.ErrNothingComparable, withoutKeys: 1,
			says:        []string{"1 logged rows carry no entity keys", "OIP infer requests", "version " + v2 + ", which scored 1 logged rows, has been deleted"},
			notRescored: []skew.NotRescored{{Version: v1, Rows: 1, Reason: skew.NotRescoredNoKeys}, {Version: v2, Rows: 1, Reason: skew.NotRescoredDeleted}}},
		{name: "deleted version only", from: 3, to: 4, err: skew.ErrNothingComparable,
			says:        []string{"version " + v2 + ", which scored 1 logged rows, has been deleted from the registry"},
			notRescored: []skew.NotRescored{{Version: v2, Rows: 1, Reason: skew.NotRescoredDeleted}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := skew.Check(ctx, w.src, skew.Options{Model: "ranker", Since: hour(tc.from), Until: hour(tc.to), LogDir: w.logDir,
				Tolerance: skew.DefaultTolerance, TempDir: tmp})
			if !errors.Is(err, tc.err) {
				t.Fatalf("Check: %v, want %v", err, tc.err)
			}
			if err != nil {
				for _, s := range tc.says {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "spine") || strings.Contains(err.Error(), tmp) || strings.Contains(err.Error(), os.TempDir()) {
					t.Errorf("error %q names the check's temporary files", err)
				}
			}
			if rep == nil {
				t.Fatal("no report")
			}
			if len(rep.Versions) != tc.versionsSeen || rep.RowsWithoutKeys != tc.withoutKeys {
				t.Fatalf("%d versions checked, %d rows without keys; want %d, %d: %+v", len(rep.Versions), rep.RowsWithoutKeys, tc.versionsSeen, tc.withoutKeys, rep)
			}
			if len(rep.NotRescored) != len(tc.notRescored) {
				t.Fatalf("not rescored %+v, want %+v", rep.NotRescored, tc.notRescored)
			}
			for i := range tc.notRescored {
				if rep.NotRescored[i] != tc.notRescored[i] {
					t.Errorf("not rescored %+v, want %+v", rep.NotRescored, tc.notRescored)
				}
			}
			for _, v := range rep.Versions {
				if v.Version != v1 || v.Rows != tc.compared || v.RowsWithoutKeys != tc.withoutKeys {
					t.Errorf("version %s: %d rows compared, %d without keys; want %s: %d, %d", v.Version, v.Rows, v.RowsWithoutKeys, v1, tc.compared, tc.withoutKeys)
				}
				for _, f := range v.Features {
					if f.Rows != tc.compared || f.Mismatches != 0 || f.MissingOffline != 0 {
						t.Errorf("feature %s: %d mismatches, %d missing offline in %d rows; want none in %d", f.Name, f.Mismatches, f.MissingOffline, f.Rows, tc.compared)
					}
				}
				if p := v.Predictions; p.Rows != tc.compared || p.Mismatches != 0 {
					t.Errorf("predictions %+v, want %d rows, no mismatch", p, tc.compared)
				}
			}
			if tc.err == nil && !rep.Clean() {
				t.Errorf("a consistent log reports skew: %+v", rep)
			}
		})
	}
}

// The tolerance is a relative difference of 0 (exact) or more: 0 tells a
// rent served 1e-12 off from the offline one, the default does not; a
// negative, NaN or infinite tolerance is refused.
func TestCheckTolerance(t *testing.T) {
	ctx := context.Background()
	w := newSkewWorld(t)
	v1 := w.register(t, trainModel(t))
	d, err := w.src.Loader.Load(ctx, "ranker", v1)
	if err != nil {
		t.Fatal(err)
	}
	at := day2.Add(time.Hour)
	w.logRequests(t, d, served{id: "r", version: v1, route: predlog.RouteRank, user: "u1", listings: []string{"l1"},
		budget: math.NaN(), rent: rents["l1"] * (1 + 1e-12), at: at})
	for _, tc := range []struct {
		tolerance      float64
		rentMismatches int
		refused        bool
	}{
		{tolerance: skew.DefaultTolerance},
		{tolerance: 0, rentMismatches: 1},
		{tolerance: 1e-15, rentMismatches: 1},
		{tolerance: -1, refused: true},
		{tolerance: math.NaN(), refused: true},
		{tolerance: math.Inf(1), refused: true},
	} {
		rep, err := skew.Check(ctx, w.src, skew.Options{Model: "ranker", Since: at, Until: at.Add(time.Second), LogDir: w.logDir, Tolerance: tc.tolerance, TempDir: t.TempDir()})
		if tc.refused {
			if err == nil || !strings.Contains(err.Error(), "tolerance") {
				t.Errorf("tolerance %v: %v, want it refused", tc.tolerance, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("tolerance %v: %v", tc.tolerance, err)
		}
		for _, f := range rep.Versions[0].Features {
			want := 0
			if f.Name == "rent" {
				want = tc.rentMismatches
			}
			if f.Mismatches != want {
				t.Errorf("tolerance %v: %s has %d mismatches, want %d", tc.tolerance, f.Name, f.Mismatches, want)
			}
		}
	}
}
