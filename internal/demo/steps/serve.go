package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/batch"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/serving/skew"
)

// Serving is what the serve step needs beyond the stores: the APIs `atrium
// serve` composes on the project's stores, and the prediction log they
// write. cmd/atrium implements it with serve's own code.
type Serving interface {
	// ServeAPIs builds the APIs of `atrium serve` (features, MLflow,
	// artifacts, models: OIP, predict, rank) on the project's stores.
	ServeAPIs() ([]server.API, error)
	// FlushPredictions writes what the prediction log buffers, so that a
	// reader sees every request answered so far.
	FlushPredictions(ctx context.Context) error
	// PredictionLogDir is the directory the prediction log is under.
	PredictionLogDir() (string, error)
	// ModelSources are what the offline twin and the skew check read.
	ModelSources() (batch.Sources, error)
}

// serve serves the registered ranker in this process as `atrium serve`
// does, ranks the listings of the last search of a user through
// /v1/models/ranker/rank (the server fetches their features itself), shows
// the rows the request left in the prediction log, checks them for skew
// against the offline store, and prints how to call the endpoints.
func (r *runner) serve(ctx context.Context) error {
	s, err := r.market.LastSession(ctx)
	if err != nil {
		return err
	}
	url, stop, err := r.startServer()
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(r.Out, "      $ atrium serve --addr 127.0.0.1:0      (in-process, listening on %s)\n", url)

	started := time.Now()
	listings := make([]int64, len(s.Impressions))
	for i, im := range s.Impressions {
		listings[i] = im.Listing.ID
	}
	body, _ := json.Marshal(map[string]any{"context": map[string]any{"user_id": s.User.ID},
		"candidates": map[string]any{"listing_id": listings}, "top_k": 5})
	fmt.Fprintf(r.Out, "      user %d's last search, ranked by %s@%s (features fetched by the server, on-demand ones computed):\n", s.User.ID, ModelName, Alias)
	fmt.Fprintf(r.Out, "      POST %s/v1/models/%s/rank %s\n", url, ModelName, body)
	var ranked struct {
		Model     string `json:"model_name"`
		Version   string `json:"model_version"`
		RequestID string `json:"request_id"`
		Ranked    []struct {
			Listing int64   `json:"listing_id"`
			Score   float64 `json:"score"`
		} `json:"ranked"`
	}
	if err := postJSON(ctx, url+"/v1/models/"+ModelName+"/rank", body, &ranked); err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "        %s version %s, request %s; top %d of %d listings:\n", ranked.Model, ranked.Version, ranked.RequestID, len(ranked.Ranked), len(listings))
	for i, c := range ranked.Ranked {
		fmt.Fprintf(r.Out, "        %d. listing %-6d score %.4f\n", i+1, c.Listing, c.Score)
	}

	if err := r.Serving.FlushPredictions(ctx); err != nil {
		return err
	}
	dir, err := r.Serving.PredictionLogDir()
	if err != nil {
		return err
	}
	since := started.Add(-time.Second)
	rows, err := predlog.Tail(ctx, dir, ModelName, since, time.Now().Add(time.Second), 3)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "      the prediction log (Parquet under .atrium/offline/predictions, one row per scored candidate):\n")
	r.command("predictions", "--model", ModelName, "--since", "5m", "--limit", "3")
	for _, row := range rows {
		fmt.Fprintf(r.Out, "        %s  %s v%s  %s  row %d of %d  score %.4f  %s  %d features\n", row.Time.Format("15:04:05.000"), row.Model, row.Version,
			row.Route, row.Row, row.NRows, first(row.Scores), entities(row.Entities), len(row.Features)+len(row.Categorical))
	}

	src, err := r.Serving.ModelSources()
	if err != nil {
		return err
	}
	r.command("skew", "--model", ModelName, "--since", "5m")
	rep, err := skew.Check(ctx, src, skew.Options{Model: ModelName, Since: since, LogDir: dir, TempDir: r.Dir, Tolerance: skew.DefaultTolerance})
	if err != nil {
		return err
	}
	for _, v := range rep.Versions {
		mism := 0
		for _, f := range v.Features {
			mism += f.Mismatches
		}
		fmt.Fprintf(r.Out, "        version %s: %d rows x %d features against the offline store at each request's time: %d mismatches; predictions: %d differ (max |diff| %.3g)\n",
			v.Version, v.Rows, len(v.Features), mism, v.Predictions.Mismatches, v.Predictions.MaxAbsDiff)
	}
	if rep.Clean() {
		fmt.Fprintf(r.Out, "        no skew: the online path served exactly what training would have seen\n")
	} else {
		fmt.Fprintf(r.Out, "        skew found: run the command above for the table\n")
	}

	fmt.Fprintf(r.Out, "      call it yourself (after `atrium serve` in the project directory):\n")
	fmt.Fprintf(r.Out, "        curl -s localhost:8080/v1/models/%s/rank -d '%s'\n", ModelName, body)
	fmt.Fprintf(r.Out, "        curl -s localhost:8080/v1/models/%s/predict -d '{\"entities\": {\"user_id\": [%d, %d], \"listing_id\": [%d, %d]}, \"return_features\": true}'\n",
		ModelName, s.User.ID, s.User.ID, listings[0], listings[len(listings)-1])
	fmt.Fprintf(r.Out, "        curl -s localhost:8080/v2/models/%s       (OIP metadata: inputs in order; POST .../infer scores feature tensors)\n", ModelName)
	return nil
}

// startServer serves the APIs of `atrium serve` in this process on a
// loopback port until stop is called.
func (r *runner) startServer() (url string, stop func(), err error) {
	apis, err := r.Serving.ServeAPIs()
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("serve: %w", err)
	}
	srv := server.New(server.Options{Logger: r.Logger}, apis...)
	// Its own context: the server stops when the step is done with it.
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done }, nil
}

// postJSON posts body to url and decodes a 200 answer into v.
func postJSON(ctx context.Context, url string, body []byte, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, v)
}

func first(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[0]
}

// entities formats entity keys as k=v, sorted.
func entities(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}
