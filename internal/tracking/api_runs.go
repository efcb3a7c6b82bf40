package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/atrium-ml/atrium/internal/platform/jsonw"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Handlers of the run RPCs: lifecycle, params, tags, metrics, batches, inputs, search.

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
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
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
	// The store admits up to search.MaxClauses conditions; a request, fewer
	// (a filter the search cannot parse is refused by the search, same message).
	if clauses, err := search.Parse(search.Runs, q.Filter); err == nil {
		if err := search.CheckRequestClauses(clauses); err != nil {
			return nil, err
		}
	}
	page, err := a.store.searchRunsPage(r.Context(), q)
	if err != nil {
		return nil, err
	}
	return page, nil
}

// runsResponse is search_runs' answer. Up to 50,000 runs: it writes its JSON
// with appends (wire.RawJSON), the same bytes encoding/json would.
type runsResponse struct {
	Runs          []Run  `json:"runs"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

func (r runsResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends the response's JSON to b (wire.RawJSON).
func (r runsResponse) AppendJSON(b []byte) []byte {
	b = slices.Grow(b, 64+700*len(r.Runs))
	b = append(b, `{"runs":[`...)
	for i := range r.Runs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRun(b, &r.Runs[i])
	}
	b = append(b, ']')
	return closePage(b, r.NextPageToken)
}

// closePage ends a paged answer: its "next_page_token" member, omitted when
// there is no next page (encoding/json's omitempty), and the object's brace.
func closePage(b []byte, next string) []byte {
	if next != "" {
		b = append(b, `,"next_page_token":`...)
		b = jsonw.AppendString(b, next)
	}
	return append(b, '}')
}

func appendRun(b []byte, r *Run) []byte {
	b = appendRunInfo(b, &r.Info)
	b = append(b, `,"data":{`...)
	sep := false
	if len(r.Data.Metrics) > 0 {
		b = append(b, `"metrics":`...)
		b = appendMetrics(b, r.Data.Metrics)
		sep = true
	}
	for _, f := range []struct {
		name string
		kvs  []KV
	}{{"params", r.Data.Params}, {"tags", r.Data.Tags}} {
		if len(f.kvs) == 0 {
			continue
		}
		if sep {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, `":`...)
		b = appendKVs(b, f.kvs)
		sep = true
	}
	return appendRunIO(append(b, '}'), r)
}

// appendRunInfo opens a run's JSON object and writes its info: {"info":{...}
func appendRunInfo(b []byte, in *RunInfo) []byte {
	b = append(b, `{"info":{"run_id":`...)
	b = jsonw.AppendString(b, in.RunID)
	b = append(b, `,"run_uuid":`...)
	b = jsonw.AppendString(b, in.RunUUID)
	b = append(b, `,"run_name":`...)
	b = jsonw.AppendString(b, in.RunName)
	b = append(b, `,"experiment_id":`...)
	b = jsonw.AppendString(b, in.ExperimentID)
	b = append(b, `,"user_id":`...)
	b = jsonw.AppendString(b, in.UserID)
	b = append(b, `,"status":`...)
	b = jsonw.AppendString(b, in.Status)
	b = append(b, `,"start_time":`...)
	b = jsonw.AppendInt(b, in.StartTime)
	if in.EndTime != nil {
		b = append(b, `,"end_time":`...)
		b = jsonw.AppendInt(b, *in.EndTime)
	}
	b = append(b, `,"artifact_uri":`...)
	b = jsonw.AppendString(b, in.ArtifactURI)
	b = append(b, `,"lifecycle_stage":`...)
	b = jsonw.AppendString(b, in.LifecycleStage)
	return append(b, '}')
}

// appendRunIO writes a run's inputs and outputs and closes its object.
func appendRunIO(b []byte, r *Run) []byte {
	b = append(b, `,"inputs":`...)
	b = appendReflected(b, &r.Inputs, len(r.Inputs.DatasetInputs)+len(r.Inputs.ModelInputs) == 0)
	b = append(b, `,"outputs":`...)
	b = appendReflected(b, &r.Outputs, len(r.Outputs.ModelOutputs) == 0)
	return append(b, '}')
}

func appendKVs(b []byte, kvs []KV) []byte {
	b = append(b, '[')
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = jsonw.AppendString(b, kv.Key)
		b = append(b, `,"value":`...)
		b = jsonw.AppendString(b, kv.Value)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendReflected appends v with encoding/json, or {} when it is empty (the
// common case for run inputs and outputs, kept off the slow path).
func appendReflected(b []byte, v any, empty bool) []byte {
	if empty {
		return append(b, '{', '}')
	}
	j, _ := json.Marshal(v)
	return append(b, j...)
}
