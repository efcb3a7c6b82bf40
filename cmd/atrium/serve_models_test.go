package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mlflowCall sends a JSON request to the server's MLflow API and decodes
// the answer into out (when not nil).
func mlflowCall(t *testing.T, base, method, path string, body any, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// logLightGBM logs a LightGBM model file as a run's "model" directory
// through the server's MLflow API and artifact proxy, and registers it as a
// version of name, as mlflow.lightgbm.log_model does; it returns the version.
func logLightGBM(t *testing.T, base, name, modelFile string) string {
	t.Helper()
	var run struct {
		Run struct {
			Info struct {
				RunID       string `json:"run_id"`
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	mlflowCall(t, base, "POST", "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": "0"}, &run)
	dir := strings.TrimPrefix(run.Run.Info.ArtifactURI, "mlflow-artifacts:/")
	data, err := os.ReadFile(filepath.Join("../../internal/modeling/modelfile/testdata", modelFile))
	if err != nil {
		t.Fatal(err)
	}
	for file, body := range map[string][]byte{
		"MLmodel":   []byte("artifact_path: model\nflavors:\n  lightgbm:\n    data: model.lgb\n    model_class: lightgbm.basic.Booster\n"),
		"model.lgb": data,
	} {
		req, _ := http.NewRequest("PUT", base+"/api/2.0/mlflow-artifacts/artifacts/"+dir+"/model/"+file, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("upload %s: %d", file, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", base+"/api/2.0/mlflow/registered-models/get?name="+name, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 404 {
			mlflowCall(t, base, "POST", "/api/2.0/mlflow/registered-models/create", map[string]any{"name": name}, nil)
		}
	}
	var v struct {
		ModelVersion struct {
			Version string `json:"version"`
		} `json:"model_version"`
	}
	mlflowCall(t, base, "POST", "/api/2.0/mlflow/model-versions/create",
		map[string]any{"name": name, "source": "runs:/" + run.Run.Info.RunID + "/model", "run_id": run.Run.Info.RunID}, &v)
	return v.ModelVersion.Version
}

type inferAnswer struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	Outputs      []struct {
		Name string    `json:"name"`
		Data []float64 `json:"data"`
	} `json:"outputs"`
	Error string `json:"error"`
}

func infer(t *testing.T, base, name string, rows [][]float64) (int, inferAnswer) {
	t.Helper()
	var flat []float64
	for _, r := range rows {
		flat = append(flat, r...)
	}
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "x", "datatype": "FP64", "shape": []int{len(rows), len(rows[0])}, "data": flat}}})
	resp, err := http.Post(base+"/v2/models/"+name+"/infer", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a inferAnswer
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("infer answer %s: %v", b, err)
	}
	return resp.StatusCode, a
}

// TestServeModels: a model logged and registered through the server's MLflow
// API answers /v2/models/{name}/infer once its champion alias is set, and
// the server follows the alias when it moves, with no restart.
func TestServeModels(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte("serving:\n  poll_interval: 100ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startServer(t, dir)
	v1 := logLightGBM(t, base, "ranker", "lightgbm_binary.txt")
	v2 := logLightGBM(t, base, "ranker", "lightgbm_regression.txt")
	rows := [][]float64{{0.1, -0.9, 0.3, 2}}

	code, a := infer(t, base, "ranker", rows)
	if code != 404 || !strings.Contains(a.Error, `model "ranker" has no alias "champion"`) {
		t.Fatalf("infer without champion: %d %+v", code, a)
	}
	mlflowCall(t, base, "POST", "/api/2.0/mlflow/registered-models/alias", map[string]any{"name": "ranker", "alias": "champion", "version": v1}, nil)
	code, a = infer(t, base, "ranker", rows)
	if code != 200 || a.ModelName != "ranker" || a.ModelVersion != v1 || len(a.Outputs) != 1 || a.Outputs[0].Name != "predict" ||
		len(a.Outputs[0].Data) != 1 || !(a.Outputs[0].Data[0] > 0 && a.Outputs[0].Data[0] < 1) {
		t.Fatalf("infer: %d %+v", code, a)
	}
	mlflowCall(t, base, "POST", "/api/2.0/mlflow/registered-models/alias", map[string]any{"name": "ranker", "alias": "champion", "version": v2}, nil)
	deadline := time.Now().Add(5 * time.Second) // the bound for a deploy
	for a.ModelVersion != v2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if code, a = infer(t, base, "ranker", rows); code != 200 {
			t.Fatalf("infer during the swap: %d %+v", code, a)
		}
	}
	if a.ModelVersion != v2 {
		t.Fatalf("still serving version %s 5 s after the alias moved to %s", a.ModelVersion, v2)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`atrium_model_requests_total{model="ranker",version="` + v2 + `"}`,
		`atrium_model_serving_info{alias="champion",model="ranker",version="` + v2 + `"} 1`,
		`atrium_model_swaps_total{alias="champion",model="ranker"} 1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
