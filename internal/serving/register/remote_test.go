package register

import (
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// TestRemoteTracker runs the Tracker methods a training study uses through
// a real server's MLflow API and artifact proxy and checks each against
// the server's own stores: runs found by tag and status, tags, the artifact
// proxy as an artifact.Store, and registered versions resolved and loaded
// back as serving's loader loads them from the stores.
func TestRemoteTracker(t *testing.T) {
	ctx := context.Background()
	st := stores(t)
	remote := &Remote{URL: serve(t, st).URL}

	expID, err := remote.ExperimentID(ctx, "study")
	if err != nil {
		t.Fatal(err)
	}
	runID, uri, err := remote.CreateRun(ctx, expID, 1000, []tracking.KV{{Key: "atrium.study", Value: "ranker"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := remote.RunInfo(ctx, runID)
	if err != nil || info.ExperimentID != expID || info.ArtifactURI != uri || info.Status != "RUNNING" {
		t.Fatalf("run info %+v (%v), want experiment %s, artifacts %s, RUNNING", info, err, expID, uri)
	}
	err = remote.LogBatch(ctx, runID, []tracking.Metric{{Key: "m", Value: 0.5, Timestamp: 1}, {Key: "nan", Value: wire.Float(math.NaN()), Timestamp: 1}},
		[]tracking.KV{{Key: "p", Value: "1"}}, []tracking.KV{{Key: "t", Value: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.SetTag(ctx, runID, tracking.KV{Key: "atrium.error", Value: "boom"}); err != nil {
		t.Fatal(err)
	}
	other, _, err := remote.CreateRun(ctx, expID, 2000, nil)
	if err != nil {
		t.Fatal(err)
	}
	running := "tags.`atrium.study` = 'ranker' and attributes.status = 'RUNNING'"
	runs, err := remote.SearchRuns(ctx, expID, running, []string{"attributes.start_time DESC"}, 1)
	if err != nil || len(runs) != 1 || runs[0].Info.RunID != runID {
		t.Fatalf("search by tag: %+v (%v), want run %s alone (not %s)", runs, err, runID, other)
	}
	got, err := st.Tracking.GetRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, kv := range got.Data.Tags {
		tags[kv.Key] = kv.Value
	}
	if len(got.Data.Params) != 1 || len(got.Data.Metrics) != 1 || tags["t"] != "x" || tags["atrium.error"] != "boom" {
		t.Errorf("the server's run holds params %v metrics %v tags %v", got.Data.Params, got.Data.Metrics, tags)
	}
	if err := remote.EndRun(ctx, runID, "FAILED", 3000); err != nil {
		t.Fatal(err)
	}
	if runs, err := remote.SearchRuns(ctx, expID, running, nil, 10); err != nil || len(runs) != 0 {
		t.Errorf("running runs after EndRun: %d (%v)", len(runs), err)
	}

	// The artifact proxy as an artifact.Store.
	arts := remote.Artifacts()
	if err := arts.Put(ctx, "a/b/c.txt", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if err := remote.PutArtifact(ctx, "a/d.txt", []byte("there")); err != nil {
		t.Fatal(err)
	}
	r, err := arts.Get(ctx, "a/b/c.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(body) != "hello" {
		t.Errorf("get: %q (%v)", body, err)
	}
	list, err := arts.List(ctx, "a")
	if err != nil || !slices.Equal(list, []artifact.FileInfo{{Path: "a/b", IsDir: true}, {Path: "a/d.txt", Size: 5}}) {
		t.Errorf("list a: %+v (%v)", list, err)
	}
	if err := arts.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := arts.Get(ctx, "a/b/c.txt"); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("get after delete: %v, want artifact.ErrNotFound", err)
	}
	if err := arts.Delete(ctx, "a/b"); err != nil {
		t.Errorf("deleting a missing path: %v", err)
	}
	if _, err := arts.Get(ctx, "../etc/passwd"); !errors.Is(err, artifact.ErrInvalidPath) {
		t.Errorf("get ../etc/passwd: %v, want artifact.ErrInvalidPath", err)
	}

	// Versions: missing ones are serving.ErrNotFound, as the stores say.
	for _, v := range []string{"@champion", "1"} {
		if _, err := remote.Version(ctx, "churn", v); !errors.Is(err, serving.ErrNotFound) {
			t.Errorf("version %s of a missing model: %v, want serving.ErrNotFound", v, err)
		}
	}
	m := fitted(t)
	if _, err := Model(ctx, remote, m, Options{Name: "churn", Alias: "champion", FeatureService: "churn_v1"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"@challenger", "7"} {
		if _, err := remote.Version(ctx, "churn", v); !errors.Is(err, serving.ErrNotFound) {
			t.Errorf("version %s: %v, want serving.ErrNotFound", v, err)
		}
		if _, err := st.Version(ctx, "churn", v); !errors.Is(err, serving.ErrNotFound) {
			t.Errorf("the stores' version %s: %v, want serving.ErrNotFound", v, err)
		}
	}
	if v, err := remote.Version(ctx, "churn", "@champion"); err != nil || v.Version != "1" {
		t.Fatalf("churn@champion: %+v (%v)", v, err)
	}
	d, err := remote.LoadVersion(ctx, "churn", "@champion")
	if err != nil {
		t.Fatal(err)
	}
	local, err := st.LoadVersion(ctx, "churn", "@champion")
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != "1" || d.FeatureService != "churn_v1" || d.Source != local.Source || !slices.Equal(d.Outputs, local.Outputs) {
		t.Errorf("remote load: version %s, feature service %q, source %s; the stores': %s", d.Version, d.FeatureService, d.Source, local.Source)
	}
	ds, want := trainPredictions(t, m)
	pred, err := d.Predict(ctx, ds)
	if err != nil || !slices.Equal(pred, want) {
		t.Errorf("the remote version predicts differently from the fitted model (%v)", err)
	}
	if _, err := remote.LoadVersion(ctx, "churn", "@challenger"); !errors.Is(err, serving.ErrNotFound) {
		t.Errorf("load a missing alias: %v, want serving.ErrNotFound", err)
	}
}
