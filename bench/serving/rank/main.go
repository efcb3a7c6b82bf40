// Command rank is the benchmark of POST /v1/models/{name}/rank against a real
// `atrium serve`: a user and 200 candidate listings per request, 30 features
// (15 of the user's, 15 of each listing's) fetched from the embedded (Pebble)
// online store, scored by a 300-tree GBDT. bench/serving/rank/run.sh drives it.
//
//	rank gen      -dir DIR -users N -listings N      project files and data (CSV)
//	rank register -dir DIR                           two trained versions of "ranker", champion -> 1
//	rank load     -url URL -mode open -rate 500 -duration 20s [-swap 2s]
//	rank load     -url URL -mode closed -clients 4 -duration 20s
//	rank load     ... -path twohop                  the same work in two requests: features, then infer
//
// Open loop sends at a fixed rate whatever the answers take (latency counted
// from when a request was due, so a stalled server is not hidden by fewer
// requests); closed loop keeps N requests in flight and reports throughput.
// With -swap, the open loop moves the alias champion between versions 1 and 2
// through the server's MLflow API every interval and reports the latency of
// the requests sent within a second after each move next to the others'.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/atrium-ml/atrium/internal/platform/artifact/fs" // file:// artifact store

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// The benchmark's features: user_profile (u00..u14, by user_id) and
// listing_profile (l00..l14, by listing_id), served together as "ranking".
const perSet = 15

func names(prefix string) []string {
	out := make([]string, perSet)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rank gen|register|load [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "register":
		err = register(ctx, os.Args[2:])
	case "load":
		err = load(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rank:", err)
		os.Exit(1)
	}
}

// gen writes the project's feature definitions and its two CSV sources.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "", "project directory")
	users := fs.Int("users", 10000, "users")
	listings := fs.Int("listings", 50000, "listings")
	_ = fs.Parse(args)
	if err := os.MkdirAll(filepath.Join(*dir, "features"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*dir, "data"), 0o755); err != nil {
		return err
	}
	var y strings.Builder
	y.WriteString("entities:\n  - {name: user, join_keys: [user_id]}\n  - {name: listing, join_keys: [listing_id]}\n")
	y.WriteString("sources:\n  - {name: users, format: csv, path: data/users.csv, timestamp: ts}\n  - {name: listings, format: csv, path: data/listings.csv, timestamp: ts}\n")
	y.WriteString("feature_sets:\n")
	for _, s := range []struct{ name, entity, source, prefix string }{{"user_profile", "user", "users", "u"}, {"listing_profile", "listing", "listings", "l"}} {
		fmt.Fprintf(&y, "  - name: %s\n    entity: %s\n    source: %s\n    features:\n", s.name, s.entity, s.source)
		for _, n := range names(s.prefix) {
			fmt.Fprintf(&y, "      - {name: %s, type: float64, expr: %s}\n", n, n)
		}
	}
	y.WriteString("feature_services:\n  - {name: ranking, features: [user_profile, listing_profile]}\n")
	if err := os.WriteFile(filepath.Join(*dir, "features", "ranking.yaml"), []byte(y.String()), 0o644); err != nil {
		return err
	}
	// The rows' time is the start of today (UTC): inside the day the scripts
	// run the pipelines for, and in the past, even just after midnight (an
	// hour ago was yesterday then, and materialize found nothing).
	ts := time.Now().UTC().Truncate(24 * time.Hour).Format(time.RFC3339)
	r := rand.New(rand.NewPCG(1, 2))
	write := func(file, key, prefix string, n int) error {
		f, err := os.Create(filepath.Join(*dir, "data", file))
		if err != nil {
			return err
		}
		w := csv.NewWriter(f)
		_ = w.Write(append([]string{key, "ts"}, names(prefix)...))
		row := make([]string, 2+perSet)
		for i := range n {
			row[0], row[1] = fmt.Sprintf("%s%d", prefix, i), ts
			for j := range perSet {
				row[2+j] = strconv.FormatFloat(math.Round(r.NormFloat64()*1000)/1000, 'f', -1, 64)
			}
			_ = w.Write(row)
		}
		w.Flush()
		return errors.Join(w.Error(), f.Close())
	}
	return errors.Join(write("users.csv", "user_id", "u", *users), write("listings.csv", "listing_id", "l", *listings))
}

// register trains two 300-tree GBDTs over the 30 features (different seeds:
// different scores) and registers them as versions 1 and 2 of "ranker" with
// the feature service tag, champion on version 1, as `atrium serve` would
// find a model logged by the MLflow client.
func register(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("register", flag.ExitOnError)
	dir := fs.String("dir", "", "project directory")
	trees := fs.Int("trees", 300, "trees per model")
	_ = fs.Parse(args)
	p, err := spec.LoadProject(*dir)
	if err != nil {
		return err
	}
	db, err := meta.Open(ctx, p.Stores.Meta, tracking.Schema, registry.Schema)
	if err != nil {
		return err
	}
	defer db.Close()
	ts, err := tracking.New(ctx, db, tracking.Options{})
	if err != nil {
		return err
	}
	arts, err := artifact.Open(ctx, p.Stores.Artifacts)
	if err != nil {
		return err
	}
	defer arts.Close()
	reg := registry.New(ts)
	if _, err := reg.CreateRegisteredModel(ctx, "ranker", nil, ""); err != nil {
		return err
	}
	for seed := uint64(1); seed <= 2; seed++ {
		m, err := train(ctx, seed, *trees)
		if err != nil {
			return err
		}
		run, err := ts.CreateRun(ctx, tracking.RunCreate{})
		if err != nil {
			return err
		}
		path, ok := tracking.ProxiedPath(run.Info.ArtifactURI)
		if !ok {
			return fmt.Errorf("run artifact URI %s is not proxied", run.Info.ArtifactURI)
		}
		if err := serving.PutMLmodel(ctx, arts, path+"/model", m); err != nil {
			return err
		}
		v, err := reg.CreateModelVersion(ctx, registry.VersionCreate{Name: "ranker", Source: "runs:/" + run.Info.RunID + "/model",
			RunID: run.Info.RunID, Tags: []tracking.KV{{Key: serving.FeatureServiceTag, Value: "ranking"}}})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "rank: registered ranker version %s (%d trees)\n", v.Version, *trees)
	}
	return reg.SetAlias(ctx, "ranker", "champion", "1")
}

// train fits a binary GBDT on synthetic rows of the 30 features.
func train(ctx context.Context, seed uint64, trees int) (*modelfile.Model, error) {
	const n = 20000
	r := rand.New(rand.NewPCG(seed, 9))
	feats := append(names("u"), names("l")...)
	ds := &ml.Dataset{Label: make([]float64, n), Columns: make([]ml.Column, len(feats))}
	for j, f := range feats {
		ds.Columns[j] = ml.Column{Name: f, Values: make([]float32, n)}
	}
	w := make([]float64, len(feats))
	for j := range w {
		w[j] = r.NormFloat64()
	}
	for i := range n {
		z := 0.0
		for j := range feats {
			v := r.NormFloat64()
			ds.Columns[j].Values[i] = float32(v)
			z += w[j] * v * v * math.Copysign(1, float64(j%3)-1)
		}
		if z+r.NormFloat64() > 0 {
			ds.Label[i] = 1
		}
	}
	p, err := gbdt.ParseParams(map[string]string{"objective": "binary", "num_iterations": strconv.Itoa(trees),
		"num_leaves": "31", "learning_rate": "0.05", "seed": strconv.Itoa(int(seed))})
	if err != nil {
		return nil, err
	}
	gm, err := gbdt.Train(ctx, ds, nil, p, gbdt.TrainOptions{})
	if err != nil {
		return nil, err
	}
	return modelfile.NewGBDT(gm, ds)
}

// result is one load run's figures.
type result struct {
	Mode       string  `json:"mode"`
	Path       string  `json:"path"`
	Rate       float64 `json:"rate,omitempty"`
	Clients    int     `json:"clients,omitempty"`
	Candidates int     `json:"candidates"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Throughput float64 `json:"throughput_rps"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	P999ms     float64 `json:"p999_ms"`
	MaxMs      float64 `json:"max_ms"`
	Swaps      int     `json:"swaps,omitempty"`
	// SwapP99ms is the p99 of the requests sent within a second after an
	// alias move; SteadyP99ms of the others in the same run.
	SwapP99ms   float64  `json:"swap_p99_ms,omitempty"`
	SteadyP99ms float64  `json:"steady_p99_ms,omitempty"`
	Versions    []string `json:"versions_seen,omitempty"`
	FirstError  string   `json:"first_error,omitempty"`
}

func load(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "atrium serve")
	mode := fs.String("mode", "open", "open (fixed rate) or closed (fixed clients)")
	rate := fs.Float64("rate", 500, "open loop: requests per second")
	clients := fs.Int("clients", 4, "closed loop: requests in flight")
	duration := fs.Duration("duration", 20*time.Second, "measured time")
	warmup := fs.Duration("warmup", 3*time.Second, "unmeasured time first")
	candidates := fs.Int("candidates", 200, "candidates per request")
	users := fs.Int("users", 10000, "users in the data")
	listings := fs.Int("listings", 50000, "listings in the data")
	swap := fs.Duration("swap", 0, "open loop: move champion between versions 1 and 2 this often (0: never)")
	out := fs.String("out", "", "append the result as a JSON line to this file")
	path := fs.String("path", "rank", "rank (one request) or twohop (POST /get-online-features, then /v2/models/ranker/infer: what a client does without rank)")
	_ = fs.Parse(args)

	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := *base + "/v1/models/ranker/rank"
	bodies := make([][]byte, 512)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range bodies {
		ids := make([]string, *candidates)
		for j := range ids {
			ids[j] = fmt.Sprintf("l%d", r.IntN(*listings))
		}
		b, _ := json.Marshal(map[string]any{"context": map[string]string{"user_id": fmt.Sprintf("u%d", r.IntN(*users))},
			"candidates": map[string][]string{"listing_id": ids}, "top_k": 50})
		bodies[i] = b
	}
	type sample struct {
		sent    time.Time
		latency time.Duration
		version string
		err     error
	}
	var (
		mu      sync.Mutex
		samples []sample
		n       atomic.Uint64
	)
	one := func(due time.Time, record bool) {
		b := bodies[n.Add(1)%uint64(len(bodies))]
		var resp *http.Response
		var err error
		if *path == "twohop" {
			resp, err = twoHop(client, *base, b)
		} else {
			resp, err = client.Post(url, "application/json", bytes.NewReader(b))
		}
		var version string
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			var ans struct {
				Version string            `json:"model_version"`
				Ranked  []json.RawMessage `json:"ranked"`
			}
			switch {
			case rerr != nil:
				err = rerr
			case resp.StatusCode != http.StatusOK:
				err = fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
			case json.Unmarshal(body, &ans) != nil || len(ans.Ranked) != min(50, *candidates):
				err = fmt.Errorf("unexpected answer: %.200s", body)
			}
			version = ans.Version
		}
		if !record {
			return
		}
		lat := time.Since(due)
		mu.Lock()
		samples = append(samples, sample{sent: due, latency: lat, version: version, err: err})
		mu.Unlock()
	}

	res := result{Mode: *mode, Path: *path, Candidates: *candidates}
	var swaps []time.Time
	var wg sync.WaitGroup
	start := time.Now()
	measureFrom := start.Add(*warmup)
	end := measureFrom.Add(*duration)
	switch *mode {
	case "open":
		res.Rate = *rate
		interval := time.Duration(float64(time.Second) / *rate)
		if *swap > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := 1
				for t := measureFrom.Add(*swap / 2); t.Before(end); t = t.Add(*swap) {
					time.Sleep(time.Until(t))
					v = 3 - v
					if err := setAlias(ctx, client, *base, strconv.Itoa(v)); err != nil {
						fmt.Fprintln(os.Stderr, "rank: alias move:", err)
						continue
					}
					mu.Lock()
					swaps = append(swaps, time.Now())
					mu.Unlock()
				}
			}()
		}
		for due := start; due.Before(end) && ctx.Err() == nil; due = due.Add(interval) {
			time.Sleep(time.Until(due))
			wg.Add(1)
			go func(due time.Time) {
				defer wg.Done()
				one(due, !due.Before(measureFrom))
			}(due)
		}
	case "closed":
		res.Clients = *clients
		for range *clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					now := time.Now()
					if now.After(end) || ctx.Err() != nil {
						return
					}
					one(now, !now.Before(measureFrom))
				}
			}()
		}
	default:
		return fmt.Errorf("mode %q: want open or closed", *mode)
	}
	wg.Wait()
	if *swap > 0 {
		_ = setAlias(ctx, client, *base, "1")
	}

	var all, swapLat, steady []float64
	versions := map[string]bool{}
	for _, s := range samples {
		if s.err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = s.err.Error()
			}
			continue
		}
		versions[s.version] = true
		ms := float64(s.latency) / 1e6
		all = append(all, ms)
		near := false
		for _, t := range swaps {
			if !s.sent.Before(t.Add(-100*time.Millisecond)) && s.sent.Before(t.Add(time.Second)) {
				near = true
			}
		}
		if near {
			swapLat = append(swapLat, ms)
		} else {
			steady = append(steady, ms)
		}
	}
	res.Requests = len(samples)
	res.Throughput = float64(len(all)) / duration.Seconds()
	res.P50ms, res.P99ms, res.P999ms = quantile(all, 0.5), quantile(all, 0.99), quantile(all, 0.999)
	if len(all) > 0 {
		res.MaxMs = slices.Max(all)
	}
	if *swap > 0 {
		res.Swaps = len(swaps)
		res.SwapP99ms, res.SteadyP99ms = quantile(swapLat, 0.99), quantile(steady, 0.99)
	}
	for v := range versions {
		res.Versions = append(res.Versions, v)
	}
	slices.Sort(res.Versions)
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(append(line, '\n'))
		return errors.Join(err, f.Close())
	}
	return nil
}

// setAlias moves champion through the server's MLflow API, as a deploy does.
func setAlias(ctx context.Context, client *http.Client, base, version string) error {
	b, _ := json.Marshal(map[string]string{"name": "ranker", "alias": "champion", "version": version})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/2.0/mlflow/registered-models/alias", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("set alias: status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// quantile of xs (sorted in place), 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// twoHop does a rank request's work the way a client must without the rank
// endpoint: read the 30 features of the user and the candidates from the
// feature server (Feast's /get-online-features), build the [200, 30] tensor
// in the model's input order, score it with /v2/models/ranker/infer, and
// order the candidates. It answers like rank (top 50, the model version), so
// the load generator checks both alike.
func twoHop(client *http.Client, base string, rankBody []byte) (*http.Response, error) {
	var rb struct {
		Context    map[string]string   `json:"context"`
		Candidates map[string][]string `json:"candidates"`
		TopK       int                 `json:"top_k"`
	}
	if err := json.Unmarshal(rankBody, &rb); err != nil {
		return nil, err
	}
	ids := rb.Candidates["listing_id"]
	users := make([]string, len(ids))
	for i := range users {
		users[i] = rb.Context["user_id"]
	}
	fb, _ := json.Marshal(map[string]any{"feature_service": "ranking", "entities": map[string]any{"user_id": users, "listing_id": ids}})
	resp, err := client.Post(base+"/get-online-features", "application/json", bytes.NewReader(fb))
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get-online-features: %d %.200s (%v)", resp.StatusCode, body, err)
	}
	// Columns are decoded one by one: the join keys' hold strings.
	var raw struct {
		Metadata struct {
			Names []string `json:"feature_names"`
		} `json:"metadata"`
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	col := map[string][]*float64{}
	for i, r := range raw.Results {
		name := raw.Metadata.Names[i]
		if name == "user_id" || name == "listing_id" {
			continue
		}
		var c struct {
			Values []*float64 `json:"values"`
		}
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		col[name] = c.Values
	}
	feats := append(names("u"), names("l")...)
	data := make([]float64, 0, len(ids)*len(feats))
	for r := range ids {
		for _, f := range feats {
			v := math.NaN()
			if c := col[f]; r < len(c) && c[r] != nil {
				v = *c[r]
			}
			data = append(data, v)
		}
	}
	// JSON has no NaN: OIP's JSON takes missing values as NaN only in binary
	// form, so a missing value is sent as 0 here (none is missing in this data).
	for i, v := range data {
		if math.IsNaN(v) {
			data[i] = 0
		}
	}
	ib, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "x", "datatype": "FP64", "shape": []int{len(ids), len(feats)}, "data": data}}})
	resp, err = client.Post(base+"/v2/models/ranker/infer", "application/json", bytes.NewReader(ib))
	if err != nil {
		return nil, err
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("infer: %d %.200s (%v)", resp.StatusCode, body, err)
	}
	var ir struct {
		Version string `json:"model_version"`
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body, &ir); err != nil || len(ir.Outputs) != 1 || len(ir.Outputs[0].Data) != len(ids) {
		return nil, fmt.Errorf("infer answer: %.200s", body)
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	scores := ir.Outputs[0].Data
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	ranked := make([]map[string]any, 0, rb.TopK)
	for _, i := range order[:min(rb.TopK, len(order))] {
		ranked = append(ranked, map[string]any{"listing_id": ids[i], "score": scores[i]})
	}
	out, _ := json.Marshal(map[string]any{"model_version": ir.Version, "ranked": ranked})
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(out))}, nil
}
