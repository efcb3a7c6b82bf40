package main

import (
	"github.com/atrium-ml/atrium/internal/platform/artifact/proxy"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// The MLflow artifact proxy (/api/2.0/mlflow-artifacts/...) over the project's
// artifact store (stores.artifacts, default file://<data_dir>/artifacts).
func artifactAPI(e *env) (server.API, error) {
	store, err := e.Artifacts()
	if err != nil {
		return nil, err
	}
	return proxy.New(store, proxy.Options{Logger: e.log}), nil
}
