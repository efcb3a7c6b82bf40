package mlflow_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestUserFlow runs user_flow.py (issue 4, item 5) against atrium serve with
// SQLite metadata, and with PostgreSQL metadata (a fresh database) when
// ATRIUM_TEST_POSTGRES is set.
func TestUserFlow(t *testing.T) {
	interoptest.Python(t, "the real-mlflow-client test")
	t.Run("sqlite", func(t *testing.T) {
		srv := startAtrium(t, t.TempDir())
		runPython(t, srv, "user_flow.py")
	})
	t.Run("postgres", func(t *testing.T) {
		srv := startAtrium(t, t.TempDir(), "ATRIUM_META="+metatest.PostgresURL(t))
		runPython(t, srv, "user_flow.py")
	})
}

// TestClientMistakes runs client_mistakes.py: client mistakes sent by the real
// client come back as 4xx with MLflow's error codes (never a 5xx, which the
// client would retry), on SQLite and on PostgreSQL, where the engines' limits
// and text rules differ.
func TestClientMistakes(t *testing.T) {
	interoptest.Python(t, "the real-mlflow-client test")
	t.Run("sqlite", func(t *testing.T) {
		runPython(t, startAtrium(t, t.TempDir()), "client_mistakes.py")
	})
	t.Run("postgres", func(t *testing.T) {
		runPython(t, startAtrium(t, t.TempDir(), "ATRIUM_META="+metatest.PostgresURL(t)), "client_mistakes.py")
	})
}

// call POSTs (or GETs, with body as the query) a tracking API method and
// decodes the answer; any status but 200 fails the test.
func call(t *testing.T, srv *atriumServer, method, endpoint string, body any, out any) {
	t.Helper()
	if err := tryCall(srv, method, endpoint, body, out); err != nil {
		t.Fatal(err)
	}
}

// tryCall is call for goroutines other than the test's.
func tryCall(srv *atriumServer, method, endpoint string, body any, out any) error {
	target := srv.URL + "/api/2.0/mlflow/" + endpoint
	var req *http.Request
	var err error
	if method == "GET" {
		req, err = http.NewRequest("GET", target+"?"+body.(url.Values).Encode(), nil)
	} else {
		b, merr := json.Marshal(body)
		if merr != nil {
			return merr
		}
		req, err = http.NewRequest(method, target, bytes.NewReader(b))
	}
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, endpoint, err)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s = %d %s", method, endpoint, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", method, endpoint, b, err)
		}
	}
	return nil
}

type metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// TestConcurrentMetricLogging: 8 clients log 10,000 points each of one metric
// to one run at the same time, in log-batch requests of different sizes so the
// writes interleave; the metric history then holds all 80,000 points, each
// with its exact value, and the run's latest value is the highest step's.
// (Plain HTTP clients: 80,000 points through the Python client would only make
// the test slower, not the server's side of it different.)
func TestConcurrentMetricLogging(t *testing.T) {
	interoptest.Python(t, "the real-mlflow-client test")
	srv := startAtrium(t, t.TempDir())
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	call(t, srv, "POST", "experiments/create", map[string]any{"name": "concurrency"}, &exp)
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	call(t, srv, "POST", "runs/create", map[string]any{"experiment_id": exp.ExperimentID, "start_time": time.Now().UnixMilli()}, &run)
	runID := run.Run.Info.RunID

	const clients, perClient = 8, 10000
	value := func(step int64) float64 { return float64(step)/7 + 0.5 }
	ts := time.Now().UnixMilli()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := 50 + 100*c // 50 to 750 metrics per request
			for start := 0; start < perClient; start += batch {
				ms := make([]metric, 0, batch)
				for i := start; i < min(start+batch, perClient); i++ {
					step := int64(c*perClient + i)
					ms = append(ms, metric{Key: "loss", Value: value(step), Timestamp: ts + int64(i), Step: step})
				}
				if err := tryCall(srv, "POST", "runs/log-batch", map[string]any{"run_id": runID, "metrics": ms}, nil); err != nil {
					errs <- fmt.Errorf("client %d: %w", c, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	seen := make(map[int64]float64, clients*perClient)
	token := ""
	for page := 0; ; page++ {
		q := url.Values{"run_id": {runID}, "metric_key": {"loss"}, "max_results": {"25000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var resp struct {
			Metrics       []metric `json:"metrics"`
			NextPageToken string   `json:"next_page_token"`
		}
		call(t, srv, "GET", "metrics/get-history", q, &resp)
		for _, m := range resp.Metrics {
			if _, dup := seen[m.Step]; dup {
				t.Fatalf("step %d returned twice", m.Step)
			}
			seen[m.Step] = m.Value
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
		if page > clients*perClient {
			t.Fatal("get-history pages never end")
		}
	}
	if len(seen) != clients*perClient {
		t.Fatalf("metric history holds %d points, want %d: points were lost", len(seen), clients*perClient)
	}
	for step := range int64(clients * perClient) {
		if v, ok := seen[step]; !ok || v != value(step) {
			t.Fatalf("step %d = %v (present %v), want %v", step, v, ok, value(step))
		}
	}
	var got struct {
		Run struct {
			Data struct {
				Metrics []metric `json:"metrics"`
			} `json:"data"`
		} `json:"run"`
	}
	call(t, srv, "GET", "runs/get", url.Values{"run_id": {runID}}, &got)
	want := metric{Key: "loss", Value: value(clients*perClient - 1), Timestamp: ts + perClient - 1, Step: clients*perClient - 1}
	if len(got.Run.Data.Metrics) != 1 || got.Run.Data.Metrics[0] != want {
		t.Fatalf("latest metrics = %+v, want [%+v]", got.Run.Data.Metrics, want)
	}
	t.Logf("%d clients x %d points: all %d present", clients, perClient, len(seen))
}
