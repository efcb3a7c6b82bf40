package model

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/monitoring/labels"
	"github.com/atrium-ml/atrium/internal/monitoring/report"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/serving/servingtest"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// now ends the tests' windows: at least a minute ahead of the clock, so
// that labels stored during a test (stamped with the real time) are
// received within the window, as they are in production. Rounded to the
// minute, one minute ahead was only 0 to 60 s ahead: a package started in a
// minute's last seconds stored its labels after now, outside the window.
var now = time.Now().UTC().Truncate(time.Minute).Add(2 * time.Minute)

// world is a registry, artifact store, prediction log and label store.
type world struct {
	st     servingtest.Stores
	logDir string
	labels *labels.Store
	mon    *Monitor
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{st: servingtest.Open(t), logDir: t.TempDir()}
	w.labels = labels.NewStore(metatest.SQLite(t, labels.Schema))
	w.mon = New(Options{Registry: w.st.Registry, Tracking: w.st.Tracking, Artifacts: w.st.Artifacts, LogDir: w.logDir, Labels: w.labels})
	return w
}

// register registers a version of name whose run holds prof (nil: none).
func (w *world) register(t testing.TB, name string, prof *profile.Profile, tags ...tracking.KV) string {
	t.Helper()
	ctx := context.Background()
	run, err := w.st.Tracking.CreateRun(ctx, tracking.RunCreate{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.Registry.GetRegisteredModel(ctx, name); err != nil {
		if _, err := w.st.Registry.CreateRegisteredModel(ctx, name, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	v, err := w.st.Registry.CreateModelVersion(ctx, registry.VersionCreate{Name: name, Source: "runs:/" + run.Info.RunID + "/model", RunID: run.Info.RunID, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	if prof != nil {
		path, err := w.mon.SaveReference(ctx, name, v.Version, prof)
		if err != nil || !strings.HasSuffix(path, "/"+run.Info.RunID+"/artifacts/"+DefaultReferenceProfile) {
			t.Fatalf("save reference: %s, %v", path, err)
		}
	}
	return v.Version
}

// row is one logged prediction.
type row struct {
	id      string
	at      time.Time
	rent    float64 // NaN: missing
	rooms   float64
	hood    string
	score   float64
	listing string
}

func (w *world) log(t *testing.T, model, version string, route predlog.Route, rows []row) {
	t.Helper()
	ctx := context.Background()
	wr, err := predlog.Open(ctx, predlog.Options{Dir: w.logDir, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		rec := predlog.Record{RequestID: r.id, Time: r.at, Model: model, Version: version, Route: route, Rows: 1,
			Entities: []predlog.Column{{Name: "listing_id", Values: []string{r.listing}}},
			Features: []string{"rent", "rooms"}, Values: []float64{r.rent, r.rooms},
			Categorical: []string{"neighborhood"}, Strings: []string{r.hood}, Scores: []float64{r.score}}
		if !wr.Log(rec) {
			t.Fatal("record dropped")
		}
	}
	if err := wr.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

var hoods = []string{"north", "south", "east"}

// reference is the training profile: rent ~ N(1000, 100), rooms 1..4,
// three neighbourhoods, scores ~ U(0, 1).
func reference(n int) *profile.Profile {
	rng := rand.New(rand.NewPCG(1, 2))
	rent, rooms, score := make([]float64, n), make([]float64, n), make([]float64, n)
	hood := make([]string, n)
	for i := range n {
		rent[i] = 1000 + 100*rng.NormFloat64()
		rooms[i] = float64(1 + rng.IntN(4))
		hood[i] = hoods[rng.IntN(3)]
		score[i] = rng.Float64()
	}
	p := profile.Build([]profile.Input{{Name: "rent", Float: rent}, {Name: "rooms", Float: rooms}, {Name: "neighborhood", String: hood}}, profile.Options{})
	pred := profile.BuildColumn(profile.Input{Name: "prediction", Float: score}, profile.Options{}, 99)
	p.Prediction = &pred
	return p
}

// traffic makes n rows evenly spread over [from, from+span), rent shifted
// by shift, a share missingRooms of rooms missing.
func traffic(seed uint64, prefix string, n int, from time.Time, span time.Duration, shift, missingRooms float64) []row {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]row, n)
	for i := range out {
		rooms := float64(1 + rng.IntN(4))
		if rng.Float64() < missingRooms {
			rooms = math.NaN()
		}
		out[i] = row{id: fmt.Sprintf("%s%d", prefix, i), at: from.Add(span * time.Duration(i) / time.Duration(n)),
			rent: 1000 + shift + 100*rng.NormFloat64(), rooms: rooms, hood: hoods[rng.IntN(3)], score: rng.Float64(), listing: fmt.Sprint(i % 50)}
	}
	return out
}

func TestReport(t *testing.T) {
	w := newWorld(t)
	v := w.register(t, "ranker", reference(3000))
	w.log(t, "ranker", v, predlog.RoutePredict, traffic(1, "p", 400, now.Add(-48*time.Hour), 24*time.Hour, 0, 0))
	w.log(t, "ranker", v, predlog.RoutePredict, traffic(4, "c", 600, now.Add(-24*time.Hour), 24*time.Hour, 300, 0.1))
	// A shadow version's rows are not the served model's.
	w.log(t, "ranker", "99", predlog.RouteShadow, traffic(3, "s", 50, now.Add(-time.Hour), time.Hour, 0, 0))

	rep, err := w.mon.Compute(context.Background(), Request{Model: "ranker", Window: 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Version != v || rep.NoData || rep.Volume.Rows != 600 || rep.Volume.Previous != 400 || *rep.Volume.Change != 1.5 {
		t.Fatalf("report: version %s, no data %v, volume %+v", rep.Version, rep.NoData, rep.Volume)
	}
	if len(rep.Versions) != 1 || rep.Versions[0] != (VersionRows{Version: v, Rows: 600}) {
		t.Errorf("versions = %+v", rep.Versions)
	}
	if rep.Reference == nil || rep.Reference.Rows != 3000 {
		t.Errorf("reference = %+v", rep.Reference)
	}
	want := map[string]bool{"rent": true, "rooms": false, "neighborhood": false}
	for _, f := range rep.Features {
		if f.Drift == nil {
			t.Fatalf("%s: no drift result: %s", f.Name, f.Error)
		}
		if f.Drift.Drift != want[f.Name] {
			t.Errorf("%s: drift %v (score %g, %s), want %v", f.Name, f.Drift.Drift, f.Drift.Score, f.Drift.Method, want[f.Name])
		}
		// Against the previous window (400 rows, no shift), only rent moved too.
		if f.Previous == nil || f.Previous.Drift != want[f.Name] {
			t.Errorf("%s: previous-window drift = %+v", f.Name, f.Previous)
		}
	}
	// Reference sample of 3000 > 1000 rows: Evidently picks Wasserstein and Jensen-Shannon.
	if m := rep.Features[0].Drift.Method; m != "wasserstein" {
		t.Errorf("rent method = %s", m)
	}
	if m := rep.Features[2].Drift.Method; m != "jensenshannon" {
		t.Errorf("neighborhood method = %s", m)
	}
	if rep.Tested != 3 || rep.DriftedCount != 1 || rep.DatasetDrift {
		t.Errorf("tested %d, drifted %d, dataset drift %v", rep.Tested, rep.DriftedCount, rep.DatasetDrift)
	}
	rooms := rep.Features[1].Missing
	if rooms.Current < 0.07 || rooms.Current > 0.13 || rooms.Reference != 0 || *rooms.Previous != 0 {
		t.Errorf("rooms missing = %+v", rooms)
	}
	if rep.Prediction == nil || rep.Prediction.Drift == nil || rep.Prediction.Drift.Drift {
		t.Errorf("prediction = %+v", rep.Prediction)
	}
	if p := rep.Performance; p == nil || p.Labeled != 0 || !strings.Contains(p.Message, "no labels yet for the 600 predictions") {
		t.Errorf("performance before labels = %+v", p)
	}
}

// TestReportSampledWindow: a window above MaxRows is read as a draw of
// whole requests; volumes stay exact, the drift verdicts the same, and the
// report says it sampled.
func TestReportSampledWindow(t *testing.T) {
	w := newWorld(t)
	w.mon = New(Options{Registry: w.st.Registry, Tracking: w.st.Tracking, Artifacts: w.st.Artifacts, LogDir: w.logDir, Labels: w.labels, MaxRows: 1000})
	v := w.register(t, "ranker", reference(3000))
	w.log(t, "ranker", v, predlog.RoutePredict, traffic(1, "p", 4000, now.Add(-48*time.Hour), 24*time.Hour, 0, 0))
	w.log(t, "ranker", v, predlog.RoutePredict, traffic(4, "c", 6000, now.Add(-24*time.Hour), 24*time.Hour, 300, 0.1))
	rep, err := w.mon.Compute(context.Background(), Request{Model: "ranker", Window: 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Volume.Rows != 6000 || rep.Volume.Previous != 4000 || len(rep.Versions) != 1 || rep.Versions[0].Rows != 6000 {
		t.Errorf("volume %+v, versions %+v: want the exact 6000 and 4000 rows", rep.Volume, rep.Versions)
	}
	if rep.Sample == nil || rep.Sample.Of != 6000 || rep.Sample.Rows < 800 || rep.Sample.Rows > 1200 {
		t.Fatalf("sample = %+v, want about 1000 of 6000", rep.Sample)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "computed on") }) {
		t.Errorf("notes %q do not say the window was sampled", rep.Notes)
	}
	want := map[string]bool{"rent": true, "rooms": false, "neighborhood": false}
	for _, f := range rep.Features {
		if f.Drift == nil || f.Drift.Drift != want[f.Name] {
			t.Errorf("%s: drift %+v (%s), want %v", f.Name, f.Drift, f.Error, want[f.Name])
		}
	}
	if p := rep.Performance; p == nil || p.Predictions != rep.Sample.Rows {
		t.Errorf("performance over %+v, want the %d sampled rows", p, rep.Sample.Rows)
	}
}

func TestReportErrors(t *testing.T) {
	w := newWorld(t)
	noProfile := w.register(t, "bare", nil)
	w.log(t, "bare", noProfile, predlog.RoutePredict, traffic(1, "b", 10, now.Add(-time.Hour), time.Hour, 0, 0))
	w.register(t, "idle", reference(100))
	ctx := context.Background()

	_, err := w.mon.Compute(ctx, Request{Model: "nobody", Window: time.Hour, Now: now})
	if !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), `model "nobody" is not registered`) {
		t.Errorf("unknown model: %v", err)
	}
	_, err = w.mon.Compute(ctx, Request{Model: "idle", Version: "7", Window: time.Hour, Now: now})
	if !errors.Is(err, ErrUnknownModel) {
		t.Errorf("unknown version: %v", err)
	}
	rep, err := w.mon.Compute(ctx, Request{Model: "bare", Window: time.Hour, Now: now})
	if !errors.Is(err, ErrNoReference) || !strings.Contains(err.Error(), "`atrium train` records one") {
		t.Errorf("no reference: %v", err)
	}
	if rep == nil || rep.Volume.Rows != 10 {
		t.Errorf("a report without reference still has its volume: %+v", rep)
	}
	rep, err = w.mon.Compute(ctx, Request{Model: "idle", Window: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.NoData || rep.Version != "1" || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "no prediction of version 1") {
		t.Errorf("empty window: %+v", rep)
	}
	if _, err := w.mon.Compute(ctx, Request{Model: "idle", Now: now}); err == nil {
		t.Error("no window accepted")
	}
}

func TestFeatureMissingFromLog(t *testing.T) {
	w := newWorld(t)
	ref := reference(200)
	extra := profile.BuildColumn(profile.Input{Name: "size", Float: []float64{40, 50, 60, 70, 80, 90, 100}}, profile.Options{}, 7)
	ref.Columns = append(ref.Columns, extra)
	v := w.register(t, "ranker", ref)
	w.log(t, "ranker", v, predlog.RoutePredict, traffic(1, "c", 100, now.Add(-time.Hour), time.Hour, 0, 0))
	rep, err := w.mon.Compute(context.Background(), Request{Model: "ranker", Window: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	f, err := rep.feature("size")
	if err != nil {
		t.Fatal(err)
	}
	if f.Drift != nil || !strings.Contains(f.Error, "no value of size in the window's predictions") || f.Missing.Current != 1 {
		t.Errorf("size = %+v", f)
	}
	if rep.Tested != 3 {
		t.Errorf("tested = %d, want the 3 features with values", rep.Tested)
	}
}

func intp(i int) *int { return &i }

func TestRealizedPerformance(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v := w.register(t, "ranker", reference(300), tracking.KV{Key: "atrium.test.auc", Value: "0.81"})
	rows := traffic(5, "r", 200, now.Add(-24*time.Hour), 24*time.Hour, 0, 0)
	w.log(t, "ranker", v, predlog.RoutePredict, rows)

	// Labels: by request id for the first 100 rows (label 1 when score > 0.4,
	// a noisy truth), one sent twice with a changed value (the last counts),
	// one for a request id that was never logged, and by entity and time for
	// row 150.
	var ls []labels.Label
	var wantLabel, wantScore []float64
	for i := range 100 {
		y := 0.0
		if rows[i].score > 0.4 {
			y = 1
		}
		if i == 7 {
			ls = append(ls, labels.Label{Model: "ranker", RequestID: rows[i].id, Value: 1 - y})
		}
		ls = append(ls, labels.Label{Model: "ranker", RequestID: rows[i].id, Value: y})
		wantLabel, wantScore = append(wantLabel, y), append(wantScore, rows[i].score)
	}
	ls = append(ls, labels.Label{Model: "ranker", RequestID: "never-logged", Value: 1},
		labels.Label{Model: "ranker", Entities: map[string]string{"listing_id": rows[150].listing}, Time: rows[150].at.Add(time.Minute), Value: 1})
	wantLabel, wantScore = append(wantLabel, 1), append(wantScore, rows[150].score)
	res, err := w.labels.Put(ctx, ls)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 103 || res.Duplicates != 1 {
		t.Errorf("put = %+v", res)
	}
	wantAUC, err := ml.AUC(wantLabel, wantScore, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := w.mon.Compute(ctx, Request{Model: "ranker", Window: 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Performance
	if p.Labeled != 101 || p.Duplicates != 1 || p.Unmatched != 1 || p.UnmatchedExample[0] != "request never-logged" || p.Message != "" {
		t.Fatalf("performance = %+v", p)
	}
	auc, ok := p.Metric("auc")
	if !ok || math.Abs(auc.Value-wantAUC) > 1e-12 || auc.Rows != 101 || *auc.Test != 0.81 {
		t.Errorf("auc = %+v, want %g over 101 rows next to test 0.81", auc, wantAUC)
	}

	// A late label: it arrives after the first report and counts in the next.
	if _, err := w.labels.Put(ctx, []labels.Label{{Model: "ranker", RequestID: rows[120].id, Value: 0}}); err != nil {
		t.Fatal(err)
	}
	rep, err = w.mon.Compute(ctx, Request{Model: "ranker", Window: 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Performance.Labeled != 102 {
		t.Errorf("after a late label: labeled %d, want 102", rep.Performance.Labeled)
	}
}

func TestRankingLabels(t *testing.T) {
	// A rank request of 4 candidates; the clicked one is labelled by its
	// entity key, the others count as 0.
	rs := []predlog.Row{
		{RequestID: "q1", Row: 0, Route: predlog.RouteRank, Scores: []float64{0.9}, Entities: map[string]string{"listing_id": "a"}},
		{RequestID: "q1", Row: 1, Route: predlog.RouteRank, Scores: []float64{0.8}, Entities: map[string]string{"listing_id": "b"}},
		{RequestID: "q1", Row: 2, Route: predlog.RouteRank, Scores: []float64{0.1}, Entities: map[string]string{"listing_id": "c"}},
		{RequestID: "q2", Row: 0, Route: predlog.RouteRank, Scores: []float64{0.5}, Entities: map[string]string{"listing_id": "a"}},
		{RequestID: "q2", Row: 1, Route: predlog.RouteRank, Scores: []float64{0.7}, Entities: map[string]string{"listing_id": "d"}},
		{RequestID: "q3", Row: 0, Route: predlog.RouteRank, Scores: []float64{0.7}, Entities: map[string]string{"listing_id": "d"}},
	}
	byReq := []labels.Label{
		{RequestID: "q1", Entities: map[string]string{"listing_id": "b"}, Value: 1},
		{RequestID: "q2", Row: intp(0), Value: 1},
		{RequestID: "q2", Row: intp(5), Value: 1}, // no such row
	}
	j, unmatched := join(rs, byReq, nil)
	if j.labeled != 2 || len(unmatched) != 1 || *unmatched[0].Row != 5 {
		t.Fatalf("labeled %d, unmatched %+v", j.labeled, unmatched)
	}
	ndcg := realized("ndcg@10", j)
	// q1: clicked b at rank 2: (1/log2 3) / 1; q2: clicked a at rank 2 of 2: the same. q3 has no label.
	want := 1 / math.Log2(3)
	if ndcg.Error != "" || ndcg.Rows != 5 || math.Abs(ndcg.Value-want) > 1e-12 {
		t.Errorf("ndcg@10 = %+v, want %g over 5 rows", ndcg, want)
	}
	if names := metricNames(rs, j, nil); strings.Join(names, ",") != "ndcg@10,map@10" {
		t.Errorf("default ranking metrics = %v", names)
	}
}

func TestMeasurer(t *testing.T) {
	w := newWorld(t)
	v := w.register(t, "ranker", reference(3000))
	w.log(t, "ranker", v, predlog.RoutePredict, traffic(2, "c", 300, now.Add(-time.Hour), time.Hour, 300, 0))
	ms := &Measurer{Monitor: w.mon}
	ctx := context.Background()
	for _, c := range []struct {
		m       spec.Monitor
		value   float64 // NaN: no data
		atLeast bool
		err     string
	}{
		{spec.Monitor{Measure: spec.MeasureFeatureDriftShare}, 1.0 / 3, false, ""},
		{spec.Monitor{Measure: spec.MeasureVolume}, 300, false, ""},
		{spec.Monitor{Measure: spec.MeasureMissingShare}, 0, false, ""},
		{spec.Monitor{Measure: spec.MeasureFeatureDrift, Feature: "rent"}, 1, true, ""},
		{spec.Monitor{Measure: spec.MeasureFeatureDrift, Feature: "rent", Method: "psi"}, 0.25, true, ""},
		{spec.Monitor{Measure: spec.MeasureFeatureDrift, Feature: "size"}, 0, false, `no feature "size"`},
		{spec.Monitor{Measure: spec.MeasureRealizedMetric, Metric: "auc"}, math.NaN(), false, ""},
		{spec.Monitor{Measure: spec.MeasureVolume, Model: "ranker", Window: spec.Duration(time.Hour)}, 300, false, ""},
		{spec.Monitor{Measure: spec.MeasureFeatureDriftShare, Model: "gone"}, 0, false, "unknown model"},
	} {
		m := c.m
		if m.Model == "" {
			m.Model = "ranker"
		}
		if m.Window == 0 {
			m.Window = spec.Duration(2 * time.Hour)
		}
		got, err := ms.Measure(ctx, &m, now)
		name := fmt.Sprintf("%s %s %s %s", m.Measure, m.Feature, m.Method, m.Model)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v, want %q", name, err, c.err)
			}
			continue
		}
		switch {
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case math.IsNaN(c.value):
			if !got.NoData {
				t.Errorf("%s = %+v, want no data", name, got)
			}
		case c.atLeast && got.Value < c.value, !c.atLeast && math.Abs(got.Value-c.value) > 1e-9:
			t.Errorf("%s = %g, want %g (at least: %v)", name, got.Value, c.value, c.atLeast)
		}
	}
}

func TestRender(t *testing.T) {
	w := newWorld(t)
	v := w.register(t, "ranker", reference(3000), tracking.KV{Key: "atrium.test.auc", Value: "0.8"})
	rows := traffic(4, "c", 300, now.Add(-time.Hour), time.Hour, 300, 0.1)
	w.log(t, "ranker", v, predlog.RoutePredict, rows)
	if _, err := w.labels.Put(context.Background(), []labels.Label{{Model: "ranker", RequestID: "c1", Value: 1}, {Model: "ranker", RequestID: "c2", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	rep, err := w.mon.Compute(context.Background(), Request{Model: "ranker", Window: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"model ranker version 1, window 1h", "drift: 1 of 3 features drifted", "rent ", "wasserstein", "DRIFT", "auc ", "0.8"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var page bytes.Buffer
	if err := report.Render(&page, HTML(rep, now)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Model ranker version 1", "Feature drift", "rent (wasserstein)", "<svg", "Realized performance", "neighborhood"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
