package triton_test

import (
	"context"
	"io/fs"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	artifactfs "github.com/atrium-ml/atrium/internal/platform/artifact/fs"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestTritonClientLightGBM: a LightGBM model saved by mlflow.lightgbm,
// registered as a version of "ranker" with the alias champion, served by
// the serving layer's Backend behind the REST and gRPC transports;
// tritonclient's predictions (http binary and JSON, grpc; FP32 and FP64;
// NaN features) equal Booster.predict's to 1e-6 relative.
func TestTritonClientLightGBM(t *testing.T) {
	py := interoptest.Python(t, "the tritonclient LightGBM test", "tritonclient.http", "tritonclient.grpc", "lightgbm", "mlflow.lightgbm")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if out, err := exec.CommandContext(ctx, py, "lightgbm_flow.py", "save", dir).CombinedOutput(); err != nil {
		t.Fatalf("lightgbm_flow.py save: %v\n%s", err, out)
	}

	// Register the saved directory as mlflow's log_model does: a run's
	// "model" artifacts, a version whose source is runs:/<run>/model.
	db := metatest.SQLite(t, tracking.Schema, registry.Schema)
	ts, err := tracking.New(ctx, db, tracking.Options{})
	if err != nil {
		t.Fatal(err)
	}
	arts, err := artifactfs.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer arts.Close()
	run, err := ts.CreateRun(ctx, tracking.RunCreate{})
	if err != nil {
		t.Fatal(err)
	}
	runDir, _ := tracking.ProxiedPath(run.Info.ArtifactURI)
	model := filepath.Join(dir, "model")
	err = filepath.WalkDir(model, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(model, path)
		return arts.Put(ctx, runDir+"/model/"+filepath.ToSlash(rel), f)
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(ts)
	if _, err := reg.CreateRegisteredModel(ctx, "ranker", nil, ""); err != nil {
		t.Fatal(err)
	}
	v, err := reg.CreateModelVersion(ctx, registry.VersionCreate{Name: "ranker", Source: "runs:/" + run.Info.RunID + "/model", RunID: run.Info.RunID})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetAlias(ctx, "ranker", "champion", v.Version); err != nil {
		t.Fatal(err)
	}

	svc := serving.New(&serving.Loader{Registry: reg, Artifacts: arts}, serving.Options{})
	svc.Start(ctx)
	defer svc.Close()
	b := serving.NewBackend(svc)
	srv := httptest.NewServer(server.New(server.Options{}, routes(oip.Routes(b, oip.Options{}))).Handler())
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := oip.NewGRPCServer(b, oip.GRPCOptions{})
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()

	out, err := exec.CommandContext(ctx, py, "lightgbm_flow.py", "check", dir, strings.TrimPrefix(srv.URL, "http://"), ln.Addr().String(), "ranker", v.Version).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("lightgbm_flow.py check: %v\n%s", err, out)
	}
}
