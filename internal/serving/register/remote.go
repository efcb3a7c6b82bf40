package register

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/tracking"
)

// Remote publishes through a tracking server's MLflow REST API and its
// artifact proxy (`atrium serve`, or any MLflow server with
// --serve-artifacts), as the MLflow client does with MLFLOW_TRACKING_URI.
type Remote struct {
	// URL is the server's base URL (http://host:port).
	URL string
	// Token, when set, is sent as a bearer token (MLFLOW_TRACKING_TOKEN);
	// Username and Password as basic authentication otherwise
	// (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD).
	Token, Username, Password string
	// Client sends the requests. Default: a client with a 60 s timeout.
	Client *http.Client
}

var _ Target = (*Remote)(nil)

// apiError is an MLflow error answer.
type apiError struct {
	Status  int
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// call sends a JSON request to an MLflow API path and decodes the answer
// into out (when not nil).
func (r *Remote) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return r.send(ctx, method, path, "application/json", body, out)
}

func (r *Remote) send(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(r.URL, "/")+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case r.Token != "":
		req.Header.Set("Authorization", "Bearer "+r.Token)
	case r.Username != "":
		req.SetBasicAuth(r.Username, r.Password)
	}
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Code == "" {
			e.Message = strings.TrimSpace(string(raw))
		}
		return fmt.Errorf("%s %s: %w", method, path, e)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

const api = "/api/2.0/mlflow"

func isCode(err error, code string) bool {
	var e *apiError
	return errors.As(err, &e) && e.Code == code
}

func (r *Remote) experimentID(ctx context.Context, name string) (string, error) {
	if name == "" {
		return tracking.DefaultExpID, nil
	}
	var got struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	err := r.call(ctx, http.MethodGet, api+"/experiments/get-by-name?experiment_name="+url.QueryEscape(name), nil, &got)
	if err == nil {
		return got.Experiment.ID, nil
	}
	if !isCode(err, "RESOURCE_DOES_NOT_EXIST") {
		return "", err
	}
	var created struct {
		ID string `json:"experiment_id"`
	}
	err = r.call(ctx, http.MethodPost, api+"/experiments/create", map[string]any{"name": name}, &created)
	if isCode(err, "RESOURCE_ALREADY_EXISTS") { // created concurrently
		return r.experimentID(ctx, name)
	}
	return created.ID, err
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func kvs(in []tracking.KV) []kv {
	out := make([]kv, len(in))
	for i, t := range in {
		out[i] = kv{t.Key, t.Value}
	}
	return out
}

func (r *Remote) createRun(ctx context.Context, expID string, start int64, tags []tracking.KV) (string, string, error) {
	var got struct {
		Run struct {
			Info struct {
				RunID       string `json:"run_id"`
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	err := r.call(ctx, http.MethodPost, api+"/runs/create", map[string]any{"experiment_id": expID, "start_time": start, "tags": kvs(tags)}, &got)
	return got.Run.Info.RunID, got.Run.Info.ArtifactURI, err
}

func (r *Remote) runArtifactURI(ctx context.Context, runID string) (string, error) {
	var got struct {
		Run struct {
			Info struct {
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	err := r.call(ctx, http.MethodGet, api+"/runs/get?run_id="+url.QueryEscape(runID), nil, &got)
	return got.Run.Info.ArtifactURI, err
}

func (r *Remote) logBatch(ctx context.Context, runID string, metrics []tracking.Metric, params []tracking.KV) error {
	type metric struct {
		Key       string  `json:"key"`
		Value     float64 `json:"value"`
		Timestamp int64   `json:"timestamp"`
		Step      int64   `json:"step"`
	}
	ms := make([]metric, 0, len(metrics))
	for _, m := range metrics {
		if v := float64(m.Value); !math.IsNaN(v) && !math.IsInf(v, 0) { // JSON has no NaN
			ms = append(ms, metric{m.Key, v, m.Timestamp, m.Step})
		}
	}
	return r.call(ctx, http.MethodPost, api+"/runs/log-batch", map[string]any{"run_id": runID, "metrics": ms, "params": kvs(params)}, nil)
}

func (r *Remote) putArtifact(ctx context.Context, path string, data []byte) error {
	escaped := make([]string, 0, 8)
	for _, seg := range strings.Split(path, "/") {
		escaped = append(escaped, url.PathEscape(seg))
	}
	return r.send(ctx, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/"+strings.Join(escaped, "/"), "application/octet-stream", bytes.NewReader(data), nil)
}

func (r *Remote) finishRun(ctx context.Context, runID, status string, end int64) error {
	return r.call(ctx, http.MethodPost, api+"/runs/update", map[string]any{"run_id": runID, "status": status, "end_time": end}, nil)
}

func (r *Remote) ensureModel(ctx context.Context, name string) error {
	err := r.call(ctx, http.MethodPost, api+"/registered-models/create", map[string]any{"name": name}, nil)
	if isCode(err, "RESOURCE_ALREADY_EXISTS") {
		return nil
	}
	return err
}

func (r *Remote) createVersion(ctx context.Context, name, source, runID string, tags []tracking.KV) (string, error) {
	var got struct {
		Version struct {
			Version string `json:"version"`
		} `json:"model_version"`
	}
	err := r.call(ctx, http.MethodPost, api+"/model-versions/create", map[string]any{"name": name, "source": source, "run_id": runID, "tags": kvs(tags)}, &got)
	return got.Version.Version, err
}

func (r *Remote) setAlias(ctx context.Context, name, alias, version string) error {
	return r.call(ctx, http.MethodPost, api+"/registered-models/alias", map[string]any{"name": name, "alias": alias, "version": version}, nil)
}
