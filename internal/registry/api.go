package registry

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// API serves MLflow's model registry REST API under /api/2.0/mlflow and
// /ajax-api/2.0/mlflow. It implements server.API and server.Readier.
type API struct {
	store *Store
	log   *slog.Logger
}

// NewAPI returns the registry API over store.
func NewAPI(store *Store, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{store: store, log: log}
}

// Ready reports whether the metadata database answers.
func (a *API) Ready(ctx context.Context) error { return a.store.Ready(ctx) }

// Routes returns the registry RPCs under both MLflow prefixes.
func (a *API) Routes() []server.Route { return wire.Routes(a.log, a.RPCs()) }

// RPCs lists the registry RPCs, each with the permission it needs.
func (a *API) RPCs() []wire.Route {
	return []wire.Route{
		{Method: "POST", Path: "/registered-models/create", Permission: server.Edit, Handler: a.createModel},
		{Method: "GET", Path: "/registered-models/get", Permission: server.Read, Handler: a.getModel},
		{Method: "PATCH", Path: "/registered-models/update", Permission: server.Edit, Handler: a.updateModel},
		{Method: "POST", Path: "/registered-models/rename", Permission: server.Manage, Handler: a.renameModel},
		{Method: "DELETE", Path: "/registered-models/delete", Permission: server.Manage, Handler: a.deleteModel},
		{Method: "GET", Path: "/registered-models/search", Permission: server.Read, Handler: a.searchModels},
		{Method: "POST", Path: "/registered-models/get-latest-versions", Permission: server.Read, Handler: a.latestVersions},
		{Method: "GET", Path: "/registered-models/get-latest-versions", Permission: server.Read, Handler: a.latestVersions},
		{Method: "POST", Path: "/registered-models/set-tag", Permission: server.Edit, Handler: a.setModelTag},
		{Method: "DELETE", Path: "/registered-models/delete-tag", Permission: server.Edit, Handler: a.deleteModelTag},
		{Method: "POST", Path: "/registered-models/alias", Permission: server.Deploy, Handler: a.setAlias},
		{Method: "DELETE", Path: "/registered-models/alias", Permission: server.Deploy, Handler: a.deleteAlias},
		{Method: "GET", Path: "/registered-models/alias", Permission: server.Read, Handler: a.getByAlias},
		{Method: "POST", Path: "/model-versions/create", Permission: server.Edit, Handler: a.createVersion},
		{Method: "GET", Path: "/model-versions/get", Permission: server.Read, Handler: a.getVersion},
		{Method: "PATCH", Path: "/model-versions/update", Permission: server.Edit, Handler: a.updateVersion},
		{Method: "POST", Path: "/model-versions/transition-stage", Permission: server.Deploy, Handler: a.transitionStage},
		{Method: "DELETE", Path: "/model-versions/delete", Permission: server.Manage, Handler: a.deleteVersion},
		{Method: "GET", Path: "/model-versions/search", Permission: server.Read, Handler: a.searchVersions},
		{Method: "GET", Path: "/model-versions/get-download-uri", Permission: server.Read, Handler: a.downloadURI},
		{Method: "POST", Path: "/model-versions/set-tag", Permission: server.Edit, Handler: a.setVersionTag},
		{Method: "DELETE", Path: "/model-versions/delete-tag", Permission: server.Edit, Handler: a.deleteVersionTag},
	}
}

type modelResponse struct {
	RegisteredModel *RegisteredModel `json:"registered_model"`
}

type versionResponse struct {
	ModelVersion *ModelVersion `json:"model_version"`
}

// nameRequest carries a registered model name and the fields most RPCs add.
type nameRequest struct {
	Name        string `json:"name"`
	NewName     string `json:"new_name"`
	Description string `json:"description"`
	Key         string `json:"key"`
	Value       string `json:"value"`
	Alias       string `json:"alias"`
	Version     string `json:"version"`
}

// named decodes a nameRequest and checks that each of fields is present.
func named(r *http.Request, fields ...string) (*nameRequest, error) {
	req, err := wire.Request[nameRequest](r)
	if err != nil {
		return nil, err
	}
	values := map[string]string{"name": req.Name, "new_name": req.NewName, "key": req.Key, "alias": req.Alias, "version": req.Version}
	for _, f := range append([]string{"name"}, fields...) {
		if err := tracking.Required(f, values[f]); err != nil {
			return nil, err
		}
	}
	return req, nil
}

func (a *API) createModel(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Name        string        `json:"name"`
		Tags        []tracking.KV `json:"tags"`
		Description string        `json:"description"`
	}](r)
	if err != nil {
		return nil, err
	}
	if err := tracking.Required("name", req.Name); err != nil {
		return nil, err
	}
	m, err := a.store.CreateRegisteredModel(r.Context(), req.Name, req.Tags, req.Description)
	if err != nil {
		return nil, err
	}
	return modelResponse{m}, nil
}

func (a *API) getModel(r *http.Request) (any, error) {
	req, err := named(r)
	if err != nil {
		return nil, err
	}
	m, err := a.store.GetRegisteredModel(r.Context(), req.Name)
	if err != nil {
		return nil, err
	}
	return modelResponse{m}, nil
}

func (a *API) updateModel(r *http.Request) (any, error) {
	req, err := named(r)
	if err != nil {
		return nil, err
	}
	m, err := a.store.UpdateRegisteredModel(r.Context(), req.Name, req.Description)
	if err != nil {
		return nil, err
	}
	return modelResponse{m}, nil
}

func (a *API) renameModel(r *http.Request) (any, error) {
	req, err := named(r, "new_name")
	if err != nil {
		return nil, err
	}
	m, err := a.store.RenameRegisteredModel(r.Context(), req.Name, req.NewName)
	if err != nil {
		return nil, err
	}
	return modelResponse{m}, nil
}

func (a *API) deleteModel(r *http.Request) (any, error) {
	req, err := named(r)
	if err != nil {
		return nil, err
	}
	return nil, a.store.DeleteRegisteredModel(r.Context(), req.Name)
}

func (a *API) searchModels(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Filter     string     `json:"filter"`
		MaxResults wire.Int64 `json:"max_results"`
		OrderBy    []string   `json:"order_by"`
		PageToken  string     `json:"page_token"`
	}](r)
	if err != nil {
		return nil, err
	}
	ms, next, err := a.store.SearchRegisteredModels(r.Context(), ModelQuery{Filter: req.Filter, MaxResults: int64(req.MaxResults), OrderBy: req.OrderBy, PageToken: req.PageToken,
		Visible: server.VisibleFrom(r.Context(), server.ResourceRegisteredModel)})
	if err != nil {
		return nil, err
	}
	if ms == nil {
		ms = []RegisteredModel{}
	}
	return struct {
		RegisteredModels []RegisteredModel `json:"registered_models"`
		NextPageToken    string            `json:"next_page_token,omitempty"`
	}{ms, next}, nil
}

func (a *API) latestVersions(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Name   string   `json:"name"`
		Stages []string `json:"stages"`
	}](r)
	if err != nil {
		return nil, err
	}
	if err := tracking.Required("name", req.Name); err != nil {
		return nil, err
	}
	vs, err := a.store.GetLatestVersions(r.Context(), req.Name, req.Stages)
	if err != nil {
		return nil, err
	}
	return versionsResponse(vs, ""), nil
}

func versionsResponse(vs []ModelVersion, next string) any {
	if vs == nil {
		vs = []ModelVersion{}
	}
	return struct {
		ModelVersions []ModelVersion `json:"model_versions"`
		NextPageToken string         `json:"next_page_token,omitempty"`
	}{vs, next}
}

func (a *API) setModelTag(r *http.Request) (any, error) {
	req, err := named(r, "key")
	if err != nil {
		return nil, err
	}
	return nil, a.store.SetRegisteredModelTag(r.Context(), req.Name, tracking.KV{Key: req.Key, Value: req.Value})
}

func (a *API) deleteModelTag(r *http.Request) (any, error) {
	req, err := named(r, "key")
	if err != nil {
		return nil, err
	}
	return nil, a.store.DeleteRegisteredModelTag(r.Context(), req.Name, req.Key)
}

func (a *API) setAlias(r *http.Request) (any, error) {
	req, err := named(r, "alias", "version")
	if err != nil {
		return nil, err
	}
	return nil, a.store.SetAlias(r.Context(), req.Name, req.Alias, req.Version)
}

func (a *API) deleteAlias(r *http.Request) (any, error) {
	req, err := named(r, "alias")
	if err != nil {
		return nil, err
	}
	return nil, a.store.DeleteAlias(r.Context(), req.Name, req.Alias)
}

func (a *API) getByAlias(r *http.Request) (any, error) {
	req, err := named(r, "alias")
	if err != nil {
		return nil, err
	}
	v, err := a.store.GetVersionByAlias(r.Context(), req.Name, req.Alias)
	if err != nil {
		return nil, err
	}
	return versionResponse{v}, nil
}

func (a *API) createVersion(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Name        string        `json:"name"`
		Source      string        `json:"source"`
		RunID       string        `json:"run_id"`
		Tags        []tracking.KV `json:"tags"`
		RunLink     string        `json:"run_link"`
		Description string        `json:"description"`
		ModelID     string        `json:"model_id"`
	}](r)
	if err != nil {
		return nil, err
	}
	if err := tracking.Required("name", req.Name); err != nil {
		return nil, err
	}
	v, err := a.store.CreateModelVersion(r.Context(), VersionCreate{Name: req.Name, Source: req.Source, RunID: req.RunID, ModelID: req.ModelID,
		RunLink: req.RunLink, Description: req.Description, Tags: req.Tags})
	if err != nil {
		return nil, err
	}
	return versionResponse{v}, nil
}

func (a *API) getVersion(r *http.Request) (any, error) {
	req, err := named(r, "version")
	if err != nil {
		return nil, err
	}
	v, err := a.store.GetModelVersion(r.Context(), req.Name, req.Version)
	if err != nil {
		return nil, err
	}
	return versionResponse{v}, nil
}

func (a *API) updateVersion(r *http.Request) (any, error) {
	req, err := named(r, "version")
	if err != nil {
		return nil, err
	}
	v, err := a.store.UpdateModelVersion(r.Context(), req.Name, req.Version, req.Description)
	if err != nil {
		return nil, err
	}
	return versionResponse{v}, nil
}

func (a *API) transitionStage(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Name                    string    `json:"name"`
		Version                 string    `json:"version"`
		Stage                   string    `json:"stage"`
		ArchiveExistingVersions wire.Bool `json:"archive_existing_versions"`
	}](r)
	if err != nil {
		return nil, err
	}
	for _, f := range [][2]string{{"name", req.Name}, {"version", req.Version}, {"stage", req.Stage}} {
		if err := tracking.Required(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	v, err := a.store.TransitionStage(r.Context(), req.Name, req.Version, req.Stage, bool(req.ArchiveExistingVersions))
	if err != nil {
		return nil, err
	}
	return versionResponse{v}, nil
}

func (a *API) deleteVersion(r *http.Request) (any, error) {
	req, err := named(r, "version")
	if err != nil {
		return nil, err
	}
	return nil, a.store.DeleteModelVersion(r.Context(), req.Name, req.Version)
}

func (a *API) searchVersions(r *http.Request) (any, error) {
	req, err := wire.Request[struct {
		Filter     string     `json:"filter"`
		MaxResults wire.Int64 `json:"max_results"`
		OrderBy    []string   `json:"order_by"`
		PageToken  string     `json:"page_token"`
	}](r)
	if err != nil {
		return nil, err
	}
	vs, next, err := a.store.SearchModelVersions(r.Context(), VersionQuery{Filter: req.Filter, MaxResults: int64(req.MaxResults), OrderBy: req.OrderBy, PageToken: req.PageToken,
		Visible: server.VisibleFrom(r.Context(), server.ResourceRegisteredModel)})
	if err != nil {
		return nil, err
	}
	return versionsResponse(vs, next), nil
}

func (a *API) downloadURI(r *http.Request) (any, error) {
	req, err := named(r, "version")
	if err != nil {
		return nil, err
	}
	uri, err := a.store.DownloadURI(r.Context(), req.Name, req.Version)
	if err != nil {
		return nil, err
	}
	return map[string]string{"artifact_uri": uri}, nil
}

func (a *API) setVersionTag(r *http.Request) (any, error) {
	req, err := named(r, "version", "key")
	if err != nil {
		return nil, err
	}
	return nil, a.store.SetModelVersionTag(r.Context(), req.Name, req.Version, tracking.KV{Key: req.Key, Value: req.Value})
}

func (a *API) deleteVersionTag(r *http.Request) (any, error) {
	req, err := named(r, "version", "key")
	if err != nil {
		return nil, err
	}
	return nil, a.store.DeleteModelVersionTag(r.Context(), req.Name, req.Version, req.Key)
}
