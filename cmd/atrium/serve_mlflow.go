package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// The MLflow tracking API (and the model registry API, which shares its store)
// on `atrium serve`: point MLFLOW_TRACKING_URI at the server.
func mlflowAPI(e *env) (server.API, error) {
	db, err := e.Meta()
	if err != nil {
		return nil, err
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	opts := tracking.Options{Logger: e.log}
	if c := p.Server.RunCacheMiB; c != nil {
		opts.RunCacheBytes = int64(*c) << 20
		if *c == 0 {
			opts.RunCacheBytes = -1 // off
		}
	}
	store, err := tracking.New(e.ctx, db, opts)
	if err != nil {
		return nil, err
	}
	arts, err := mlflowArtifacts(e)
	if err != nil {
		return nil, err
	}
	return mlflowAPIs{
		tracking: tracking.NewAPI(store, arts, e.log),
		registry: registry.NewAPI(registry.New(store), e.log),
	}, nil
}

// mlflowAPIs serves the tracking and registry APIs as one server.API; they
// share the /api/2.0/mlflow prefix and its ENDPOINT_NOT_FOUND fallback.
type mlflowAPIs struct {
	tracking *tracking.API
	registry *registry.API
}

// Routes implements server.API.
func (m mlflowAPIs) Routes() []server.Route {
	reg := m.registry.Routes()
	return append(m.tracking.RoutesWith(reg...), reg...)
}

// Ready reports whether the metadata database answers.
func (m mlflowAPIs) Ready(ctx context.Context) error { return m.tracking.Ready(ctx) }

// mlflowArtifacts opens the project's artifact store for server-side listings
// of run and logged-model artifacts. A scheme no backend handles leaves listing
// unavailable (the API answers NOT_IMPLEMENTED) rather than failing serve.
func mlflowArtifacts(e *env) (artifact.Store, error) {
	arts, err := e.Artifacts()
	if errors.Is(err, artifact.ErrUnsupportedURL) {
		e.log.Warn("mlflow api: artifact listing disabled", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact store for the MLflow API: %w", err)
	}
	return arts, nil
}
