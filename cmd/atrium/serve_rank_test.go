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

	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// TestServeRankAndLog: `atrium serve` answers /v1/models/{name}/predict and
// /rank (a model without a feature service takes the request's values),
// returns the client's X-Request-Id, counts the requests on /metrics, and
// writes the scored rows to the prediction log under the offline store,
// where `atrium predictions` reads them.
func TestServeRankAndLog(t *testing.T) {
	dir := t.TempDir()
	yaml := "serving:\n  poll_interval: 100ms\n  max_candidates: 3\n  prediction_log:\n    flush_interval: 1s\n"
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startServer(t, dir)
	v := logLightGBM(t, base, "ranker", "lightgbm_binary.txt")
	mlflowCall(t, base, "POST", "/api/2.0/mlflow/registered-models/alias", map[string]any{"name": "ranker", "alias": "champion", "version": v}, nil)
	rows := [][]float64{{0.1, -0.9, 0.3, 2}, {1.5, 0.2, -0.4, 0}, {-1, 1, 1, 1}}
	_, want := infer(t, base, "ranker", rows)

	call := func(path, body string) (int, http.Header, []byte) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", "rank-process-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	features := `"features": {"x0": [0.1, 1.5, -1], "x1": [-0.9, 0.2, 1], "x2": [0.3, -0.4, 1], "c3": [2, 0, 1]}`
	code, h, body := call("/v1/models/ranker/predict", `{`+features+`}`)
	var p struct {
		Version     string    `json:"model_version"`
		RequestID   string    `json:"request_id"`
		Predictions []float64 `json:"predictions"`
	}
	if code != 200 || json.Unmarshal(body, &p) != nil || h.Get("X-Request-Id") != "rank-process-1" || p.RequestID != "rank-process-1" || p.Version != v {
		t.Fatalf("predict: %d %s (request id header %q)", code, body, h.Get("X-Request-Id"))
	}
	if len(p.Predictions) != 3 || !bytes.Equal(mustJSON(p.Predictions), mustJSON(want.Outputs[0].Data)) {
		t.Fatalf("predict %v, infer of the same rows %v", p.Predictions, want.Outputs[0].Data)
	}
	code, _, body = call("/v1/models/ranker/rank", `{"candidates": {"id": ["a", "b", "c"]}, `+features+`, "top_k": 2}`)
	var r struct {
		Ranked []struct {
			ID    string  `json:"id"`
			Score float64 `json:"score"`
		} `json:"ranked"`
	}
	if code != 200 || json.Unmarshal(body, &r) != nil || len(r.Ranked) != 2 || r.Ranked[0].Score < r.Ranked[1].Score {
		t.Fatalf("rank: %d %s", code, body)
	}
	if code, _, body = call("/v1/models/ranker/rank", `{"candidates": {"id": ["a", "b", "c", "d"]}}`); code != 413 || !strings.Contains(string(body), "at most 3") {
		t.Fatalf("4 candidates over serving.max_candidates 3: %d %s", code, body)
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`atrium_model_endpoint_requests_total{model="ranker",route="predict",version="` + v + `"} 1`,
		`atrium_model_endpoint_errors_total{model="ranker",reason="input",route="rank"} 1`,
		`atrium_prediction_log_buffer_capacity_rows`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The log is flushed every 100ms: the predict, rank and infer rows land.
	// The flusher runs in SCHED_IDLE, on cores nothing else wants: on a
	// machine busy with other tests it may wait minutes for one (the bound
	// only keeps a broken flusher from hanging the run).
	logDir := filepath.Join(dir, ".atrium", "offline")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		got, err := predlog.Read(t.Context(), logDir, "ranker", time.Time{}, time.Time{})
		routes := map[predlog.Route]int{}
		for _, row := range got {
			routes[row.Route]++
		}
		if err == nil && routes[predlog.RoutePredict] == 3 && routes[predlog.RouteRank] == 3 && routes[predlog.RouteInfer] == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prediction log rows by route %v (err %v), want 3 of predict, rank and infer", routes, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
