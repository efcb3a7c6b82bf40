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
	"slices"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving"
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

var _ Tracker = (*Remote)(nil)

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
	resp, err := r.do(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// do sends a request with the credentials and returns a 2xx answer, whose
// body the caller closes; any other answer is an *apiError.
func (r *Remote) do(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(r.URL, "/")+path, body)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // the message is what there is of it
	e := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(raw, e) != nil || e.Code == "" {
		e.Message = strings.TrimSpace(string(raw))
	}
	if e.Status == http.StatusUnauthorized {
		// Say which credentials the client has, as the MLflow client's
		// users know them.
		if r.Token == "" && r.Username == "" {
			e.Message += " (no credentials sent: set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
		} else {
			e.Message += " (the credentials sent, from MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD, were refused)"
		}
	}
	return nil, fmt.Errorf("%s %s: %w", method, path, e)
}

const api = "/api/2.0/mlflow"

func isCode(err error, code string) bool {
	var e *apiError
	return errors.As(err, &e) && e.Code == code
}

// FindExperiment implements Tracker.
func (r *Remote) FindExperiment(ctx context.Context, name string) (string, bool, error) {
	if name == "" {
		return tracking.DefaultExpID, true, nil
	}
	var got struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	err := r.call(ctx, http.MethodGet, api+"/experiments/get-by-name?experiment_name="+url.QueryEscape(name), nil, &got)
	switch {
	case isCode(err, "RESOURCE_DOES_NOT_EXIST"):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return got.Experiment.ID, true, nil
}

// ExperimentID implements Target.
func (r *Remote) ExperimentID(ctx context.Context, name string) (string, error) {
	id, ok, err := r.FindExperiment(ctx, name)
	if err != nil || ok {
		return id, err
	}
	var created struct {
		ID string `json:"experiment_id"`
	}
	err = r.call(ctx, http.MethodPost, api+"/experiments/create", map[string]any{"name": name}, &created)
	if isCode(err, "RESOURCE_ALREADY_EXISTS") { // created concurrently
		return r.ExperimentID(ctx, name)
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

// CreateRun implements Target.
func (r *Remote) CreateRun(ctx context.Context, expID string, start int64, tags []tracking.KV) (string, string, error) {
	var got struct {
		Run tracking.Run `json:"run"`
	}
	err := r.call(ctx, http.MethodPost, api+"/runs/create", map[string]any{"experiment_id": expID, "start_time": start, "tags": kvs(tags)}, &got)
	return got.Run.Info.RunID, got.Run.Info.ArtifactURI, err
}

// RunInfo implements Target.
func (r *Remote) RunInfo(ctx context.Context, runID string) (*tracking.RunInfo, error) {
	var got struct {
		Run tracking.Run `json:"run"`
	}
	if err := r.call(ctx, http.MethodGet, api+"/runs/get?run_id="+url.QueryEscape(runID), nil, &got); err != nil {
		return nil, err
	}
	return &got.Run.Info, nil
}

// LogBatch implements Target. NaN and infinite metrics are dropped: JSON
// has no such numbers.
func (r *Remote) LogBatch(ctx context.Context, runID string, metrics []tracking.Metric, params, tags []tracking.KV) error {
	type metric struct {
		Key       string  `json:"key"`
		Value     float64 `json:"value"`
		Timestamp int64   `json:"timestamp"`
		Step      int64   `json:"step"`
	}
	ms := make([]metric, 0, len(metrics))
	for _, m := range metrics {
		if v := float64(m.Value); !math.IsNaN(v) && !math.IsInf(v, 0) {
			ms = append(ms, metric{m.Key, v, m.Timestamp, m.Step})
		}
	}
	return r.call(ctx, http.MethodPost, api+"/runs/log-batch", map[string]any{"run_id": runID, "metrics": ms, "params": kvs(params), "tags": kvs(tags)}, nil)
}

// PutArtifact implements Target, through the artifact proxy.
func (r *Remote) PutArtifact(ctx context.Context, path string, data []byte) error {
	return r.send(ctx, http.MethodPut, artifactsAPI+"/"+escapePath(path), "application/octet-stream", bytes.NewReader(data), nil)
}

// EndRun implements Target.
func (r *Remote) EndRun(ctx context.Context, runID, status string, end int64) error {
	return r.call(ctx, http.MethodPost, api+"/runs/update", map[string]any{"run_id": runID, "status": status, "end_time": end}, nil)
}

// EnsureModel implements Target.
func (r *Remote) EnsureModel(ctx context.Context, name string) error {
	err := r.call(ctx, http.MethodPost, api+"/registered-models/create", map[string]any{"name": name}, nil)
	if isCode(err, "RESOURCE_ALREADY_EXISTS") {
		return nil
	}
	return err
}

// CreateVersion implements Target.
func (r *Remote) CreateVersion(ctx context.Context, name, source, runID string, tags []tracking.KV) (string, error) {
	var got struct {
		Version registry.ModelVersion `json:"model_version"`
	}
	err := r.call(ctx, http.MethodPost, api+"/model-versions/create", map[string]any{"name": name, "source": source, "run_id": runID, "tags": kvs(tags)}, &got)
	return got.Version.Version, err
}

// SetAlias implements Target.
func (r *Remote) SetAlias(ctx context.Context, name, alias, version string) error {
	return r.call(ctx, http.MethodPost, api+"/registered-models/alias", map[string]any{"name": name, "alias": alias, "version": version}, nil)
}

// SearchRuns implements Tracker (one page: max is at most the server's
// page size, 1000 for atrium serve).
func (r *Remote) SearchRuns(ctx context.Context, expID, filter string, orderBy []string, max int) ([]tracking.Run, error) {
	var got struct {
		Runs []tracking.Run `json:"runs"`
	}
	req := map[string]any{"experiment_ids": []string{expID}, "filter": filter, "order_by": orderBy}
	if max > 0 {
		req["max_results"] = max
	}
	err := r.call(ctx, http.MethodPost, api+"/runs/search", req, &got)
	return got.Runs, err
}

// SetTag implements Tracker.
func (r *Remote) SetTag(ctx context.Context, runID string, tag tracking.KV) error {
	return r.call(ctx, http.MethodPost, api+"/runs/set-tag", map[string]any{"run_id": runID, "key": tag.Key, "value": tag.Value}, nil)
}

// Version implements Tracker: "@alias" through registered-models/alias, a
// number through model-versions/get. The server's not-found answers (no
// such model or version: RESOURCE_DOES_NOT_EXIST; no such alias: an
// INVALID_PARAMETER_VALUE saying "not found", as MLflow answers) are
// serving.ErrNotFound.
func (r *Remote) Version(ctx context.Context, name, version string) (*registry.ModelVersion, error) {
	var got struct {
		Version registry.ModelVersion `json:"model_version"`
	}
	q := url.Values{"name": {name}}
	p := api + "/model-versions/get?"
	if alias, ok := strings.CutPrefix(version, "@"); ok {
		q.Set("alias", alias)
		p = api + "/registered-models/alias?"
	} else {
		q.Set("version", version)
	}
	err := r.call(ctx, http.MethodGet, p+q.Encode(), nil, &got)
	var e *apiError
	if errors.As(err, &e) && (e.Code == "RESOURCE_DOES_NOT_EXIST" ||
		e.Code == "INVALID_PARAMETER_VALUE" && strings.Contains(e.Message, "not found")) {
		return nil, fmt.Errorf("%w: model %q version %q on %s: %v", serving.ErrNotFound, name, version, r.URL, err)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve model %q version %q on %s: %w", name, version, r.URL, err)
	}
	return &got.Version, nil
}

// LoadVersion implements Tracker: the version's download URI from the
// server, its files through the artifact proxy (Artifacts), read by
// serving's loader.
func (r *Remote) LoadVersion(ctx context.Context, name, version string) (*serving.Deployed, error) {
	v, err := r.Version(ctx, name, version)
	if err != nil {
		return nil, err
	}
	var got struct {
		URI string `json:"artifact_uri"`
	}
	q := url.Values{"name": {v.Name}, "version": {v.Version}}
	if err := r.call(ctx, http.MethodGet, api+"/model-versions/get-download-uri?"+q.Encode(), nil, &got); err != nil {
		return nil, fmt.Errorf("model %q version %s: download URI: %w", v.Name, v.Version, err)
	}
	return (&serving.Loader{Artifacts: r.Artifacts()}).LoadFrom(ctx, v, got.URI)
}

// artifactsAPI is the artifact proxy's root.
const artifactsAPI = "/api/2.0/mlflow-artifacts/artifacts"

// escapePath escapes each segment of an artifact path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// Artifacts is the server's artifact store through its artifact proxy
// (the root of mlflow-artifacts:/ URIs): what serving.Loader reads a
// remote version's files from. Paths are checked as artifact.CleanPath
// does before any request; the server's 404 is artifact.ErrNotFound.
// Close does nothing.
func (r *Remote) Artifacts() artifact.Store { return remoteArtifacts{r} }

type remoteArtifacts struct{ r *Remote }

// object is the proxy's path of a clean, non-empty artifact path.
func object(p string) (string, error) {
	clean, err := artifact.CleanPath(p)
	if err != nil {
		return "", err
	}
	if clean == "" {
		return "", fmt.Errorf("%w: empty path", artifact.ErrInvalidPath)
	}
	return artifactsAPI + "/" + escapePath(clean), nil
}

// notFound maps the proxy's 404 to artifact.ErrNotFound.
func notFound(err error, p string) error {
	var e *apiError
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return fmt.Errorf("%w: %s: %v", artifact.ErrNotFound, p, err)
	}
	return err
}

func (a remoteArtifacts) Put(ctx context.Context, p string, body io.Reader) error {
	o, err := object(p)
	if err != nil {
		return err
	}
	return a.r.send(ctx, http.MethodPut, o, "application/octet-stream", body, nil)
}

func (a remoteArtifacts) Get(ctx context.Context, p string) (io.ReadCloser, error) {
	o, err := object(p)
	if err != nil {
		return nil, err
	}
	resp, err := a.r.do(ctx, http.MethodGet, o, "", nil)
	if err != nil {
		return nil, notFound(err, p)
	}
	return resp.Body, nil
}

func (a remoteArtifacts) List(ctx context.Context, dir string) ([]artifact.FileInfo, error) {
	clean, err := artifact.CleanPath(dir)
	if err != nil {
		return nil, err
	}
	var got struct {
		Files []struct {
			Path  string `json:"path"`
			IsDir bool   `json:"is_dir"`
			Size  int64  `json:"file_size"`
		} `json:"files"`
	}
	if err := a.r.call(ctx, http.MethodGet, artifactsAPI+"?path="+url.QueryEscape(clean), nil, &got); err != nil {
		return nil, err
	}
	out := make([]artifact.FileInfo, 0, len(got.Files))
	for _, f := range got.Files {
		p := f.Path // the proxy answers basenames
		if clean != "" {
			p = clean + "/" + f.Path
		}
		out = append(out, artifact.FileInfo{Path: p, IsDir: f.IsDir, Size: f.Size})
	}
	slices.SortFunc(out, func(x, y artifact.FileInfo) int { return strings.Compare(x.Path, y.Path) })
	return out, nil
}

func (a remoteArtifacts) Delete(ctx context.Context, p string) error {
	o, err := object(p)
	if err != nil {
		return err
	}
	err = a.r.send(ctx, http.MethodDelete, o, "", nil, nil)
	if errors.Is(notFound(err, p), artifact.ErrNotFound) {
		return nil // deleting a missing path is not an error
	}
	return err
}

func (a remoteArtifacts) Close() error { return nil }
