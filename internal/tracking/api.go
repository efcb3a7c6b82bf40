package tracking

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/server"
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
		log = slog.New(slog.DiscardHandler)
	}
	return &API{store: store, artifacts: artifacts, log: log}
}

// Ready reports whether the metadata database answers.
func (a *API) Ready(ctx context.Context) error { return a.store.Ready(ctx) }

// Routes returns every RPC under both prefixes, the MLflow 3 server-info
// route, and ENDPOINT_NOT_FOUND for unknown paths below the prefixes (405 for
// a known path under the wrong method). It implements server.API.
func (a *API) Routes() []server.Route { return a.RoutesWith() }

// RoutesWith is Routes when others (the registry's routes) are served under
// the same prefixes: a known path of theirs under the wrong method answers
// 405 too. others are not part of the result.
func (a *API) RoutesWith(others ...server.Route) []server.Route {
	routes := wire.Routes(a.log, a.RPCs())
	// MLflow 3 clients ask /api/3.0/mlflow/server-info how the server is set up
	// (store type for telemetry, multipart artifact transfers). It tells what
	// the server offers, nothing of its data.
	info := wire.Serve(a.log, wire.Route{Handler: a.serverInfo})
	for _, p := range []string{"/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"} {
		routes = append(routes, server.Route{Pattern: "GET " + p, Permission: server.Public, Handler: info})
	}
	notFound := wire.NotFound(append(append([]server.Route(nil), routes...), others...))
	for _, p := range wire.Prefixes {
		// A 404 or 405 reveals only which MLflow paths exist, which MLflow's
		// documentation lists anyway.
		routes = append(routes, server.Route{Pattern: p + "/", Permission: server.Public, Handler: notFound})
	}
	return routes
}

// serverInfo answers /server-info. Atrium's store is SQL; workspaces and trace
// archival are not offered. Multipart uploads through the artifact proxy are
// advertised when the artifact store supports them (the client then uploads
// big files in parts).
func (a *API) serverInfo(*http.Request) (any, error) {
	_, multipart := a.artifacts.(artifact.Multipart)
	return map[string]any{
		"store_type":                          "SqlStore",
		"workspaces_enabled":                  false,
		"trace_archival_enabled":              false,
		"multipart_uploads_enabled":           multipart,
		"multipart_downloads_enabled":         false,
		"presigned_upload_run_id_supported":   false,
		"presigned_upload_model_id_supported": false,
		"features_enabled":                    map[string]bool{"gateway": false},
	}, nil
}

// RPCs lists the tracking RPCs, each with the permission it needs.
func (a *API) RPCs() []wire.Route {
	return []wire.Route{
		{Method: "POST", Path: "/experiments/create", Permission: server.Edit, Handler: a.createExperiment},
		{Method: "GET", Path: "/experiments/get", Permission: server.Read, Handler: a.getExperiment},
		{Method: "GET", Path: "/experiments/get-by-name", Permission: server.Read, Handler: a.getExperimentByName},
		{Method: "POST", Path: "/experiments/search", Permission: server.Read, Handler: a.searchExperiments},
		{Method: "GET", Path: "/experiments/search", Permission: server.Read, Handler: a.searchExperiments},
		{Method: "POST", Path: "/experiments/update", Permission: server.Edit, Handler: a.updateExperiment},
		{Method: "POST", Path: "/experiments/delete", Permission: server.Manage, Handler: byID(a.experimentID, a.store.DeleteExperiment)},
		{Method: "POST", Path: "/experiments/restore", Permission: server.Manage, Handler: byID(a.experimentID, a.store.RestoreExperiment)},
		{Method: "POST", Path: "/experiments/set-experiment-tag", Permission: server.Edit, Handler: a.setExperimentTag},
		{Method: "POST", Path: "/experiments/delete-experiment-tag", Permission: server.Edit, Handler: a.deleteExperimentTag},
		{Method: "POST", Path: "/runs/create", Permission: server.Edit, Handler: a.createRun},
		{Method: "GET", Path: "/runs/get", Permission: server.Read, Handler: a.getRun},
		{Method: "POST", Path: "/runs/update", Permission: server.Edit, Handler: a.updateRun},
		{Method: "POST", Path: "/runs/delete", Permission: server.Manage, Handler: byID(a.runID, a.store.DeleteRun)},
		{Method: "POST", Path: "/runs/restore", Permission: server.Manage, Handler: byID(a.runID, a.store.RestoreRun)},
		{Method: "POST", Path: "/runs/log-parameter", Permission: server.Edit, Handler: a.byRunKV(a.store.LogParam)},
		{Method: "POST", Path: "/runs/log-metric", Permission: server.Edit, Handler: a.logMetric},
		{Method: "POST", Path: "/runs/set-tag", Permission: server.Edit, Handler: a.byRunKV(a.store.SetTag)},
		{Method: "POST", Path: "/runs/delete-tag", Permission: server.Edit, Handler: a.deleteTag},
		// MLflow documents 1 MB per batch but its check measures the parsed
		// request's key count, so real clients send more: 100 params of 6000
		// characters and 100 tags of 8000 are within its limits. The body limit
		// admits every batch that passes the count and length limits.
		{Method: "POST", Path: "/runs/log-batch", Permission: server.Edit, Handler: a.logBatch, MaxBody: MaxBatchRequestBytes},
		{Method: "POST", Path: "/runs/log-model", Permission: server.Edit, Handler: a.logModel},
		{Method: "POST", Path: "/runs/log-inputs", Permission: server.Edit, Handler: a.logInputs, MaxBody: 64 << 20},
		{Method: "POST", Path: "/runs/outputs", Permission: server.Edit, Handler: a.logOutputs},
		{Method: "POST", Path: "/runs/search", Permission: server.Read, Handler: a.searchRuns},
		{Method: "GET", Path: "/metrics/get-history", Permission: server.Read, Handler: a.getMetricHistory},
		{Method: "GET", Path: "/metrics/get-history-bulk", Permission: server.Read, Handler: a.getMetricHistoryBulk},
		{Method: "GET", Path: "/metrics/get-history-bulk-interval", Permission: server.Read, Handler: a.getMetricHistoryBulkInterval},
		{Method: "GET", Path: "/artifacts/list", Permission: server.Read, Handler: a.listArtifacts},
		{Method: "POST", Path: "/experiments/search-datasets", Permission: server.Read, Handler: a.searchDatasets},
		{Method: "POST", Path: "/logged-models", Permission: server.Edit, Handler: a.createLoggedModel},
		{Method: "POST", Path: "/logged-models/search", Permission: server.Read, Handler: a.searchLoggedModels},
		{Method: "GET", Path: "/logged-models/{model_id}", Permission: server.Read, Handler: a.getLoggedModel},
		{Method: "PATCH", Path: "/logged-models/{model_id}", Permission: server.Edit, Handler: a.finalizeLoggedModel},
		{Method: "DELETE", Path: "/logged-models/{model_id}", Permission: server.Manage, Handler: a.deleteLoggedModel},
		{Method: "PATCH", Path: "/logged-models/{model_id}/tags", Permission: server.Edit, Handler: a.setLoggedModelTags},
		{Method: "DELETE", Path: "/logged-models/{model_id}/tags/{tag_key}", Permission: server.Edit, Handler: a.deleteLoggedModelTag},
		{Method: "POST", Path: "/logged-models/{model_id}/params", Permission: server.Edit, Handler: a.logLoggedModelParams},
		{Method: "GET", Path: "/logged-models/{model_id}/artifacts/directories", Permission: server.Read, Handler: a.listLoggedModelArtifacts},
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
