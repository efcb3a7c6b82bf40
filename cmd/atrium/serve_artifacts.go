package main

import (
	"github.com/atrium-ml/atrium/internal/platform/artifact/proxy"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// The MLflow artifact proxy (/api/2.0/mlflow-artifacts/...) over the project's
// artifact store (stores.artifacts, default file://<data_dir>/artifacts).
func artifactAPI(e *env) (server.API, error) {
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	store, err := e.Artifacts()
	if err != nil {
		return nil, err
	}
	s := p.Server
	if s.PublicURL == "" && !isLoopback(s.Addr) && len(s.Auth.AllowedHosts) == 0 {
		// Any Host header is accepted, so multipart part URLs point wherever
		// the creating request said the server is.
		e.log.Warn("multipart part URLs are built from the Host header each client sends: set server.public_url (or server.auth.allowed_hosts) in atrium.yaml")
	}
	return proxy.New(store, proxy.Options{Logger: e.log, PublicURL: s.PublicURL}), nil
}
