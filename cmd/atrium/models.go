package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/atrium-ml/atrium/internal/demo/steps"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/batch"
	"github.com/atrium-ml/atrium/internal/serving/register"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// registryStores opens the project's tracking store, registry and artifact
// store for commands that publish or read registered models (fit
// --register, predict --model, skew). The tracking store's run cache is off:
// `atrium serve` in the same process (the demo) has a store of its own on
// the same database, and a cache would not see the other's writes.
func registryStores(e *env) (register.Stores, error) {
	db, err := e.Meta()
	if err != nil {
		return register.Stores{}, err
	}
	ts, err := tracking.New(e.ctx, db, tracking.Options{Logger: e.log, RunCacheBytes: -1})
	if err != nil {
		return register.Stores{}, err
	}
	arts, err := e.Artifacts()
	if errors.Is(err, artifact.ErrUnsupportedURL) {
		return register.Stores{}, fmt.Errorf("registered models: %w", err)
	}
	if err != nil {
		return register.Stores{}, err
	}
	return register.Stores{Tracking: ts, Registry: registry.New(ts), Artifacts: arts}, nil
}

// batchSources are what the offline twin reads: registered versions, the
// offline store and the applied feature definitions.
func batchSources(e *env) (batch.Sources, error) {
	st, err := registryStores(e)
	if err != nil {
		return batch.Sources{}, err
	}
	l, err := loadCatalog(e)
	if err != nil {
		return batch.Sources{}, err
	}
	eng, err := e.Offline(l.Features)
	if err != nil {
		return batch.Sources{}, err
	}
	return batch.Sources{Loader: &serving.Loader{Registry: st.Registry, Artifacts: st.Artifacts}, Offline: eng, Features: l.Features}, nil
}

// The demo's serve step runs serve's own code on the demo project's env.
var _ steps.Serving = (*env)(nil)

// ServeAPIs builds the APIs `atrium serve` composes (serveAPIs).
func (e *env) ServeAPIs() ([]server.API, error) {
	apis := make([]server.API, 0, len(serveAPIs))
	for _, build := range serveAPIs {
		api, err := build(e)
		if err != nil {
			return nil, err
		}
		apis = append(apis, api)
	}
	return apis, nil
}

// FlushPredictions writes what the prediction log buffers (nothing to do
// without one).
func (e *env) FlushPredictions(ctx context.Context) error {
	if e.predlog == nil {
		return nil
	}
	return e.predlog.Flush(ctx)
}

// PredictionLogDir is the directory of the project's prediction log.
func (e *env) PredictionLogDir() (string, error) {
	p, err := e.Project()
	if err != nil {
		return "", err
	}
	return predictionLogDir(p)
}

// ModelSources are batchSources.
func (e *env) ModelSources() (batch.Sources, error) { return batchSources(e) }
