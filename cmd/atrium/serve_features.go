package main

import (
	"errors"
	"fmt"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
)

// The online feature API of `atrium serve`: POST /get-online-features,
// POST /push, POST /write-to-online-store and POST /materialize-incremental
// (Feast's wire format).
// featureAPI loads the applied feature definitions once (the server restarts to
// see a new apply), opens the online store and, for pushes to the offline
// store, the offline engine, and returns the online feature API.
func featureAPI(e *env) (server.API, error) {
	db, err := e.Meta()
	if err != nil {
		return nil, err
	}
	o, l, err := e.OnlineRetrieval()
	if err != nil {
		return nil, err
	}
	store := o.Store()
	features := &spec.Features{}
	if l != nil {
		features = l.Features
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	opts := retrieval.APIOptions{Logger: e.log, Meta: db, StoreTimeout: p.Server.StoreTimeout}
	if s := p.Server.PushMaxSkew; s != "" {
		skew, err := spec.ParseDuration(s) // validated when the project loaded
		if err != nil {
			return nil, fmt.Errorf("server.push_max_skew: %w", err)
		}
		opts.PushMaxSkew = skew.D()
		if skew == 0 {
			opts.PushMaxSkew = -1 // "0": nothing later than the clock
		}
	}
	if l != nil {
		// Pushes to the offline store, and materialization inside the server
		// (the way to fill an embedded store the server holds open).
		eng, err := e.Offline(features)
		if err != nil {
			return nil, err
		}
		opts.Offline = eng
		opts.Materializer = &retrieval.Materializer{Store: store, Meta: db, Engine: eng, Logger: e.log}
	}
	return retrieval.NewAPI(o, opts), nil
}

// OnlineRetrieval returns the online retrieval of the applied feature
// definitions (nil l when none are applied: it serves nothing), opened once
// and shared by the feature API and the model endpoints, which fetch
// models' features through it.
func (e *env) OnlineRetrieval() (o *retrieval.Online, l *catalog.Loaded, err error) {
	if e.retrieval != nil {
		return e.retrieval, e.catalog, nil
	}
	db, err := e.Meta()
	if err != nil {
		return nil, nil, err
	}
	features := &spec.Features{}
	l, err = loadCatalog(e)
	switch {
	case errors.Is(err, catalog.ErrNotApplied):
		e.log.Warn("no feature definitions applied: the online feature API serves none until `atrium apply` and a restart")
		l = nil
	case err != nil:
		return nil, nil, err
	default:
		features = l.Features
	}
	keyTypes, err := retrieval.LoadKeyTypes(e.ctx, db)
	if err != nil {
		return nil, nil, err
	}
	defs, err := retrieval.DefinitionsFromSpec(features, keyTypes)
	if err != nil {
		return nil, nil, err
	}
	store, err := e.Online()
	if err != nil {
		return nil, nil, err
	}
	o, err = retrieval.NewOnline(store, defs, retrieval.Options{})
	if err != nil {
		return nil, nil, err
	}
	e.retrieval = o
	return o, l, nil
}
