package mlflow_test

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestFitRegisterFlow registers a model with `atrium fit --register` and
// reads it back with the official clients through `atrium serve`
// (fit_register_flow.py): the version, its alias, tag, run, params and
// metrics with MlflowClient, the model directory (atrium flavor) with
// mlflow.artifacts, and predictions through tritonclient[http] and
// tritonclient[grpc] equal to LightGBM's Booster.predict of the same model
// written as LightGBM text by the same fit.
func TestFitRegisterFlow(t *testing.T) {
	interoptest.Python(t, "the fit --register interop test", "tritonclient.grpc", "lightgbm")
	repo := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr := ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(filepath.Join(repo, "atrium.yaml"), []byte("serving:\n  poll_interval: 500ms\n  grpc_addr: "+grpcAddr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := filepath.Abs(filepath.Join("..", "..", "..", "internal", "modeling", "fit", "testdata", "train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(repo, "churn.txt")
	fit := exec.Command(atriumBinary(t), "--repo", repo, "fit", "--data", data, "--label", "y", "--task", "binary", "--ignore", "c",
		"--valid-fraction", "0.25", "--seed", "3", "--param", "num_iterations=20", "--param", "min_data_in_leaf=5", "--out", model,
		"--register", "churn", "--feature-service", "churn_v1", "--alias", "champion", "--experiment", "churn")
	out, err := fit.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered  churn version 1") {
		t.Fatalf("atrium fit --register: %v\n%s", err, out)
	}
	srv := startAtrium(t, repo)
	runPython(t, srv, "fit_register_flow.py", model, data, grpcAddr)

	// --tracking-uri publishes through the running server's MLflow API: the
	// new version is served at once by number and through its alias.
	remote := exec.Command(atriumBinary(t), "--repo", t.TempDir(), "fit", "--data", data, "--label", "y", "--task", "binary", "--ignore", "c",
		"--param", "num_iterations=10", "--register", "churn", "--alias", "challenger", "--tracking-uri", srv.URL)
	out, err = remote.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered  churn version 2") {
		t.Fatalf("atrium fit --register --tracking-uri: %v\n%s", err, out)
	}
	var alias struct {
		Version struct {
			Version string `json:"version"`
		} `json:"model_version"`
	}
	call(t, srv, "GET", "registered-models/alias", url.Values{"name": {"churn"}, "alias": {"challenger"}}, &alias)
	if alias.Version.Version != "2" {
		t.Errorf("challenger -> version %q, want 2", alias.Version.Version)
	}
	var meta struct {
		Versions []string `json:"versions"`
	}
	code, body := httpDo(t, "GET", srv.URL+"/v2/models/churn/versions/2", nil)
	if err := json.Unmarshal(body, &meta); code != 200 || err != nil || len(meta.Versions) != 1 || meta.Versions[0] != "2" {
		t.Errorf("OIP metadata of version 2: %+v", meta)
	}
}
