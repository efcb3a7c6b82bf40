package tracking

import (
	"net/http"

	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Handlers of the MLflow 3 logged model RPCs.

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
