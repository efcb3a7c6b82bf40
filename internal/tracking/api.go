package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// API serves MLflow's tracking REST API (/api/2.0/mlflow/... and
// /ajax-api/2.0/mlflow/...) over a Store. It implements server.API and
// server.Readier.
type API struct {
	store     *Store
	artifacts artifact.Store // may be nil: artifact listing then answers NOT_IMPLEMENTED
	log       *slog.Logger
}

// NewAPI returns the tracking API. artifacts serves run and logged-model
// artifact listings (mlflow-artifacts:/ locations resolve to its paths).
func NewAPI(store *Store, artifacts artifact.Store, log *slog.Logger) *API {
	if log == nil {
		log = slog.Default()
	}
	return &API{store: store, artifacts: artifacts, log: log}
}

// Ready reports whether the metadata database answers.
func (a *API) Ready(ctx context.Context) error { return a.store.Ready(ctx) }

// Mount registers every route under both prefixes, plus ENDPOINT_NOT_FOUND for
// unknown paths below them.
func (a *API) Mount(mux *http.ServeMux) {
	wire.Mount(mux, a.log, a.Routes())
	for _, p := range wire.Prefixes {
		mux.HandleFunc(p+"/", wire.NotFound)
	}
	// MLflow 3 clients ask /api/3.0/mlflow/server-info how the server is set up
	// (store type for telemetry, multipart artifact transfers).
	info := wire.Serve(a.log, wire.Route{Handler: a.serverInfo})
	for _, p := range []string{"/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"} {
		mux.Handle("GET "+p, info)
	}
}

// serverInfo answers /server-info. Atrium's store is SQL; workspaces, trace
// archival and multipart transfers through this endpoint are not offered.
func (a *API) serverInfo(*http.Request) (any, error) {
	return map[string]any{
		"store_type":                          "SqlStore",
		"workspaces_enabled":                  false,
		"trace_archival_enabled":              false,
		"multipart_uploads_enabled":           false,
		"multipart_downloads_enabled":         false,
		"presigned_upload_run_id_supported":   false,
		"presigned_upload_model_id_supported": false,
		"features_enabled":                    map[string]bool{"gateway": false},
	}, nil
}

// Routes lists the tracking RPCs.
func (a *API) Routes() []wire.Route {
	return []wire.Route{
		{Method: "POST", Path: "/experiments/create", Handler: a.createExperiment},
		{Method: "GET", Path: "/experiments/get", Handler: a.getExperiment},
		{Method: "GET", Path: "/experiments/get-by-name", Handler: a.getExperimentByName},
		{Method: "POST", Path: "/experiments/search", Handler: a.searchExperiments},
		{Method: "GET", Path: "/experiments/search", Handler: a.searchExperiments},
		{Method: "POST", Path: "/experiments/update", Handler: a.updateExperiment},
		{Method: "POST", Path: "/experiments/delete", Handler: byID(a.experimentID, a.store.DeleteExperiment)},
		{Method: "POST", Path: "/experiments/restore", Handler: byID(a.experimentID, a.store.RestoreExperiment)},
		{Method: "POST", Path: "/experiments/set-experiment-tag", Handler: a.setExperimentTag},
		{Method: "POST", Path: "/experiments/delete-experiment-tag", Handler: a.deleteExperimentTag},
		{Method: "POST", Path: "/runs/create", Handler: a.createRun},
		{Method: "GET", Path: "/runs/get", Handler: a.getRun},
		{Method: "POST", Path: "/runs/update", Handler: a.updateRun},
		{Method: "POST", Path: "/runs/delete", Handler: byID(a.runID, a.store.DeleteRun)},
		{Method: "POST", Path: "/runs/restore", Handler: byID(a.runID, a.store.RestoreRun)},
		{Method: "POST", Path: "/runs/log-parameter", Handler: a.byRunKV(a.store.LogParam)},
		{Method: "POST", Path: "/runs/log-metric", Handler: a.logMetric},
		{Method: "POST", Path: "/runs/set-tag", Handler: a.byRunKV(a.store.SetTag)},
		{Method: "POST", Path: "/runs/delete-tag", Handler: a.deleteTag},
		// MLflow documents 1 MB per batch but its check measures the parsed
		// request's key count, so real clients send more: 100 params of 6000
		// characters and 100 tags of 8000 are within its limits. The body limit
		// admits every batch that passes the count and length limits.
		{Method: "POST", Path: "/runs/log-batch", Handler: a.logBatch, MaxBody: MaxBatchRequestBytes},
		{Method: "POST", Path: "/runs/log-model", Handler: a.logModel},
		{Method: "POST", Path: "/runs/log-inputs", Handler: a.logInputs, MaxBody: 64 << 20},
		{Method: "POST", Path: "/runs/outputs", Handler: a.logOutputs},
		{Method: "POST", Path: "/runs/search", Handler: a.searchRuns},
		{Method: "GET", Path: "/metrics/get-history", Handler: a.getMetricHistory},
		{Method: "GET", Path: "/metrics/get-history-bulk", Handler: a.getMetricHistoryBulk},
		{Method: "GET", Path: "/metrics/get-history-bulk-interval", Handler: a.getMetricHistoryBulkInterval},
		{Method: "GET", Path: "/artifacts/list", Handler: a.listArtifacts},
		{Method: "POST", Path: "/experiments/search-datasets", Handler: a.searchDatasets},
		{Method: "POST", Path: "/logged-models", Handler: a.createLoggedModel},
		{Method: "POST", Path: "/logged-models/search", Handler: a.searchLoggedModels},
		{Method: "GET", Path: "/logged-models/{model_id}", Handler: a.getLoggedModel},
		{Method: "PATCH", Path: "/logged-models/{model_id}", Handler: a.finalizeLoggedModel},
		{Method: "DELETE", Path: "/logged-models/{model_id}", Handler: a.deleteLoggedModel},
		{Method: "PATCH", Path: "/logged-models/{model_id}/tags", Handler: a.setLoggedModelTags},
		{Method: "DELETE", Path: "/logged-models/{model_id}/tags/{tag_key}", Handler: a.deleteLoggedModelTag},
		{Method: "POST", Path: "/logged-models/{model_id}/params", Handler: a.logLoggedModelParams},
		{Method: "GET", Path: "/logged-models/{model_id}/artifacts/directories", Handler: a.listLoggedModelArtifacts},
	}
}

// Required reports a missing required field the way MLflow words it.
func Required(field, value string) error {
	if value == "" {
		return wire.Invalidf("Missing value for required parameter '%s'. See the API docs for more information about request parameters.", field)
	}
	return nil
}

// runIDOf picks run_id, falling back to the deprecated run_uuid clients still send.
func runIDOf(runID, runUUID string) (string, error) {
	if runID == "" {
		runID = runUUID
	}
	return runID, Required("run_id", runID)
}

type experimentResponse struct {
	Experiment *Experiment `json:"experiment"`
}

func (a *API) createExperiment(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Name             string `json:"name"`
		ArtifactLocation string `json:"artifact_location"`
		Tags             []KV   `json:"tags"`
	}](r)
	if err != nil {
		return nil, err
	}
	if err := Required("name", req.Name); err != nil {
		return nil, err
	}
	if req.ArtifactLocation != "" {
		if err := a.store.CheckArtifactLocation(req.ArtifactLocation); err != nil {
			return nil, err
		}
	}
	id, err := a.store.CreateExperiment(r.Context(), req.Name, req.ArtifactLocation, req.Tags)
	if err != nil {
		return nil, err
	}
	return map[string]string{"experiment_id": id}, nil
}

type experimentIDRequest struct {
	ExperimentID string `json:"experiment_id"`
}

func (a *API) experimentID(r *http.Request) (string, error) {
	req, err := wire.Request[experimentIDRequest](r)
	if err != nil {
		return "", err
	}
	return req.ExperimentID, Required("experiment_id", req.ExperimentID)
}

// byID serves an RPC whose only input is an id (experiment_id, run_id) that
// extract reads from the request.
func byID(extract func(*http.Request) (string, error), fn func(ctx context.Context, id string) error) wire.Handler {
	return func(r *http.Request) (any, error) {
		id, err := extract(r)
		if err != nil {
			return nil, err
		}
		return nil, fn(r.Context(), id)
	}
}

func (a *API) getExperiment(r *http.Request) (any, error) {
	id, err := a.experimentID(r)
	if err != nil {
		return nil, err
	}
	e, err := a.store.GetExperiment(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return experimentResponse{e}, nil
}

func (a *API) getExperimentByName(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Name string `json:"experiment_name"`
	}](r)
	if err != nil {
		return nil, err
	}
	if err := Required("experiment_name", req.Name); err != nil {
		return nil, err
	}
	e, err := a.store.GetExperimentByName(r.Context(), req.Name)
	if err != nil {
		return nil, err
	}
	return experimentResponse{e}, nil
}

func (a *API) searchExperiments(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		MaxResults wire.Int64 `json:"max_results"`
		PageToken  string     `json:"page_token"`
		Filter     string     `json:"filter"`
		OrderBy    []string   `json:"order_by"`
		ViewType   wire.Enum  `json:"view_type"`
	}](r)
	if err != nil {
		return nil, err
	}
	exps, next, err := a.store.SearchExperiments(r.Context(), ExperimentQuery{
		ViewType: req.ViewType, MaxResults: int64(req.MaxResults), Filter: req.Filter, OrderBy: req.OrderBy, PageToken: req.PageToken,
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Experiments   []Experiment `json:"experiments"`
		NextPageToken string       `json:"next_page_token,omitempty"`
	}{nonNil(exps), next}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *API) updateExperiment(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		ExperimentID string `json:"experiment_id"`
		NewName      string `json:"new_name"`
	}](r)
	if err != nil {
		return nil, err
	}
	if err := Required("experiment_id", req.ExperimentID); err != nil {
		return nil, err
	}
	if err := Required("new_name", req.NewName); err != nil {
		return nil, err
	}
	return nil, a.store.RenameExperiment(r.Context(), req.ExperimentID, req.NewName)
}

type experimentTagRequest struct {
	ExperimentID string `json:"experiment_id"`
	Key          string `json:"key"`
	Value        string `json:"value"`
}

func (a *API) experimentTag(r *http.Request) (*experimentTagRequest, error) {
	req, err := wire.Request[experimentTagRequest](r)
	if err != nil {
		return nil, err
	}
	if err := Required("experiment_id", req.ExperimentID); err != nil {
		return nil, err
	}
	return req, Required("key", req.Key)
}

func (a *API) setExperimentTag(r *http.Request) (any, error) {
	req, err := a.experimentTag(r)
	if err != nil {
		return nil, err
	}
	return nil, a.store.SetExperimentTag(r.Context(), req.ExperimentID, KV{Key: req.Key, Value: req.Value})
}

func (a *API) deleteExperimentTag(r *http.Request) (any, error) {
	req, err := a.experimentTag(r)
	if err != nil {
		return nil, err
	}
	return nil, a.store.DeleteExperimentTag(r.Context(), req.ExperimentID, req.Key)
}

type runResponse struct {
	Run *Run `json:"run"`
}

func (a *API) createRun(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		ExperimentID string     `json:"experiment_id"`
		UserID       string     `json:"user_id"`
		RunName      string     `json:"run_name"`
		StartTime    wire.Int64 `json:"start_time"`
		Tags         []KV       `json:"tags"`
	}](r)
	if err != nil {
		return nil, err
	}
	run, err := a.store.CreateRun(r.Context(), RunCreate{
		ExperimentID: req.ExperimentID, UserID: req.UserID, RunName: req.RunName, StartTime: int64(req.StartTime), Tags: req.Tags,
	})
	if err != nil {
		return nil, err
	}
	return runResponse{run}, nil
}

// runRef is the run_id/run_uuid pair most run RPCs carry.
type runRef struct {
	RunID   string `json:"run_id"`
	RunUUID string `json:"run_uuid"`
}

func (a *API) runID(r *http.Request) (string, error) {
	req, err := wire.Request[runRef](r)
	if err != nil {
		return "", err
	}
	return runIDOf(req.RunID, req.RunUUID)
}

func (a *API) getRun(r *http.Request) (any, error) {
	id, err := a.runID(r)
	if err != nil {
		return nil, err
	}
	run, err := a.store.GetRun(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return runResponse{run}, nil
}

func (a *API) updateRun(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		runRef
		Status  *wire.Enum  `json:"status"`
		EndTime *wire.Int64 `json:"end_time"`
		RunName *string     `json:"run_name"`
	}](r)
	if err != nil {
		return nil, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return nil, err
	}
	var u RunUpdate
	if req.Status != nil {
		st, err := ParseRunStatus(*req.Status)
		if err != nil {
			return nil, err
		}
		u.Status = &st
	}
	if req.EndTime != nil {
		end := int64(*req.EndTime)
		u.EndTime = &end
	}
	u.RunName = req.RunName
	info, err := a.store.UpdateRun(r.Context(), id, u)
	if err != nil {
		return nil, err
	}
	return struct {
		RunInfo *RunInfo `json:"run_info"`
	}{info}, nil
}

type keyValueRequest struct {
	runRef
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (a *API) keyValue(r *http.Request) (string, KV, error) {
	req, err := wire.Request[keyValueRequest](r)
	if err != nil {
		return "", KV{}, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return "", KV{}, err
	}
	return id, KV{Key: req.Key, Value: req.Value}, Required("key", req.Key)
}

// byRunKV serves an RPC taking a run id, key and value (log-parameter, set-tag).
func (a *API) byRunKV(fn func(ctx context.Context, id string, kv KV) error) wire.Handler {
	return func(r *http.Request) (any, error) {
		id, kv, err := a.keyValue(r)
		if err != nil {
			return nil, err
		}
		return nil, fn(r.Context(), id, kv)
	}
}

func (a *API) deleteTag(r *http.Request) (any, error) {
	id, kv, err := a.keyValue(r)
	if err != nil {
		return nil, err
	}
	return nil, a.store.DeleteTag(r.Context(), id, kv.Key)
}

// metricRequest is a metric as the wire carries it: value and timestamp must be
// present (an absent value is not 0).
type metricRequest struct {
	Key           string      `json:"key"`
	Value         *wire.Float `json:"value"`
	Timestamp     *wire.Int64 `json:"timestamp"`
	Step          wire.Int64  `json:"step"`
	ModelID       string      `json:"model_id"`
	DatasetName   string      `json:"dataset_name"`
	DatasetDigest string      `json:"dataset_digest"`
}

func (m metricRequest) metric(prefix string) (Metric, error) {
	field := func(f string) string {
		if prefix == "" {
			return f
		}
		return prefix + "." + f
	}
	if err := Required(field("key"), m.Key); err != nil {
		return Metric{}, err
	}
	if m.Value == nil {
		return Metric{}, Required(field("value"), "")
	}
	if m.Timestamp == nil {
		return Metric{}, Required(field("timestamp"), "")
	}
	return Metric{Key: m.Key, Value: *m.Value, Timestamp: int64(*m.Timestamp), Step: int64(m.Step),
		ModelID: m.ModelID, DatasetName: m.DatasetName, DatasetDigest: m.DatasetDigest}, nil
}

func (a *API) logMetric(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		runRef
		metricRequest
	}](r)
	if err != nil {
		return nil, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return nil, err
	}
	m, err := req.metric("")
	if err != nil {
		return nil, err
	}
	return nil, a.store.LogMetric(r.Context(), id, m)
}

func (a *API) logBatch(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		runRef
		Metrics []metricRequest `json:"metrics"`
		Params  []KV            `json:"params"`
		Tags    []KV            `json:"tags"`
	}](r)
	if err != nil {
		if errors.Is(err, wire.ErrInvalid) && strings.Contains(err.Error(), "larger than the limit") {
			return nil, wire.Invalidf("Batched logging API requests must be at most %d bytes.", MaxBatchRequestBytes)
		}
		return nil, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return nil, err
	}
	metrics := make([]Metric, len(req.Metrics))
	for i, m := range req.Metrics {
		if metrics[i], err = m.metric("metrics[" + wire.Itoa(int64(i)) + "]"); err != nil {
			return nil, err
		}
	}
	for i, p := range req.Params {
		if err := Required("params["+wire.Itoa(int64(i))+"].key", p.Key); err != nil {
			return nil, err
		}
	}
	for i, t := range req.Tags {
		if err := Required("tags["+wire.Itoa(int64(i))+"].key", t.Key); err != nil {
			return nil, err
		}
	}
	return nil, a.store.LogBatch(r.Context(), id, metrics, req.Params, req.Tags)
}

// logModel records the MLflow 2 model JSON of log_model on the run's
// mlflow.log-model.history tag, as MLflow does.
func (a *API) logModel(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		runRef
		ModelJSON string `json:"model_json"`
	}](r)
	if err != nil {
		return nil, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return nil, err
	}
	if err := Required("model_json", req.ModelJSON); err != nil {
		return nil, err
	}
	return nil, a.store.RecordLoggedModel(r.Context(), id, req.ModelJSON)
}

func (a *API) logInputs(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		runRef
		Datasets []DatasetInput `json:"datasets"`
		Models   []ModelInput   `json:"models"`
	}](r)
	if err != nil {
		return nil, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return nil, err
	}
	return nil, a.store.LogInputs(r.Context(), id, req.Datasets, req.Models)
}

func (a *API) logOutputs(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		runRef
		Models []struct {
			ModelID string     `json:"model_id"`
			Step    wire.Int64 `json:"step"`
		} `json:"models"`
	}](r)
	if err != nil {
		return nil, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return nil, err
	}
	if len(req.Models) == 0 {
		return nil, Required("models", "")
	}
	outs := make([]ModelOutput, len(req.Models))
	for i, m := range req.Models {
		outs[i] = ModelOutput{ModelID: m.ModelID, Step: int64(m.Step)}
	}
	return nil, a.store.LogOutputs(r.Context(), id, outs)
}

func (a *API) searchRuns(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		ExperimentIDs []string    `json:"experiment_ids"`
		Filter        string      `json:"filter"`
		RunViewType   wire.Enum   `json:"run_view_type"`
		MaxResults    *wire.Int64 `json:"max_results"`
		OrderBy       []string    `json:"order_by"`
		PageToken     string      `json:"page_token"`
	}](r)
	if err != nil {
		return nil, err
	}
	q := RunQuery{ExperimentIDs: req.ExperimentIDs, Filter: req.Filter, RunViewType: req.RunViewType,
		MaxResults: 1000, OrderBy: req.OrderBy, PageToken: req.PageToken}
	if req.MaxResults != nil {
		q.MaxResults = int64(*req.MaxResults)
		if q.MaxResults <= 0 {
			return nil, wire.Invalidf("Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", q.MaxResults)
		}
	}
	runs, next, err := a.store.SearchRuns(r.Context(), q)
	if err != nil {
		return nil, err
	}
	return struct {
		Runs          []Run  `json:"runs"`
		NextPageToken string `json:"next_page_token,omitempty"`
	}{nonNil(runs), next}, nil
}

type metricsResponse struct {
	Metrics       []Metric `json:"metrics"`
	NextPageToken string   `json:"next_page_token,omitempty"`
}

// MarshalJSON writes metric lists (up to 100,000 points of history) with
// appends instead of reflection: several times faster than encoding/json's
// default, for the same bytes.
func (m metricsResponse) MarshalJSON() ([]byte, error) { return m.AppendJSON(nil), nil }

// AppendJSON appends the response's JSON to b (wire.RawJSON).
func (m metricsResponse) AppendJSON(b []byte) []byte {
	quoted := map[string][]byte{} // keys, run ids: few distinct values, quoted once
	quote := func(s string) []byte {
		q, ok := quoted[s]
		if !ok {
			q, _ = json.Marshal(s)
			quoted[s] = q
		}
		return q
	}
	b = slices.Grow(b, 64+80*len(m.Metrics))
	b = append(b, `{"metrics":[`...)
	for i, mt := range m.Metrics {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = append(b, quote(mt.Key)...)
		b = append(b, `,"value":`...)
		v, _ := mt.Value.MarshalJSON()
		b = append(b, v...)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, mt.Timestamp, 10)
		b = append(b, `,"step":`...)
		b = strconv.AppendInt(b, mt.Step, 10)
		for _, f := range []struct{ name, v string }{
			{"dataset_name", mt.DatasetName}, {"dataset_digest", mt.DatasetDigest}, {"model_id", mt.ModelID}, {"run_id", mt.RunID},
		} {
			if f.v != "" {
				b = append(b, `,"`+f.name+`":`...)
				b = append(b, quote(f.v)...)
			}
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if m.NextPageToken != "" {
		b = append(b, `,"next_page_token":`...)
		b = append(b, quote(m.NextPageToken)...)
	}
	return append(b, '}')
}

func (a *API) getMetricHistory(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		runRef
		MetricKey  string      `json:"metric_key"`
		PageToken  string      `json:"page_token"`
		MaxResults *wire.Int64 `json:"max_results"`
	}](r)
	if err != nil {
		return nil, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return nil, err
	}
	if err := Required("metric_key", req.MetricKey); err != nil {
		return nil, err
	}
	var max *int64
	if req.MaxResults != nil {
		v := int64(*req.MaxResults)
		max = &v
	}
	ms, next, err := a.store.GetMetricHistory(r.Context(), id, req.MetricKey, max, req.PageToken)
	if err != nil {
		return nil, err
	}
	return metricsResponse{nonNil(ms), next}, nil
}

// getMetricHistoryBulk is the UI's older bulk endpoint (repeated run_id).
func (a *API) getMetricHistoryBulk(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		RunIDs     []string    `json:"run_id"`
		MetricKey  string      `json:"metric_key"`
		MaxResults *wire.Int64 `json:"max_results"`
	}](r)
	if err != nil {
		return nil, err
	}
	if len(req.RunIDs) == 0 {
		return nil, wire.Invalidf("GetMetricHistoryBulk request must specify at least one run_id.")
	}
	if len(req.RunIDs) > MaxRunsPerBulkInterval {
		return nil, wire.Invalidf("GetMetricHistoryBulk request cannot specify more than %d run_ids. Received %d run_ids.", MaxRunsPerBulkInterval, len(req.RunIDs))
	}
	if req.MetricKey == "" {
		return nil, wire.Invalidf("GetMetricHistoryBulk request must specify a metric_key.")
	}
	max := MaxMetricHistoryBulk
	if req.MaxResults != nil && int(*req.MaxResults) < max {
		max = int(*req.MaxResults)
	}
	ms, err := a.store.MetricHistoryBulk(r.Context(), req.RunIDs, req.MetricKey, max)
	if err != nil {
		return nil, err
	}
	return metricsResponse{Metrics: nonNil(ms)}, nil
}

func (a *API) getMetricHistoryBulkInterval(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		RunIDs     []string    `json:"run_ids"`
		MetricKey  string      `json:"metric_key"`
		StartStep  *wire.Int64 `json:"start_step"`
		EndStep    *wire.Int64 `json:"end_step"`
		MaxResults *wire.Int64 `json:"max_results"`
	}](r)
	if err != nil {
		return nil, err
	}
	if len(req.RunIDs) == 0 {
		return nil, Required("run_ids", "")
	}
	if len(req.RunIDs) > MaxRunsPerBulkInterval {
		return nil, wire.Invalidf("GetMetricHistoryBulkInterval request must specify at most %d run_ids. Received %d run_ids.", MaxRunsPerBulkInterval, len(req.RunIDs))
	}
	if err := Required("metric_key", req.MetricKey); err != nil {
		return nil, err
	}
	max := MaxResultsPerRunBulk
	if req.MaxResults != nil {
		if *req.MaxResults < 1 || *req.MaxResults > MaxResultsPerRunBulk {
			return nil, wire.Invalidf("max_results must be between 1 and %d.", MaxResultsPerRunBulk)
		}
		max = int(*req.MaxResults)
	}
	var start, end *int64
	if req.StartStep != nil {
		v := int64(*req.StartStep)
		start = &v
	}
	if req.EndStep != nil {
		v := int64(*req.EndStep)
		end = &v
	}
	ms, err := a.store.MetricHistoryBulkInterval(r.Context(), req.RunIDs, req.MetricKey, start, end, max)
	if err != nil {
		return nil, err
	}
	return metricsResponse{Metrics: nonNil(ms)}, nil
}

// fileInfo is one entry of an artifact listing.
type fileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size,omitempty"`
}

type listResponse struct {
	RootURI string     `json:"root_uri"`
	Files   []fileInfo `json:"files"`
}

// listUnder lists the direct children of rel below a proxied artifact root URI,
// with paths relative to that root (what MLflow's server answers).
func (a *API) listUnder(ctx context.Context, rootURI, rel, field string) (any, error) {
	if a.artifacts == nil {
		return nil, wire.Errorf(wire.NotImplemented, "This server has no artifact store configured.")
	}
	clean, err := artifact.CleanPath(rel)
	if err != nil {
		return nil, wire.Invalidf("Invalid value '%s' for parameter '%s' supplied: %v", rel, field, err)
	}
	base, ok := ProxiedPath(rootURI)
	if !ok {
		// Not stored by this server's artifact proxy: nothing it can list.
		return listResponse{RootURI: rootURI, Files: []fileInfo{}}, nil
	}
	files, err := a.artifacts.List(ctx, path.Join(base, clean))
	if err != nil {
		if errors.Is(err, artifact.ErrInvalidPath) {
			return nil, wire.Invalidf("Invalid value '%s' for parameter '%s' supplied: %v", rel, field, err)
		}
		return nil, err
	}
	out := make([]fileInfo, 0, len(files))
	for _, f := range files {
		name := path.Base(f.Path)
		if clean != "" {
			name = clean + "/" + name
		}
		fi := fileInfo{Path: name, IsDir: f.IsDir}
		if !f.IsDir {
			fi.FileSize = f.Size
		}
		out = append(out, fi)
	}
	return listResponse{RootURI: rootURI, Files: out}, nil
}

func (a *API) listArtifacts(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		runRef
		Path      string `json:"path"`
		PageToken string `json:"page_token"`
	}](r)
	if err != nil {
		return nil, err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return nil, err
	}
	info, err := a.store.RunInfoOf(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return a.listUnder(r.Context(), info.ArtifactURI, req.Path, "path")
}

func (a *API) searchDatasets(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		ExperimentIDs []string `json:"experiment_ids"`
	}](r)
	if err != nil {
		return nil, err
	}
	if len(req.ExperimentIDs) == 0 {
		return nil, wire.Invalidf("SearchDatasets request must specify at least one experiment_id.")
	}
	if len(req.ExperimentIDs) > 20 {
		return nil, wire.Invalidf("SearchDatasets request cannot specify more than 20 experiment_ids. Received %d experiment_ids.", len(req.ExperimentIDs))
	}
	sums, err := a.store.SearchDatasets(r.Context(), req.ExperimentIDs)
	if err != nil {
		return nil, err
	}
	return struct {
		DatasetSummaries []DatasetSummary `json:"dataset_summaries"`
	}{nonNil(sums)}, nil
}

type loggedModelResponse struct {
	Model *LoggedModel `json:"model"`
}

func (a *API) createLoggedModel(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		ExperimentID string `json:"experiment_id"`
		Name         string `json:"name"`
		ModelType    string `json:"model_type"`
		SourceRunID  string `json:"source_run_id"`
		Params       []KV   `json:"params"`
		Tags         []KV   `json:"tags"`
	}](r)
	if err != nil {
		return nil, err
	}
	if err := Required("experiment_id", req.ExperimentID); err != nil {
		return nil, err
	}
	m, err := a.store.CreateLoggedModel(r.Context(), LoggedModelCreate{ExperimentID: req.ExperimentID, Name: req.Name,
		ModelType: req.ModelType, SourceRunID: req.SourceRunID, Params: req.Params, Tags: req.Tags})
	if err != nil {
		return nil, err
	}
	return loggedModelResponse{m}, nil
}

func (a *API) getLoggedModel(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		AllowDeleted wire.Bool `json:"allow_deleted"`
	}](r)
	if err != nil {
		return nil, err
	}
	m, err := a.store.GetLoggedModel(r.Context(), r.PathValue("model_id"), bool(req.AllowDeleted))
	if err != nil {
		return nil, err
	}
	return loggedModelResponse{m}, nil
}

func (a *API) finalizeLoggedModel(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Status wire.Enum `json:"status"`
	}](r)
	if err != nil {
		return nil, err
	}
	if err := Required("status", string(req.Status)); err != nil {
		return nil, err
	}
	st, err := ParseLoggedModelStatus(req.Status)
	if err != nil {
		return nil, err
	}
	m, err := a.store.FinalizeLoggedModel(r.Context(), r.PathValue("model_id"), st)
	if err != nil {
		return nil, err
	}
	return loggedModelResponse{m}, nil
}

func (a *API) deleteLoggedModel(r *http.Request) (any, error) {
	return nil, a.store.DeleteLoggedModel(r.Context(), r.PathValue("model_id"))
}

func (a *API) setLoggedModelTags(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Tags []KV `json:"tags"`
	}](r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("model_id")
	if err := a.store.SetLoggedModelTags(r.Context(), id, req.Tags); err != nil {
		return nil, err
	}
	m, err := a.store.GetLoggedModel(r.Context(), id, false)
	if err != nil {
		return nil, err
	}
	return loggedModelResponse{m}, nil
}

func (a *API) deleteLoggedModelTag(r *http.Request) (any, error) {
	return nil, a.store.DeleteLoggedModelTag(r.Context(), r.PathValue("model_id"), r.PathValue("tag_key"))
}

func (a *API) logLoggedModelParams(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Params []KV `json:"params"`
	}](r)
	if err != nil {
		return nil, err
	}
	return nil, a.store.LogLoggedModelParams(r.Context(), r.PathValue("model_id"), req.Params)
}

func (a *API) searchLoggedModels(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		ExperimentIDs []string `json:"experiment_ids"`
		Filter        string   `json:"filter"`
		Datasets      []struct {
			DatasetName   string `json:"dataset_name"`
			DatasetDigest string `json:"dataset_digest"`
		} `json:"datasets"`
		MaxResults wire.Int64 `json:"max_results"`
		OrderBy    []struct {
			FieldName     string     `json:"field_name"`
			Ascending     *wire.Bool `json:"ascending"`
			DatasetName   string     `json:"dataset_name"`
			DatasetDigest string     `json:"dataset_digest"`
		} `json:"order_by"`
		PageToken string `json:"page_token"`
	}](r)
	if err != nil {
		return nil, err
	}
	q := LoggedModelQuery{ExperimentIDs: req.ExperimentIDs, Filter: req.Filter, MaxResults: int64(req.MaxResults), PageToken: req.PageToken}
	for _, d := range req.Datasets {
		q.Datasets = append(q.Datasets, DatasetRef{Name: d.DatasetName, Digest: d.DatasetDigest})
	}
	for _, o := range req.OrderBy {
		asc := o.Ascending == nil || bool(*o.Ascending)
		q.OrderBy = append(q.OrderBy, LoggedModelOrder{FieldName: o.FieldName, Ascending: asc, DatasetName: o.DatasetName, DatasetDigest: o.DatasetDigest})
	}
	models, next, err := a.store.SearchLoggedModels(r.Context(), q)
	if err != nil {
		return nil, err
	}
	return struct {
		Models        []LoggedModel `json:"models"`
		NextPageToken string        `json:"next_page_token,omitempty"`
	}{nonNil(models), next}, nil
}

func (a *API) listLoggedModelArtifacts(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Dir       string `json:"artifact_directory_path"`
		PageToken string `json:"page_token"`
	}](r)
	if err != nil {
		return nil, err
	}
	m, err := a.store.GetLoggedModel(r.Context(), r.PathValue("model_id"), false)
	if err != nil {
		return nil, err
	}
	return a.listUnder(r.Context(), m.Info.ArtifactURI, req.Dir, "artifact_directory_path")
}
