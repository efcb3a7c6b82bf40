package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/monitoring/model"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// TestMonitorModel registers a version with a training profile, logs
// predictions whose rent moved, and checks `atrium monitor model` and the
// alert evaluation `atrium serve` runs.
func TestMonitorModel(t *testing.T) {
	var mu sync.Mutex
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "monitors"), 0o755); err != nil {
		t.Fatal(err)
	}
	rules := `notifiers:
  - name: chat
    format: slack
    url: ` + hook.URL + `
monitors:
  - name: ranker_drift
    measure: feature_drift_share
    model: ranker
    window: 2h
    threshold: 0.3
    comparison: ">="
`
	if err := os.WriteFile(filepath.Join(dir, "monitors", "ranker.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdout: io.Discard, stderr: &stderr, repo: dir, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	t.Cleanup(func() { e.close() })
	st, err := registryStores(e)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	rent, rooms := make([]float64, 2000), make([]float64, 2000)
	for i := range rent {
		rent[i], rooms[i] = 1000+100*rng.NormFloat64(), float64(1+rng.IntN(4))
	}
	prof := profile.Build([]profile.Input{{Name: "rent", Float: rent}, {Name: "rooms", Float: rooms}}, profile.Options{})
	register := func(name string, prof *profile.Profile) string {
		run, err := st.Tracking.CreateRun(ctx, tracking.RunCreate{})
		if err != nil {
			t.Fatal(err)
		}
		if prof != nil {
			root, _ := tracking.ProxiedPath(run.Info.ArtifactURI)
			var b bytes.Buffer
			if err := prof.Encode(&b); err != nil {
				t.Fatal(err)
			}
			if err := st.Artifacts.Put(ctx, root+"/"+model.DefaultReferenceProfile, &b); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.Registry.CreateRegisteredModel(ctx, name, nil, ""); err != nil {
			t.Fatal(err)
		}
		v, err := st.Registry.CreateModelVersion(ctx, registry.VersionCreate{Name: name, Source: "runs:/" + run.Info.RunID + "/model", RunID: run.Info.RunID})
		if err != nil {
			t.Fatal(err)
		}
		return v.Version
	}
	v := register("ranker", prof)
	register("bare", nil)
	p, err := spec.LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	logDir, err := predictionLogDir(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := predlog.Open(ctx, predlog.Options{Dir: logDir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 400 {
		w.Log(predlog.Record{RequestID: "r" + string(rune('a'+i%26)) + time.Duration(i).String(), Time: now.Add(-time.Duration(i) * 10 * time.Second), Model: "ranker", Version: v,
			Route: predlog.RoutePredict, Rows: 1, Features: []string{"rent", "rooms"},
			Values: []float64{1400 + 100*rng.NormFloat64(), float64(1 + rng.IntN(4))}, Scores: []float64{rng.Float64()}})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	html := filepath.Join(dir, "ranker.html")
	out := mustAtrium(t, dir, "monitor", "model", "ranker", "--window", "2h", "--out", html)
	for _, want := range []string{"model ranker version 1, window 2h", "volume: 400 rows logged", "drift: 1 of 2 features drifted", "DRIFT"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	page, err := os.ReadFile(html)
	if err != nil || !bytes.Contains(page, []byte("<svg")) || !bytes.Contains(page, []byte("rent (wasserstein)")) {
		t.Errorf("HTML report: %v, %d bytes", err, len(page))
	}
	var rep model.Report
	if err := json.Unmarshal([]byte(mustAtrium(t, dir, "monitor", "model", "ranker", "--window", "2h", "--output", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.DriftedCount != 1 || rep.Features[0].Name != "rent" || !rep.Features[0].Drift.Drift {
		t.Errorf("json report = %+v", rep)
	}
	code, _, errOut := atrium(t, "--repo", dir, "monitor", "model", "bare")
	if code != exitFailure || !strings.Contains(errOut, "`atrium train` records one") {
		t.Errorf("no reference: code %d, stderr %s", code, errOut)
	}
	code, _, errOut = atrium(t, "--repo", dir, "monitor", "model", "nobody")
	if code != exitFailure || !strings.Contains(errOut, `model "nobody" is not registered`) {
		t.Errorf("unknown model: code %d, stderr %s", code, errOut)
	}
	if code, _, _ := atrium(t, "--repo", dir, "monitor", "model", "ranker", "--window", "0"); code != exitUsage {
		t.Errorf("--window 0: code %d", code)
	}

	// The evaluation `atrium serve` runs: one firing notification, not two.
	mon, _, err := modelMonitor(e)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := alertEvaluator(e, p, mon)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ev.Evaluate(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hooks) != 1 || !strings.Contains(hooks[0], `[FIRING] warning ranker_drift: model ranker: feature_drift_share over 2h = 0.5 (>= 0.3)`) {
		t.Errorf("webhook got %q", hooks)
	}
}
