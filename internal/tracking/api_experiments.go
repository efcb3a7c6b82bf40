package tracking

import (
	"context"
	"net/http"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Handlers of the experiment RPCs.

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
		Visible: server.VisibleFrom(r.Context(), server.ResourceExperiment),
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
