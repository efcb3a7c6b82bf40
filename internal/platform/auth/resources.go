package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

// Resources finds the experiments or registered models a request acts on,
// so that per-resource grants and the default permission can apply.
type Resources interface {
	// Resolve returns the resources r, a request of route rt, acts on.
	// about is false for routes that act on no single resource (creating an
	// experiment, searches without experiment ids): the role alone decides.
	// about true with no resource means the request names one that could not
	// be found (an unknown run, a malformed body): only what holds without a
	// grant applies. An error is a backend failure (503). Resolve may read
	// r's body; it must leave an equal one in its place.
	Resolve(r *http.Request, rt server.Route) (res []Resource, about bool, err error)
}

// Creations is an optional interface of Resources: the routes that create
// an experiment or registered model, whose creator (a user) is granted
// MANAGE on it, as MLflow's basic-auth app does, so that a restrictive
// default permission does not lock creators out of what they made.
type Creations interface {
	// Creates reports whether route pattern creates a resource.
	Creates(pattern string) bool
	// Created returns the resource a successful answer (its JSON body)
	// reports created.
	Created(pattern string, body []byte) (Resource, bool)
}

// MLflowLookup finds the experiment of what MLflow requests name instead:
// a run, a logged model, an experiment's name. Each returns "" and no error
// when there is no such object.
type MLflowLookup interface {
	RunExperiment(ctx context.Context, runID string) (string, error)
	LoggedModelExperiment(ctx context.Context, modelID string) (string, error)
	ExperimentByName(ctx context.Context, name string) (string, error)
}

// Decoder fills dst from a request as the MLflow API's handlers do (query
// string for GET, JSON body otherwise), so that the guard reads the same
// ids the handler will act on.
type Decoder func(r *http.Request, dst any) error

// how a route names its resource.
type how uint8

const (
	byExperimentID   how = iota + 1 // experiment_id
	byExperimentOr0                 // experiment_id, "0" (Default) when absent, as the handler does
	byExperimentIDs                 // experiment_ids (every one)
	byExperimentName                // experiment_name
	byRunID                         // run_id or run_uuid
	byRunIDs                        // run_ids (every one)
	byLoggedModel                   // {model_id} in the path
	byModelName                     // name: a registered model
	byArtifactPath                  // artifact path: the experiment id is its first element
)

// Prefixes of the MLflow APIs, as the tracking and artifact APIs mount them.
var (
	mlflowPrefixes   = []string{"/api/2.0/mlflow", "/ajax-api/2.0/mlflow"}
	artifactPrefixes = []string{"/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"}
)

// mlflowRoutes is how each MLflow route that acts on an experiment or a
// registered model names it, by "METHOD path" under the prefixes. Routes of
// the MLflow APIs not listed act on no single resource; a test of `atrium
// serve` checks that every mounted MLflow route is listed here or in
// MLflowUnscopedRoutes, so a new route is classified on purpose.
var mlflowRoutes = map[string]how{
	"GET /experiments/get":                                byExperimentID,
	"GET /experiments/get-by-name":                        byExperimentName,
	"POST /experiments/update":                            byExperimentID,
	"POST /experiments/delete":                            byExperimentID,
	"POST /experiments/restore":                           byExperimentID,
	"POST /experiments/set-experiment-tag":                byExperimentID,
	"POST /experiments/delete-experiment-tag":             byExperimentID,
	"POST /experiments/search-datasets":                   byExperimentIDs,
	"POST /runs/create":                                   byExperimentID,
	"GET /runs/get":                                       byRunID,
	"POST /runs/update":                                   byRunID,
	"POST /runs/delete":                                   byRunID,
	"POST /runs/restore":                                  byRunID,
	"POST /runs/log-parameter":                            byRunID,
	"POST /runs/log-metric":                               byRunID,
	"POST /runs/set-tag":                                  byRunID,
	"POST /runs/delete-tag":                               byRunID,
	"POST /runs/log-batch":                                byRunID,
	"POST /runs/log-model":                                byRunID,
	"POST /runs/log-inputs":                               byRunID,
	"POST /runs/outputs":                                  byRunID,
	"POST /runs/search":                                   byExperimentIDs,
	"GET /metrics/get-history":                            byRunID,
	"GET /metrics/get-history-bulk":                       byRunIDs,
	"GET /metrics/get-history-bulk-interval":              byRunIDs,
	"GET /artifacts/list":                                 byRunID,
	"POST /logged-models":                                 byExperimentID,
	"POST /logged-models/search":                          byExperimentIDs,
	"GET /logged-models/{model_id}":                       byLoggedModel,
	"PATCH /logged-models/{model_id}":                     byLoggedModel,
	"DELETE /logged-models/{model_id}":                    byLoggedModel,
	"PATCH /logged-models/{model_id}/tags":                byLoggedModel,
	"DELETE /logged-models/{model_id}/tags/{tag_key}":     byLoggedModel,
	"POST /logged-models/{model_id}/params":               byLoggedModel,
	"GET /logged-models/{model_id}/artifacts/directories": byLoggedModel,
	"GET /registered-models/get":                          byModelName,
	"PATCH /registered-models/update":                     byModelName,
	"POST /registered-models/rename":                      byModelName,
	"DELETE /registered-models/delete":                    byModelName,
	"POST /registered-models/get-latest-versions":         byModelName,
	"GET /registered-models/get-latest-versions":          byModelName,
	"POST /registered-models/set-tag":                     byModelName,
	"DELETE /registered-models/delete-tag":                byModelName,
	"POST /registered-models/alias":                       byModelName,
	"DELETE /registered-models/alias":                     byModelName,
	"GET /registered-models/alias":                        byModelName,
	"POST /model-versions/create":                         byModelName,
	"GET /model-versions/get":                             byModelName,
	"PATCH /model-versions/update":                        byModelName,
	"POST /model-versions/transition-stage":               byModelName,
	"DELETE /model-versions/delete":                       byModelName,
	"GET /model-versions/get-download-uri":                byModelName,
	"POST /model-versions/set-tag":                        byModelName,
	"DELETE /model-versions/delete-tag":                   byModelName,
}

// artifactRoutes are the artifact proxy's routes, by "METHOD path" under
// its prefixes.
var artifactRoutes = map[string]how{
	"PUT /artifacts/{path...}":     byArtifactPath,
	"GET /artifacts/{path...}":     byArtifactPath,
	"GET /artifacts":               byArtifactPath,
	"DELETE /artifacts/{path...}":  byArtifactPath,
	"POST /mpu/create/{path...}":   byArtifactPath,
	"POST /mpu/complete/{path...}": byArtifactPath,
	"POST /mpu/abort/{path...}":    byArtifactPath,
	"GET /presigned/{path...}":     byArtifactPath,
}

// MLflowUnscopedRoutes are the MLflow routes (under the prefixes) that act
// on no single experiment or registered model: creating one, and searches
// across all of them, which the role alone lets through. The searches'
// answers keep only what the caller may read: the guard puts the predicate
// in the request's context (server.WithVisible), the handlers pass it to
// their store.
var MLflowUnscopedRoutes = []string{
	"POST /experiments/create", "POST /experiments/search", "GET /experiments/search",
	"POST /registered-models/create", "GET /registered-models/search", "GET /model-versions/search",
}

// MLflowResources returns the resolver of the MLflow tracking, registry and
// artifact proxy routes.
func MLflowResources(lookup MLflowLookup, decode Decoder) Resources {
	m := &mlflowResources{lookup: lookup, decode: decode, routes: map[string]how{}}
	for _, tbl := range []struct {
		prefixes []string
		routes   map[string]how
	}{{mlflowPrefixes, mlflowRoutes}, {artifactPrefixes, artifactRoutes}} {
		for pat, h := range tbl.routes {
			method, path, _ := strings.Cut(pat, " ")
			for _, p := range tbl.prefixes {
				m.routes[method+" "+p+path] = h
			}
		}
	}
	return m
}

// creates are the MLflow routes that create a resource (under the
// prefixes), by "METHOD path".
var creates = map[string]Kind{"POST /experiments/create": KindExperiment, "POST /registered-models/create": KindModel}

func (m *mlflowResources) createdKind(pattern string) (Kind, bool) {
	method, path, _ := strings.Cut(pattern, " ")
	for _, p := range mlflowPrefixes {
		if rest, ok := strings.CutPrefix(path, p); ok {
			k, ok := creates[method+" "+rest]
			return k, ok
		}
	}
	return "", false
}

// Creates implements Creations.
func (m *mlflowResources) Creates(pattern string) bool {
	_, ok := m.createdKind(pattern)
	return ok
}

// Created implements Creations: experiments/create answers
// {"experiment_id"}, registered-models/create {"registered_model": {"name"}}.
func (m *mlflowResources) Created(pattern string, body []byte) (Resource, bool) {
	kind, ok := m.createdKind(pattern)
	if !ok {
		return Resource{}, false
	}
	var v struct {
		ExperimentID    string `json:"experiment_id"`
		RegisteredModel struct {
			Name string `json:"name"`
		} `json:"registered_model"`
	}
	if json.Unmarshal(body, &v) != nil {
		return Resource{}, false
	}
	id := v.ExperimentID
	if kind == KindModel {
		id = v.RegisteredModel.Name
	}
	return Resource{kind, id}, id != ""
}

// Scoped reports whether the route of pattern names the resource it acts
// on (for tests that classify every route).
func (m *mlflowResources) Scoped(pattern string) bool {
	_, ok := m.routes[pattern]
	return ok
}

type mlflowResources struct {
	lookup MLflowLookup
	decode Decoder
	routes map[string]how // by full server pattern
}

// ids are the fields MLflow requests name resources by.
type ids struct {
	ExperimentID   string   `json:"experiment_id"`
	ExperimentIDs  []string `json:"experiment_ids"`
	ExperimentName string   `json:"experiment_name"`
	RunID          string   `json:"run_id"`
	RunUUID        string   `json:"run_uuid"`
	RunIDs         []string `json:"run_ids"`
	Name           string   `json:"name"`
}

func (m *mlflowResources) Resolve(r *http.Request, rt server.Route) ([]Resource, bool, error) {
	h, ok := m.routes[rt.Pattern]
	if !ok {
		return nil, false, nil
	}
	ctx := r.Context()
	switch h {
	case byLoggedModel:
		id, err := m.lookup.LoggedModelExperiment(ctx, r.PathValue("model_id"))
		return experiments(id), true, err
	case byArtifactPath:
		p := r.PathValue("path")
		if rt.Pattern[:strings.IndexByte(rt.Pattern, ' ')] == http.MethodGet && !strings.Contains(rt.Pattern, "{path...}") {
			p = r.URL.Query().Get("path") // the listing: GET /artifacts?path=
		}
		// MLflow's layout: <experiment id>/<run id>/artifacts/...; a path
		// elsewhere names no experiment (only what holds without a grant).
		first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if first == "" || strings.Trim(first, "0123456789") != "" {
			return nil, true, nil
		}
		return experiments(first), true, nil
	}
	var v ids
	if err := m.decodeKeepingBody(r, &v); err != nil {
		return nil, true, nil // the handler refuses it too
	}
	switch h {
	case byExperimentID:
		return experiments(v.ExperimentID), true, nil
	case byExperimentOr0:
		return experiments(cmpOr(v.ExperimentID, "0")), true, nil
	case byExperimentIDs:
		if len(v.ExperimentIDs) == 0 {
			return nil, false, nil // a search of nothing named: the role decides
		}
		return experiments(v.ExperimentIDs...), true, nil
	case byExperimentName:
		id, err := m.lookup.ExperimentByName(ctx, v.ExperimentName)
		return experiments(id), true, err
	case byRunID, byRunIDs:
		runs := v.RunIDs
		if h == byRunID {
			runs = []string{cmpOr(v.RunID, v.RunUUID)}
		}
		var exps []string
		for _, run := range runs {
			id, err := m.lookup.RunExperiment(ctx, run)
			if err != nil || id == "" {
				return nil, true, err
			}
			exps = append(exps, id)
		}
		return experiments(exps...), true, nil
	case byModelName:
		if v.Name == "" {
			return nil, true, nil
		}
		return []Resource{{KindModel, v.Name}}, true, nil
	}
	return nil, false, fmt.Errorf("auth: route %s: unknown resolution %d", rt.Pattern, h)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// experiments are the resources of experiment ids; an empty id makes the
// whole list unknown (nil).
func experiments(ids ...string) []Resource {
	out := make([]Resource, 0, len(ids))
	for _, id := range ids {
		if id == "" {
			return nil
		}
		out = append(out, Resource{KindExperiment, id})
	}
	return out
}

// decodeKeepingBody decodes r into v and puts the body back for the
// handler. The server has bounded the body and counted it against its
// in-flight budget; it is read once here and once by the handler.
func (m *mlflowResources) decodeKeepingBody(r *http.Request, v *ids) error {
	if r.Body == nil || r.Body == http.NoBody {
		return m.decode(r, v)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		// The handler sees what it would have: the bytes, then the error
		// (a body over the limit stays over the limit).
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{err}))
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	err = m.decode(r, v)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
