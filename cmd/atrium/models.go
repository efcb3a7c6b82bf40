package main

import (
	"errors"
	"fmt"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
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
