// Command loadgen drives an MLflow-compatible tracking server over its REST API
// with the workloads of docs/benchmarks.md ("Tracking and registry"), the same
// requests for every server, and writes the figures as JSON. bench/tracking/run.sh
// runs it against the real `mlflow server` and `atrium serve` on one machine;
// `loadgen -compare mlflow.json atrium.json` prints the markdown table.
// bench/tracking/mlflow-go.sh does the same for mlflow-go and Atrium on
// PostgreSQL and SQLite; `loadgen -compare a.json b.json c.json ...` (three
// or more reports) prints one row per workload and server, with percentiles.
//
// Workloads (in this order, each in a fresh experiment of its own):
//
//	create_run      create N runs (default 10,000) from C clients (default 8)
//	search_runs     over those N runs, each given a param, a metric and a tag
//	                first: filter "metrics.acc > 0.5 and params.model = 'gbdt'",
//	                ordered by metrics.acc DESC, 100 results; from 1 client
//	log_batch_1000  100 batches of 1,000 metrics into one run from 4 clients
//	metric_history  the full history of those 100,000 points, paged as the
//	                client does (max_results=25000), from 1 client
//	search_runs_1000_c20  latency of a search without filter returning 1,000
//	                of the N runs, 20 clients (mlflow-go's SearchRuns)
//	log_batch_500_c20   latency of log-batch with 500 metrics into one shared
//	                run, 20 clients (mlflow-go's LogMetricBatch500)
//	artifact_upload_32MiB, artifact_download_32MiB  through the artifact proxy
//	                (/api/2.0/mlflow-artifacts), 1 client
//	artifact_list_500   listing a directory of 500 artifacts, 1 client
//
// Every answer is checked (status 200, the expected counts and order) so a
// fast but wrong server cannot win.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

type options struct {
	url      string
	label    string
	out      string
	runs     int
	clients  int
	duration time.Duration
	only     string
}

// Result is one workload's figures.
type Result struct {
	Name       string  `json:"name"`
	Ops        int     `json:"ops"`
	Seconds    float64 `json:"seconds"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	Unit       string  `json:"unit"` // what one op is
	Clients    int     `json:"clients"`
	MeanMs     float64 `json:"mean_ms"`
	P50Ms      float64 `json:"p50_ms"`
	P95Ms      float64 `json:"p95_ms"`
	P99Ms      float64 `json:"p99_ms"`
	ItemsPerOp int     `json:"items_per_op,omitempty"`
	Retries    int     `json:"retries"` // 5xx answers retried (the mlflow client retries them too)
}

// Report is what loadgen writes.
type Report struct {
	Label   string    `json:"label"`
	URL     string    `json:"url"`
	Runs    int       `json:"runs"`
	Started time.Time `json:"started"`
	Results []Result  `json:"results"`
}

func main() {
	var o options
	var compare bool
	flag.StringVar(&o.url, "url", "", "tracking server base URL, e.g. http://127.0.0.1:5000")
	flag.StringVar(&o.label, "label", "", "name of the server in the report (mlflow, atrium)")
	flag.StringVar(&o.out, "out", "", "write the JSON report here (default stdout)")
	flag.IntVar(&o.runs, "runs", 10000, "runs to create and search over")
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients for create_run")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "time budget of each repeated workload")
	flag.StringVar(&o.only, "only", "", "run only these workload groups (comma-separated: runs, history, latency, artifacts)")
	flag.BoolVar(&compare, "compare", false, "print a markdown comparison of two reports: loadgen -compare peer.json ours.json")
	flag.Parse()
	var err error
	if compare {
		err = compareReports(flag.Args())
	} else {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.url == "" || o.label == "" {
		return errors.New("-url and -label are required")
	}
	c := &client{root: strings.TrimSuffix(o.url, "/"), base: strings.TrimSuffix(o.url, "/") + "/api/2.0/mlflow/", http: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		Timeout:   5 * time.Minute,
	}}
	rep := Report{Label: o.label, URL: o.url, Runs: o.runs, Started: time.Now().UTC()}
	groups := []struct {
		name string
		fn   func(*client, options) ([]Result, error)
	}{
		{"runs", benchRunsAndSearch}, {"history", benchLogBatchAndHistory},
		{"latency", benchConcurrentLatency}, {"artifacts", benchArtifacts},
	}
	for _, g := range groups {
		if o.only != "" && !slices.Contains(strings.Split(o.only, ","), g.name) {
			continue
		}
		rs, err := g.fn(c, o)
		if err != nil {
			return err
		}
		for _, r := range rs {
			fmt.Fprintf(os.Stderr, "%s %-20s %9.3g %s/s  mean %8.2f ms  p50 %8.2f  p95 %8.2f  (%d ops, %d clients, %d retries)\n",
				o.label, r.Name, r.OpsPerSec, r.Unit, r.MeanMs, r.P50Ms, r.P95Ms, r.Ops, r.Clients, r.Retries)
		}
		rep.Results = append(rep.Results, rs...)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if o.out == "" {
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	}
	return os.WriteFile(o.out, append(b, '\n'), 0o644)
}

// client calls the MLflow REST API.
type client struct {
	root    string // the server's base URL
	base    string // root + /api/2.0/mlflow/
	http    *http.Client
	mu      sync.Mutex
	retries int
}

// call sends one request. Like the mlflow client, it retries a 5xx answer or a
// failed connection (up to 3 times); retries are counted and reported.
func (c *client) call(method, endpoint string, body any, out any) error {
	var err error
	for try := 0; ; try++ {
		var retry bool
		retry, err = c.once(method, endpoint, body, out)
		if !retry || try == 3 {
			return err
		}
		c.mu.Lock()
		c.retries++
		c.mu.Unlock()
		time.Sleep(time.Duration(100<<try) * time.Millisecond)
	}
}

func (c *client) takeRetries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.retries
	c.retries = 0
	return n
}

func (c *client) once(method, endpoint string, body any, out any) (retry bool, err error) {
	var req *http.Request
	if method == http.MethodGet {
		req, err = http.NewRequest(method, c.base+endpoint+"?"+body.(url.Values).Encode(), nil)
	} else {
		b, merr := json.Marshal(body)
		if merr != nil {
			return false, merr
		}
		req, err = http.NewRequest(method, c.base+endpoint, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		return false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// A connection the server closed as idle just as it was reused (uvicorn
		// closes after 5 s): retried, as urllib3 does for the mlflow client.
		return true, fmt.Errorf("%s %s: %w", method, endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", method, endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode >= 500, fmt.Errorf("%s %s: %d %.300s", method, endpoint, resp.StatusCode, b)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return false, nil
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return false, fmt.Errorf("%s %s: decode: %w", method, endpoint, err)
		}
	}
	return false, nil
}

func (c *client) createExperiment(name string) (string, error) {
	var resp struct {
		ExperimentID string `json:"experiment_id"`
	}
	err := c.call(http.MethodPost, "experiments/create", map[string]any{"name": name}, &resp)
	return resp.ExperimentID, err
}

func (c *client) createRun(expID, name string, start int64) (string, error) {
	var resp struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	err := c.call(http.MethodPost, "runs/create", map[string]any{
		"experiment_id": expID, "run_name": name, "start_time": start, "user_id": "bench",
		"tags": []map[string]string{{"key": "mlflow.user", "value": "bench"}, {"key": "mlflow.source.type", "value": "LOCAL"}},
	}, &resp)
	return resp.Run.Info.RunID, err
}

type metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (c *client) logBatch(runID string, metrics []metric, params, tags []kv) error {
	body := map[string]any{"run_id": runID, "metrics": metrics}
	if params != nil {
		body["params"] = params
	}
	if tags != nil {
		body["tags"] = tags
	}
	return c.call(http.MethodPost, "runs/log-batch", body, nil)
}

// timer collects per-operation latencies.
type timer struct {
	mu   sync.Mutex
	lat  []time.Duration
	err  error
	from time.Time
}

func newTimer() *timer { return &timer{from: time.Now()} }

func (t *timer) do(fn func() error) error {
	start := time.Now()
	err := fn()
	d := time.Since(start)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return err
	}
	t.lat = append(t.lat, d)
	return nil
}

func (t *timer) result(c *client, name, unit string, clients, items int) (Result, error) {
	elapsed := time.Since(t.from)
	if t.err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, t.err)
	}
	lat := slices.Clone(t.lat)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))])
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	r := Result{Name: name, Ops: len(lat), Seconds: elapsed.Seconds(), Unit: unit, Clients: clients,
		P50Ms: pct(0.50), P95Ms: pct(0.95), P99Ms: pct(0.99), ItemsPerOp: items, Retries: c.takeRetries()}
	if len(lat) > 0 {
		r.MeanMs = ms(sum / time.Duration(len(lat)))
		r.OpsPerSec = float64(len(lat)) / elapsed.Seconds()
	}
	return r, nil
}

// parallel runs fn(worker, i) for i in [0, n) over `workers` goroutines, each i once.
func parallel(workers, n int, fn func(worker, i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(w, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// forDuration runs fn from `workers` goroutines until d has passed (at least
// minOps calls in all).
func forDuration(workers int, d time.Duration, minOps int, fn func(worker int) error) error {
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var done int
	var first error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				stop := first != nil || (time.Now().After(deadline) && done >= minOps)
				mu.Unlock()
				if stop {
					return
				}
				err := fn(w)
				mu.Lock()
				done++
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// warmUp sends a few rounds of requests from n clients and ignores their
// outcome, so every server worker process has served a request (loaded its
// lazy imports, opened its connections) before the measurement.
func warmUp(c *client, n int, fn func() error) {
	_ = forDuration(n, 0, 3*n, func(int) error { _ = fn(); return nil })
	c.takeRetries()
}

func suffix() string { return fmt.Sprintf("%d", time.Now().UnixNano()) }

// acc is run i's accuracy: spread over [0, 1) without ties.
func acc(i int) float64 { return float64((i*7919)%10007) / 10007 }

const searchFilter = "metrics.acc > 0.5 and params.model = 'gbdt'"

func benchRunsAndSearch(c *client, o options) ([]Result, error) {
	expID, err := c.createExperiment("bench-search-" + suffix())
	if err != nil {
		return nil, err
	}
	ids := make([]string, o.runs)
	t0 := time.Now().UnixMilli()
	tm := newTimer()
	err = parallel(o.clients, o.runs, func(_, i int) error {
		return tm.do(func() error {
			id, err := c.createRun(expID, fmt.Sprintf("run-%05d", i), t0+int64(i))
			ids[i] = id
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create_run: %w", err)
	}
	createRes, err := tm.result(c, "create_run", "runs", o.clients, 1)
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(os.Stderr, "%s: giving %d runs a param, a metric and a tag\n", o.label, o.runs)
	err = parallel(o.clients, o.runs, func(_, i int) error {
		model := "linear"
		if i%2 == 0 {
			model = "gbdt"
		}
		return c.logBatch(ids[i], []metric{{Key: "acc", Value: acc(i), Timestamp: t0 + int64(i), Step: 0}},
			[]kv{{Key: "model", Value: model}}, []kv{{Key: "team", Value: fmt.Sprintf("t%d", i%10)}})
	})
	if err != nil {
		return nil, fmt.Errorf("seed search runs: %w", err)
	}
	// The expected answer, computed here: gbdt runs (even i) with acc > 0.5, best first.
	var want []string
	var wantIdx []int
	for i := 0; i < o.runs; i += 2 {
		if acc(i) > 0.5 {
			wantIdx = append(wantIdx, i)
		}
	}
	sort.Slice(wantIdx, func(a, b int) bool { return acc(wantIdx[a]) > acc(wantIdx[b]) })
	for _, i := range wantIdx[:min(100, len(wantIdx))] {
		want = append(want, ids[i])
	}
	search := func() error {
		var resp struct {
			Runs []struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"runs"`
		}
		err := c.call(http.MethodPost, "runs/search", map[string]any{
			"experiment_ids": []string{expID}, "filter": searchFilter,
			"order_by": []string{"metrics.acc DESC"}, "max_results": 100, "run_view_type": "ACTIVE_ONLY",
		}, &resp)
		if err != nil {
			return err
		}
		got := make([]string, len(resp.Runs))
		for i, r := range resp.Runs {
			got[i] = r.Info.RunID
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("search_runs returned %d runs, not the %d expected in order", len(got), len(want))
		}
		return nil
	}
	tm = newTimer()
	if err := forDuration(1, o.duration, 5, func(int) error { return tm.do(search) }); err != nil {
		return nil, fmt.Errorf("search_runs: %w", err)
	}
	searchRes, err := tm.result(c, "search_runs", "queries", 1, 100)
	if err != nil {
		return nil, err
	}
	// mlflow-go's SearchRuns (k6, 20 virtual users): every run of a big
	// experiment, no filter, max_results 1000, the default order (newest
	// start_time first: run i started at t0+i).
	var newest []string
	for i := o.runs - 1; i >= max(0, o.runs-1000); i-- {
		newest = append(newest, ids[i])
	}
	searchAll := func() error {
		var body []byte
		if err := c.call(http.MethodPost, "runs/search", map[string]any{"experiment_ids": []string{expID}, "max_results": 1000}, &body); err != nil {
			return err
		}
		return checkRunPage(body, newest)
	}
	warmUp(c, 20, searchAll)
	tm = newTimer()
	if err := forDuration(20, o.duration, 40, func(int) error { return tm.do(searchAll) }); err != nil {
		return nil, fmt.Errorf("search_runs_1000_c20: %w", err)
	}
	searchC20, err := tm.result(c, "search_runs_1000_c20", "queries", 20, 1000)
	if err != nil {
		return nil, err
	}
	return []Result{createRes, searchRes, searchC20}, nil
}

// checkRunPage checks a search_runs answer of about 700 kB without decoding
// it into values, which would cost this load generator (on the server's
// cores) 4.6 ms a page: the body must be valid JSON (json.Valid, 1.6 ms) and
// its runs' ids, read from the "run_id" after each "info" key, must be want in
// order.
func checkRunPage(body []byte, want []string) error {
	if !json.Valid(body) {
		return fmt.Errorf("search_runs answered invalid JSON: %.200s", body)
	}
	var got []string
	rest := body
	for {
		i := bytes.Index(rest, []byte(`"info"`))
		if i < 0 {
			break
		}
		rest = rest[i:]
		j := bytes.Index(rest, []byte(`"run_id"`))
		if j < 0 {
			return fmt.Errorf("search_runs: a run without run_id")
		}
		rest = bytes.TrimLeft(rest[j+len(`"run_id"`):], " \t\r\n")
		rest = bytes.TrimLeft(bytes.TrimPrefix(rest, []byte(":")), " \t\r\n")
		if len(rest) == 0 || rest[0] != '"' {
			return fmt.Errorf("search_runs: run_id is not a string")
		}
		end := bytes.IndexByte(rest[1:], '"')
		if end < 0 {
			return fmt.Errorf("search_runs: unterminated run_id")
		}
		got = append(got, string(rest[1:1+end]))
		rest = rest[1+end:]
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("search_runs without filter returned %d runs, not the %d newest in order", len(got), len(want))
	}
	return nil
}

const historyPoints, batchSize = 100000, 1000

func benchLogBatchAndHistory(c *client, o options) ([]Result, error) {
	expID, err := c.createExperiment("bench-history-" + suffix())
	if err != nil {
		return nil, err
	}
	runID, err := c.createRun(expID, "history", time.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	t0 := time.Now().UnixMilli()
	tm := newTimer()
	err = parallel(4, historyPoints/batchSize, func(_, b int) error {
		ms := make([]metric, batchSize)
		for i := range ms {
			step := int64(b*batchSize + i)
			ms[i] = metric{Key: "loss", Value: 1 / float64(step+1), Timestamp: t0 + step, Step: step}
		}
		return tm.do(func() error { return c.logBatch(runID, ms, nil, nil) })
	})
	if err != nil {
		return nil, fmt.Errorf("log_batch: %w", err)
	}
	batchRes, err := tm.result(c, "log_batch_1000", "batches", 4, batchSize)
	if err != nil {
		return nil, err
	}
	history := func() error {
		n, token := 0, ""
		for {
			q := url.Values{"run_id": {runID}, "run_uuid": {runID}, "metric_key": {"loss"}, "max_results": {"25000"}}
			if token != "" {
				q.Set("page_token", token)
			}
			// Count the points without decoding their fields: the load
			// generator shares the machine and must not cost more than the server.
			var resp struct {
				Metrics       []struct{} `json:"metrics"`
				NextPageToken string     `json:"next_page_token"`
			}
			if err := c.call(http.MethodGet, "metrics/get-history", q, &resp); err != nil {
				return err
			}
			n += len(resp.Metrics)
			if token = resp.NextPageToken; token == "" || len(resp.Metrics) == 0 {
				break
			}
		}
		if n != historyPoints {
			return fmt.Errorf("metric history has %d points, want %d", n, historyPoints)
		}
		return nil
	}
	tm = newTimer()
	if err := forDuration(1, o.duration, 3, func(int) error { return tm.do(history) }); err != nil {
		return nil, fmt.Errorf("metric_history: %w", err)
	}
	histRes, err := tm.result(c, "metric_history", "histories", 1, historyPoints)
	if err != nil {
		return nil, err
	}
	return []Result{batchRes, histRes}, nil
}

// benchConcurrentLatency: mlflow-go's LogMetricBatch500 (k6, 20 virtual users):
// 20 clients log batches of 500 metrics (metric_0..metric_499, step 0, the
// current time, random values) into one shared run.
func benchConcurrentLatency(c *client, o options) ([]Result, error) {
	const clients, perBatch = 20, 500
	expID, err := c.createExperiment("bench-latency-" + suffix())
	if err != nil {
		return nil, err
	}
	runID, err := c.createRun(expID, "shared", time.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	batch := func(w int) error {
		ms := make([]metric, perBatch)
		ts := time.Now().UnixMilli()
		for i := range ms {
			ms[i] = metric{Key: fmt.Sprintf("metric_%d", i), Value: float64(i) * rand.Float64(), Timestamp: ts, Step: 0}
		}
		return c.logBatch(runID, ms, nil, nil)
	}
	warmUp(c, clients, func() error { return batch(0) })
	tm := newTimer()
	if err := forDuration(clients, o.duration, 2*clients, func(w int) error { return tm.do(func() error { return batch(w) }) }); err != nil {
		return nil, fmt.Errorf("log_batch_500_c20: %w", err)
	}
	r, err := tm.result(c, "log_batch_500_c20", "batches", clients, perBatch)
	if err != nil {
		return nil, err
	}
	return []Result{r}, nil
}

// benchArtifacts moves artifacts through the proxy (/api/2.0/mlflow-artifacts)
// as the client's log_artifact, download_artifacts and list_artifacts do.
func benchArtifacts(c *client, o options) ([]Result, error) {
	const size, listed = 32 << 20, 500
	api := c.root + "/api/2.0/mlflow-artifacts/artifacts/bench-" + suffix()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7919 >> 8)
	}
	raw := func(method, url string, body []byte) ([]byte, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body == nil {
			req.Body = nil
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s %s: %d %.200s", method, url, resp.StatusCode, b)
		}
		return b, err
	}
	var results []Result
	tm := newTimer()
	for i := 0; i < 3 || time.Since(tm.from) < o.duration/2; i++ {
		if err := tm.do(func() error { _, err := raw(http.MethodPut, api+"/big.bin", payload); return err }); err != nil {
			return nil, fmt.Errorf("artifact upload: %w", err)
		}
	}
	r, err := tm.result(c, "artifact_upload_32MiB", "files", 1, size)
	if err != nil {
		return nil, err
	}
	results = append(results, r)
	tm = newTimer()
	for i := 0; i < 3 || time.Since(tm.from) < o.duration/2; i++ {
		err := tm.do(func() error {
			b, err := raw(http.MethodGet, api+"/big.bin", nil)
			if err == nil && !bytes.Equal(b, payload) {
				err = fmt.Errorf("artifact download returned %d bytes that differ from the upload", len(b))
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("artifact download: %w", err)
		}
	}
	if r, err = tm.result(c, "artifact_download_32MiB", "files", 1, size); err != nil {
		return nil, err
	}
	results = append(results, r)
	if err := parallel(8, listed, func(_, i int) error {
		_, err := raw(http.MethodPut, fmt.Sprintf("%s/many/f%04d.txt", api, i), []byte("x"))
		return err
	}); err != nil {
		return nil, fmt.Errorf("artifact list setup: %w", err)
	}
	dir := strings.TrimPrefix(api, c.root+"/api/2.0/mlflow-artifacts/artifacts/") + "/many"
	tm = newTimer()
	if err := forDuration(1, o.duration/2, 3, func(int) error {
		return tm.do(func() error {
			b, err := raw(http.MethodGet, c.root+"/api/2.0/mlflow-artifacts/artifacts?path="+url.QueryEscape(dir), nil)
			if err != nil {
				return err
			}
			var resp struct {
				Files []struct{} `json:"files"`
			}
			if err := json.Unmarshal(b, &resp); err != nil || len(resp.Files) != listed {
				return fmt.Errorf("artifact list: %d entries, want %d (%v)", len(resp.Files), listed, err)
			}
			return nil
		})
	}); err != nil {
		return nil, err
	}
	if r, err = tm.result(c, "artifact_list_500", "listings", 1, listed); err != nil {
		return nil, err
	}
	return append(results, r), nil
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func compareReports(args []string) error {
	if len(args) > 2 {
		return tabulateReports(args)
	}
	if len(args) != 2 {
		return errors.New("-compare takes two reports (the peer's, then ours), or more for a per-server table")
	}
	peer, err := readReport(args[0])
	if err != nil {
		return err
	}
	ours, err := readReport(args[1])
	if err != nil {
		return err
	}
	byName := map[string]Result{}
	for _, r := range peer.Results {
		byName[r.Name] = r
	}
	fmt.Printf("| workload | %s | %s | ratio (throughput) | %s mean / p95 | %s mean / p95 |\n", peer.Label, ours.Label, peer.Label, ours.Label)
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, o := range ours.Results {
		p, ok := byName[o.Name]
		if !ok {
			continue
		}
		ratio := "–"
		if p.OpsPerSec > 0 {
			ratio = formatRatio(o.OpsPerSec / p.OpsPerSec)
		}
		fmt.Printf("| %s (%d clients) | %.3g %s/s | %.4g %s/s | **%s** | %.4g / %.4g ms | %.3g / %.3g ms |\n",
			o.Name, o.Clients, p.OpsPerSec, p.Unit, o.OpsPerSec, o.Unit, ratio, p.MeanMs, p.P95Ms, o.MeanMs, o.P95Ms)
	}
	return nil
}

// tabulateReports prints one row per workload and server for three or more
// reports (e.g. several servers on several backends), with the percentiles and
// each server's throughput relative to the first report's.
func tabulateReports(paths []string) error {
	reps := make([]*Report, len(paths))
	for i, p := range paths {
		r, err := readReport(p)
		if err != nil {
			return err
		}
		reps[i] = r
	}
	var names []string
	for _, r := range reps {
		for _, res := range r.Results {
			if !slices.Contains(names, res.Name) {
				names = append(names, res.Name)
			}
		}
	}
	base := map[string]Result{}
	for _, res := range reps[0].Results {
		base[res.Name] = res
	}
	fmt.Printf("| workload | server | throughput | mean | p50 | p95 | p99 | retries | vs %s |\n", reps[0].Label)
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range names {
		for _, r := range reps {
			i := slices.IndexFunc(r.Results, func(res Result) bool { return res.Name == name })
			if i < 0 {
				continue
			}
			res := r.Results[i]
			vs := "–"
			if b, ok := base[name]; ok && b.OpsPerSec > 0 {
				vs = formatRatio(res.OpsPerSec / b.OpsPerSec)
			}
			fmt.Printf("| %s (%d clients) | %s | %.4g %s/s | %.4g ms | %.4g ms | %.4g ms | %.4g ms | %d | %s |\n",
				name, res.Clients, r.Label, res.OpsPerSec, res.Unit, res.MeanMs, res.P50Ms, res.P95Ms, res.P99Ms, res.Retries, vs)
		}
	}
	return nil
}

// formatRatio writes a throughput ratio with one decimal below 10 (1.3x is
// not 1x) and none above.
func formatRatio(r float64) string {
	if r < 10 {
		return fmt.Sprintf("%.1fx", r)
	}
	return fmt.Sprintf("%.0fx", r)
}
