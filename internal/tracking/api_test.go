package tracking_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/search"
)

// client calls an httptest server running the tracking API over a real store.
type client struct {
	t   *testing.T
	url string
}

func newClient(t *testing.T, db *meta.DB) *client {
	t.Helper()
	store, err := tracking.New(context.Background(), db, tracking.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Options{}, tracking.NewAPI(store, nil, nil)).Handler())
	t.Cleanup(srv.Close)
	return &client{t: t, url: srv.URL}
}

// do sends body (a string, or a value marshaled to JSON) and decodes the reply.
func (c *client) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: response is not a JSON object: %q", method, path, raw)
	}
	return resp.StatusCode, out
}

// ok sends a request that must succeed.
func (c *client) ok(method, path string, body any) map[string]any {
	c.t.Helper()
	code, out := c.do(method, path, body)
	if code != 200 {
		c.t.Fatalf("%s %s = %d %v", method, path, code, out)
	}
	return out
}

// fails sends a request that must fail with status, error code and message part.
func (c *client) fails(method, path string, body any, status int, code, msg string) {
	c.t.Helper()
	got, out := c.do(method, path, body)
	if got != status || out["error_code"] != code || !strings.Contains(fmt.Sprint(out["message"]), msg) {
		c.t.Fatalf("%s %s = %d %v; want %d %s containing %q", method, path, got, out, status, code, msg)
	}
}

const api = "/api/2.0/mlflow"

func TestAPIRunFlow(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		c := newClient(t, db)
		// int64 as a string, unknown fields ignored.
		exp := c.ok("POST", api+"/experiments/create", `{"name":"e1","tags":[{"key":"a","value":"b"}],"workspace":"x"}`)["experiment_id"].(string)
		got := c.ok("GET", "/ajax-api/2.0/mlflow/experiments/get-by-name?experiment_name=e1", nil)
		if got["experiment"].(map[string]any)["experiment_id"] != exp {
			t.Fatalf("get-by-name = %v", got)
		}
		run := c.ok("POST", api+"/runs/create", map[string]any{"experiment_id": exp, "start_time": "1700000000000", "user_id": "u",
			"tags": []map[string]string{{"key": "mlflow.user", "value": "u"}}})["run"].(map[string]any)
		info := run["info"].(map[string]any)
		id := info["run_id"].(string)
		if info["run_uuid"] != id || info["status"] != "RUNNING" || info["start_time"] != float64(1700000000000) || info["end_time"] != nil {
			t.Fatalf("run info = %v", info)
		}
		c.ok("POST", api+"/runs/log-parameter", map[string]any{"run_uuid": id, "key": "p", "value": "1"})
		c.ok("POST", api+"/runs/log-metric", map[string]any{"run_id": id, "key": "m", "value": "NaN", "timestamp": 5, "step": "2"})
		c.ok("POST", api+"/runs/log-metric", map[string]any{"run_id": id, "key": "inf", "value": "Infinity", "timestamp": 5})
		c.ok("POST", api+"/runs/set-tag", map[string]any{"run_id": id, "key": "t", "value": "v"})
		c.ok("POST", api+"/runs/log-batch", map[string]any{"run_id": id,
			"metrics": []map[string]any{{"key": "acc", "value": 0.5, "timestamp": 1, "step": 0}, {"key": "acc", "value": 0.7, "timestamp": 2, "step": 1}},
			"params":  []map[string]any{{"key": "q", "value": "2"}},
			"tags":    []map[string]any{{"key": "t2", "value": "x"}}})
		c.ok("POST", api+"/runs/delete-tag", map[string]any{"run_id": id, "key": "t2"})
		upd := c.ok("POST", api+"/runs/update", map[string]any{"run_id": id, "status": "FINISHED", "end_time": 1700000001000})
		if ri := upd["run_info"].(map[string]any); ri["status"] != "FINISHED" || ri["end_time"] != float64(1700000001000) {
			t.Fatalf("update = %v", upd)
		}
		got = c.ok("GET", api+"/runs/get?run_id="+id, nil)
		data := got["run"].(map[string]any)["data"].(map[string]any)
		metrics := map[string]any{}
		for _, m := range data["metrics"].([]any) {
			mm := m.(map[string]any)
			metrics[mm["key"].(string)] = mm["value"]
		}
		if metrics["m"] != "NaN" || metrics["acc"] != 0.7 || metrics["inf"] != 1.7976931348623157e308 || len(data["params"].([]any)) != 2 {
			t.Fatalf("run data = %v", data)
		}
		hist := c.ok("GET", api+"/metrics/get-history?run_id="+id+"&metric_key=acc&max_results=1", nil)
		if len(hist["metrics"].([]any)) != 1 || hist["next_page_token"] == nil {
			t.Fatalf("history page = %v", hist)
		}
		hist = c.ok("GET", api+"/metrics/get-history?run_id="+id+"&metric_key=acc&max_results=1&page_token="+url.QueryEscape(hist["next_page_token"].(string)), nil)
		if ms := hist["metrics"].([]any); len(ms) != 1 || ms[0].(map[string]any)["value"] != 0.7 {
			t.Fatalf("history page 2 = %v", hist)
		}
		// Repeated keys in the query string.
		bulk := c.ok("GET", api+"/metrics/get-history-bulk-interval?run_ids="+id+"&run_ids="+id+"&metric_key=acc&max_results=10", nil)
		if len(bulk["metrics"].([]any)) != 4 {
			t.Fatalf("bulk interval = %v", bulk)
		}
		search := c.ok("POST", api+"/runs/search", map[string]any{"experiment_ids": []string{exp}, "filter": "metrics.acc > 0.6 and params.p = '1'",
			"order_by": []string{"metrics.acc DESC"}, "max_results": "10"})
		if runs := search["runs"].([]any); len(runs) != 1 {
			t.Fatalf("search = %v", search)
		}
		empty := c.ok("POST", api+"/runs/search", map[string]any{"experiment_ids": []string{exp}, "filter": "params.p = 'zzz'"})
		if runs, ok := empty["runs"].([]any); !ok || len(runs) != 0 {
			t.Fatalf("empty search = %v", empty)
		}
		c.ok("POST", api+"/runs/log-inputs", map[string]any{"run_id": id, "datasets": []map[string]any{{
			"tags": []map[string]string{{"key": "mlflow.data.context", "value": "train"}}, "dataset": map[string]string{"name": "d", "digest": "x", "source_type": "local", "source": "{}"}}}})
		sums := c.ok("POST", api+"/experiments/search-datasets", map[string]any{"experiment_ids": []string{exp}})
		if s := sums["dataset_summaries"].([]any); len(s) != 1 || s[0].(map[string]any)["context"] != "train" {
			t.Fatalf("search-datasets = %v", sums)
		}
		c.ok("POST", api+"/runs/delete", map[string]any{"run_id": id})
		c.ok("POST", api+"/runs/restore", map[string]any{"run_id": id})
		exps := c.ok("GET", api+"/experiments/search?max_results=5&filter="+url.QueryEscape("tags.a = 'b'"), nil)
		if len(exps["experiments"].([]any)) != 1 {
			t.Fatalf("experiments search = %v", exps)
		}
		c.ok("POST", api+"/experiments/update", map[string]any{"experiment_id": exp, "new_name": "e2"})
		c.ok("POST", api+"/experiments/set-experiment-tag", map[string]any{"experiment_id": exp, "key": "k", "value": "v"})
		c.ok("POST", api+"/experiments/delete-experiment-tag", map[string]any{"experiment_id": exp, "key": "k"})
		c.ok("POST", api+"/experiments/delete", map[string]any{"experiment_id": exp})
		c.ok("POST", api+"/experiments/restore", map[string]any{"experiment_id": exp})
		// Older clients double-encode the JSON body.
		dbl, _ := json.Marshal(`{"experiment_id":"` + exp + `","key":"dbl","value":"1"}`)
		c.ok("POST", api+"/experiments/set-experiment-tag", string(dbl))
	}, tracking.Schema)
}

func TestAPIErrors(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		c := newClient(t, db)
		id := c.ok("POST", api+"/runs/create", map[string]any{"experiment_id": "0"})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		tests := []struct {
			method, path string
			body         any
			status       int
			code, msg    string
		}{
			{"GET", api + "/experiments/get?experiment_id=99", nil, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=99 exists"},
			{"GET", api + "/experiments/get", nil, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_id'"},
			{"GET", api + "/experiments/get-by-name?experiment_name=none", nil, 404, "RESOURCE_DOES_NOT_EXIST", "Could not find experiment with name 'none'"},
			{"POST", api + "/experiments/create", `{"name":"Default"}`, 400, "RESOURCE_ALREADY_EXISTS", "already exists"},
			{"POST", api + "/experiments/create", `{"name": 5}`, 400, "INVALID_PARAMETER_VALUE", "Invalid value for parameter 'name' supplied: expected a string"},
			{"POST", api + "/experiments/create", `{"name":`, 400, "BAD_REQUEST", "Malformed JSON"},
			{"POST", api + "/experiments/create", `[1,2]`, 400, "BAD_REQUEST", "expected a JSON object"},
			{"GET", api + "/runs/get?run_id=ffffffffffffffffffffffffffffffff", nil, 404, "RESOURCE_DOES_NOT_EXIST", "not found"},
			{"POST", api + "/runs/log-metric", map[string]any{"run_id": id, "key": "m", "timestamp": 1}, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'value'"},
			{"POST", api + "/runs/log-metric", map[string]any{"run_id": id, "key": "m", "value": "abc", "timestamp": 1}, 400, "INVALID_PARAMETER_VALUE", "for parameter 'value' supplied: expected a number"},
			{"POST", api + "/runs/log-metric", map[string]any{"run_id": id, "key": "m", "value": 1, "timestamp": "soon"}, 400, "INVALID_PARAMETER_VALUE", "for parameter 'timestamp' supplied: expected a 64-bit integer"},
			{"POST", api + "/runs/log-batch", map[string]any{"run_id": id, "metrics": []map[string]any{{"key": "m", "value": 1}}}, 400, "INVALID_PARAMETER_VALUE", "'metrics[0].timestamp'"},
			{"POST", api + "/runs/log-batch", map[string]any{"run_id": id, "params": []map[string]any{{"value": "1"}}}, 400, "INVALID_PARAMETER_VALUE", "'params[0].key'"},
			{"POST", api + "/runs/log-batch", `{"run_id":"` + id + `","tags":[{"key":"t","value":"` + strings.Repeat("x", 8<<20) + `"}]}`, 400, "INVALID_PARAMETER_VALUE", "Batched logging API requests must be at most 8388608 bytes."},
			{"POST", api + "/runs/update", map[string]any{"run_id": id, "status": "DONE"}, 400, "INVALID_PARAMETER_VALUE", "Invalid value \"DONE\" for parameter 'status'"},
			{"POST", api + "/runs/search", map[string]any{"experiment_ids": []string{"0"}, "filter": "metrics.a < 1 or metrics.b > 2"}, 400, "INVALID_PARAMETER_VALUE", "Invalid clause(s) in filter string: 'or'"},
			{"POST", api + "/runs/search", map[string]any{"experiment_ids": []string{"0"}, "max_results": 0}, 400, "INVALID_PARAMETER_VALUE", "It must be a positive integer"},
			{"POST", api + "/runs/search", map[string]any{"experiment_ids": []string{"0"}, "page_token": "%%%"}, 400, "INVALID_PARAMETER_VALUE", "Invalid page token"},
			{"GET", api + "/metrics/get-history-bulk-interval?run_ids=" + id + "&metric_key=m&max_results=3000", nil, 400, "INVALID_PARAMETER_VALUE", "max_results must be between 1 and 2500."},
			{"GET", api + "/metrics/get-history-bulk-interval?run_ids=" + id + "&metric_key=m&start_step=5", nil, 400, "INVALID_PARAMETER_VALUE", "both must be specified"},
			{"GET", api + "/metrics/get-history?run_id=" + id + "&metric_key=m&max_results=0", nil, 400, "INVALID_PARAMETER_VALUE", "It must be a positive integer."},
			{"POST", api + "/experiments/create", map[string]any{"name": "bad", "artifact_location": "/etc"}, 400, "INVALID_PARAMETER_VALUE", "local paths are not allowed"},
			{"GET", api + "/artifacts/list?run_id=" + id, nil, 501, "NOT_IMPLEMENTED", "no artifact store"},
			{"GET", api + "/no/such/endpoint", nil, 404, "ENDPOINT_NOT_FOUND", "No API endpoint found for GET"},
			{"GET", api + "/runs/create", nil, 405, "ENDPOINT_NOT_FOUND", "Method GET is not allowed for /api/2.0/mlflow/runs/create; use POST"},
			{"PATCH", api + "/logged-models/m-nope", map[string]any{"status": "LOGGED_MODEL_READY"}, 404, "RESOURCE_DOES_NOT_EXIST", "Logged model with ID 'm-nope' not found."},
			{"PATCH", api + "/logged-models/m-nope", map[string]any{"status": "WHATEVER"}, 400, "INVALID_PARAMETER_VALUE", "'status'"},
			{"POST", api + "/runs/outputs", map[string]any{"run_id": id}, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'models'"},
			{"POST", api + "/runs/log-model", map[string]any{"run_id": id, "model_json": "{"}, 400, "INVALID_PARAMETER_VALUE", "Malformed model info"},
		}
		for _, tt := range tests {
			c.fails(tt.method, tt.path, tt.body, tt.status, tt.code, tt.msg)
		}
		// A body over the default limit is refused as a client error, not a 5xx.
		c.fails("POST", api+"/experiments/create", `{"name":"`+strings.Repeat("n", 9<<20)+`"}`, 400, "INVALID_PARAMETER_VALUE", "larger than the limit")
	}, tracking.Schema)
}

func TestAPILoggedModels(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		c := newClient(t, db)
		run := c.ok("POST", api+"/runs/create", map[string]any{"experiment_id": "0"})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		m := c.ok("POST", api+"/logged-models", map[string]any{"experiment_id": "0", "name": "model", "source_run_id": run,
			"params": []map[string]string{{"key": "alpha", "value": "1"}}})["model"].(map[string]any)
		info := m["info"].(map[string]any)
		id := info["model_id"].(string)
		if info["status"] != "LOGGED_MODEL_PENDING" || info["artifact_uri"] != "mlflow-artifacts:/0/models/"+id+"/artifacts" {
			t.Fatalf("created = %v", m)
		}
		c.ok("POST", api+"/runs/outputs", map[string]any{"run_id": run, "models": []map[string]any{{"model_id": id, "step": 0}}})
		c.ok("POST", api+"/runs/log-batch", map[string]any{"run_id": run, "metrics": []map[string]any{{"key": "acc", "value": 0.9, "timestamp": 1, "model_id": id, "dataset_name": "eval", "dataset_digest": "d"}}})
		fin := c.ok("PATCH", api+"/logged-models/"+id, map[string]any{"model_id": id, "status": 2})["model"].(map[string]any)
		if fin["info"].(map[string]any)["status"] != "LOGGED_MODEL_READY" || len(fin["data"].(map[string]any)["metrics"].([]any)) != 1 {
			t.Fatalf("finalized = %v", fin)
		}
		c.ok("PATCH", api+"/logged-models/"+id+"/tags", map[string]any{"tags": []map[string]string{{"key": "k", "value": "v"}}})
		c.ok("POST", api+"/logged-models/"+id+"/params", map[string]any{"params": []map[string]string{{"key": "beta", "value": "2"}}})
		c.ok("DELETE", api+"/logged-models/"+id+"/tags/k", nil)
		found := c.ok("POST", api+"/logged-models/search", map[string]any{"experiment_ids": []string{"0"}, "filter": "metrics.acc > 0.5",
			"order_by": []map[string]any{{"field_name": "metrics.acc", "ascending": false}}})
		if len(found["models"].([]any)) != 1 {
			t.Fatalf("search = %v", found)
		}
		r := c.ok("GET", api+"/runs/get?run_id="+run, nil)["run"].(map[string]any)
		if outs := r["outputs"].(map[string]any)["model_outputs"].([]any); len(outs) != 1 {
			t.Fatalf("run outputs = %v", r["outputs"])
		}
		c.ok("DELETE", api+"/logged-models/"+id, nil)
		c.fails("GET", api+"/logged-models/"+id, nil, 404, "RESOURCE_DOES_NOT_EXIST", "not found")
		c.ok("GET", api+"/logged-models/"+id+"?allow_deleted=true", nil)
	}, tracking.Schema)
}

// TestAPILargestBatch: a batch at every count and length limit is accepted
// (it is well over the 1 MB MLflow documents but does not enforce).
func TestAPILargestBatch(t *testing.T) {
	c := newClient(t, metatest.SQLite(t, tracking.Schema))
	id := c.ok("POST", api+"/runs/create", map[string]any{})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	var params, tags, metrics []map[string]any
	for i := 0; i < 100; i++ {
		params = append(params, map[string]any{"key": fmt.Sprintf("p%03d", i), "value": strings.Repeat("é", 6000)})
		tags = append(tags, map[string]any{"key": fmt.Sprintf("t%03d", i), "value": strings.Repeat("t", 8000)})
	}
	for i := 0; i < 800; i++ {
		metrics = append(metrics, map[string]any{"key": strings.Repeat("k", 250), "value": i, "timestamp": i, "step": i})
	}
	c.ok("POST", api+"/runs/log-batch", map[string]any{"run_id": id, "params": params, "tags": tags, "metrics": metrics})
	run := c.ok("GET", api+"/runs/get?run_id="+id, nil)["run"].(map[string]any)["data"].(map[string]any)
	if len(run["params"].([]any)) != 100 || len(run["tags"].([]any)) < 100 {
		t.Fatalf("stored %d params, %d tags", len(run["params"].([]any)), len(run["tags"].([]any)))
	}
}

// TestAPIValuesTheEngineRefuses: a NUL byte is valid JSON; PostgreSQL refuses it
// in text. Either engine stores it or answers 400, never a (retried) 500.
func TestAPIValuesTheEngineRefuses(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		c := newClient(t, db)
		id := c.ok("POST", api+"/runs/create", map[string]any{})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		for _, req := range []struct {
			path string
			body any
		}{
			{"/runs/set-tag", map[string]any{"run_id": id, "key": "t", "value": "a\x00b"}},
			{"/runs/log-parameter", map[string]any{"run_id": id, "key": "p", "value": "a\x00b"}},
			{"/experiments/create", map[string]any{"name": "e\x00"}},
		} {
			code, out := c.do("POST", api+req.path, req.body)
			if code != 200 && (code != 400 || out["error_code"] != "INVALID_PARAMETER_VALUE") {
				t.Errorf("%s with a NUL byte = %d %v, want 200 or 400 INVALID_PARAMETER_VALUE", req.path, code, out)
			}
		}
	}, tracking.Schema)
}

// TestSearchFilterLimits sends the largest filters the parser admits to the
// real engines (they must run), and larger ones (they must be a 400, not the
// engine's error as a 500, which the client would retry).
func TestSearchFilterLimits(t *testing.T) {
	conds := func(n int, format string) []string {
		cs := make([]string, n)
		for i := range cs {
			cs[i] = fmt.Sprintf(format, i)
		}
		return cs
	}
	in := func(key string, values []string) string {
		return key + " IN ('" + strings.Join(values, "','") + "')"
	}
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		c := newClient(t, db)
		exp := c.ok("POST", api+"/experiments/create", map[string]any{"name": "limits"})["experiment_id"].(string)
		run := c.ok("POST", api+"/runs/create", map[string]any{"experiment_id": exp})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		c.ok("POST", api+"/runs/log-metric", map[string]any{"run_id": run, "key": "m0", "value": 1, "timestamp": 1})
		// Every experiment id and list value is a bound parameter.
		expIDs := append(conds(9999, "%d"), exp)
		for _, tt := range []struct {
			name, filter string
			expIDs       []string
			msg          string // "" when the search must succeed and find run
		}{
			{"most values", in("attributes.run_id", append(conds(9999, "r%d"), run)), expIDs, ""},
			{"most conditions", strings.Join(append(conds(search.MaxRequestClauses-1, "metrics.m0 > -%d"), "attributes.run_id = '"+run+"'"), " and "), expIDs, ""},
			{"most tag conditions", strings.Join(append(conds(search.MaxRequestClauses-1, "tags.t%d IS NULL"), "attributes.run_id = '"+run+"'"), " and "), []string{exp}, ""},
			{"one condition too many", strings.Join(conds(search.MaxRequestClauses+1, "tags.t%d != 'x'"), " and "), []string{exp}, "at most 200 conditions; this one has more than 200"},
			{"too many values", strings.Repeat(in("attributes.run_id", conds(9000, "r%d"))+" and ", 4) + in("datasets.name", conds(9000, "d%d")), []string{exp}, "got more than 10000 values"},
			{"too many conditions", strings.Join(conds(2000, "metrics.m0 > -%d"), " and "), []string{exp}, "at most 200 conditions; this one has more than 200"},
		} {
			body := map[string]any{"experiment_ids": tt.expIDs, "filter": tt.filter}
			if tt.msg != "" {
				c.fails("POST", api+"/runs/search", body, 400, "INVALID_PARAMETER_VALUE", tt.msg)
				continue
			}
			runs, _ := c.ok("POST", api+"/runs/search", body)["runs"].([]any)
			if len(runs) != 1 {
				t.Errorf("%s: found %d runs, want 1", tt.name, len(runs))
			}
		}
		c.fails("POST", api+"/experiments/search", map[string]any{"filter": strings.Join(conds(2000, "name != '%d'"), " and ")},
			400, "INVALID_PARAMETER_VALUE", "at most 200 conditions")
		c.fails("POST", api+"/experiments/search", map[string]any{"filter": strings.Join(conds(search.MaxRequestClauses+1, "tags.t%d = 'x'"), " and ")},
			400, "INVALID_PARAMETER_VALUE", "this one has more than 200")
		c.fails("POST", api+"/logged-models/search", map[string]any{"experiment_ids": []string{exp}, "filter": strings.Join(conds(search.MaxRequestClauses+1, "metrics.m%d > 0"), " and ")},
			400, "INVALID_PARAMETER_VALUE", "this one has more than 200")
		// The other searches take as many conditions (on PostgreSQL, past the
		// first few, subqueries are not joins: search.Where.SQL).
		exps, _ := c.ok("POST", api+"/experiments/search", map[string]any{"filter": strings.Join(append(conds(search.MaxRequestClauses-1, "tags.t%d IS NULL"), "name = 'limits'"), " and ")})["experiments"].([]any)
		if len(exps) != 1 {
			t.Errorf("experiments search of %d conditions found %d experiments, want 1", search.MaxRequestClauses, len(exps))
		}
		exps, _ = c.ok("POST", api+"/experiments/search", map[string]any{"filter": strings.Join(conds(search.MaxRequestClauses, "tags.t%d != 'x'"), " and ")})["experiments"].([]any)
		if len(exps) != 0 {
			t.Errorf("experiments search of %d conditions on missing tags found %d experiments, want 0", search.MaxRequestClauses, len(exps))
		}
		c.ok("POST", api+"/logged-models/search", map[string]any{"experiment_ids": []string{exp}, "filter": strings.Join(conds(search.MaxRequestClauses, "metrics.m%d > 0"), " and ")})
	}, tracking.Schema)
}

// TestNULAndBadUTF8 checks that text PostgreSQL cannot store is refused the
// same way on both engines (SQLite would store it), wherever it arrives.
func TestNULAndBadUTF8(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		c := newClient(t, db)
		for _, tt := range []struct {
			method, path string
			body         any
		}{
			{"POST", api + "/experiments/create", `{"name":"a\u0000b"}`},
			{"GET", api + "/experiments/get-by-name?experiment_name=a%00b", nil},
			{"POST", api + "/runs/create", `{"experiment_id":"0","tags":[{"key":"k","value":"\u0000"}]}`},
			{"POST", api + "/runs/search", `{"experiment_ids":["0"],"filter":"params.a = '\u0000'"}`},
			{"GET", api + "/logged-models/a%00b", nil},
		} {
			c.fails(tt.method, tt.path, tt.body, 400, "INVALID_PARAMETER_VALUE", "NUL characters")
		}
		c.fails("GET", api+"/logged-models/%FF", nil, 400, "INVALID_PARAMETER_VALUE", "not valid UTF-8")
		// Nothing was stored.
		if exps := c.ok("POST", api+"/experiments/search", map[string]any{})["experiments"].([]any); len(exps) != 1 {
			t.Fatalf("experiments = %v, want only Default", exps)
		}
	}, tracking.Schema)
}

// TestLikeEscapes checks that LIKE and ILIKE patterns mean the same on both
// engines: '\' escapes '%', '_' and itself (PostgreSQL's default, which SQLite
// only follows with an ESCAPE clause).
func TestLikeEscapes(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		c := newClient(t, db)
		exp := c.ok("POST", api+"/experiments/create", map[string]any{"name": "like"})["experiment_id"].(string)
		for _, v := range []string{"a_b", "axb", `a\b`, "a%b", "A_B", `a\xb`} {
			id := c.ok("POST", api+"/runs/create", map[string]any{"experiment_id": exp})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
			c.ok("POST", api+"/runs/log-parameter", map[string]any{"run_id": id, "key": "p", "value": v})
		}
		for _, tt := range []struct {
			filter string
			want   string // the matching values, sorted, joined by spaces
		}{
			{`params.p LIKE 'a_b'`, `a%b a\b a_b axb`},
			{`params.p LIKE 'a\_b'`, `a_b`},
			{`params.p LIKE 'a\%b'`, `a%b`},
			{`params.p LIKE 'a\\b'`, `a\b`},
			{`params.p LIKE 'a\\_b'`, `a\xb`},
			{`params.p ILIKE 'a\_b'`, `A_B a_b`},
			{`params.p LIKE 'a\xb'`, `axb`}, // an escaped ordinary character is itself
		} {
			runs, _ := c.ok("POST", api+"/runs/search", map[string]any{"experiment_ids": []string{exp}, "filter": tt.filter})["runs"].([]any)
			var got []string
			for _, r := range runs {
				got = append(got, r.(map[string]any)["data"].(map[string]any)["params"].([]any)[0].(map[string]any)["value"].(string))
			}
			sort.Strings(got)
			if strings.Join(got, " ") != tt.want {
				t.Errorf("%s matched %q, want %q", tt.filter, got, tt.want)
			}
		}
	}, tracking.Schema)
}
