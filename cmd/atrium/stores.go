package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/demo/steps"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/spec"
)

// The project's stores, opened on first use and at most once per process:
// commands, the APIs of `atrium serve` and the demo's steps share one handle
// of each, closed when the command ends (env.close, in reverse order of
// opening).

var _ steps.Stores = (*env)(nil)

// Project loads atrium.yaml from --repo (defaults when there is none).
func (e *env) Project() (*spec.Project, error) {
	if e.project == nil {
		p, err := spec.LoadProject(e.repo)
		if err != nil {
			return nil, err
		}
		e.project = p
	}
	return e.project, nil
}

// Meta opens the project's metadata database, migrated to the newest schema
// of every component (metaSchemas).
func (e *env) Meta() (*meta.DB, error) {
	if e.meta != nil {
		return e.meta, nil
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	db, err := meta.Open(e.ctx, p.Stores.Meta, metaSchemas...)
	if err != nil {
		return nil, err
	}
	e.meta = db
	e.onClose(db.Close)
	return db, nil
}

// loadCatalog loads the latest applied feature definitions. It warns when the
// repository's features/*.yaml differ from them.
func loadCatalog(e *env) (*catalog.Loaded, error) {
	if e.catalog != nil {
		return e.catalog, nil
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	db, err := e.Meta()
	if err != nil {
		return nil, err
	}
	l, err := catalog.Load(e.ctx, db)
	if errors.Is(err, catalog.ErrNotApplied) {
		return nil, fmt.Errorf("%w (in %s)", err, db.URL)
	}
	if err != nil {
		return nil, err
	}
	if files, err := spec.LoadFeatures(p.Dir); err == nil {
		a, _ := json.Marshal(files)
		b, _ := json.Marshal(l.Features)
		if string(a) != string(b) {
			e.log.Warn("features/*.yaml differ from the applied catalog; using the applied version (run atrium apply to update it)", "catalog_version", l.Version)
		}
	}
	e.catalog = l
	return l, nil
}

// Offline opens the project's offline store computing and reading feats: the
// applied catalog, or for apply the definitions being validated. A command
// works on one catalog, so the engine opened first is the one every later
// call returns.
func (e *env) Offline(feats *spec.Features) (offline.Engine, error) {
	if e.offline != nil {
		return e.offline, nil
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	eng, err := offline.Open(e.ctx, p.Stores.Offline, offline.Options{Features: feats, BaseDir: p.Dir, Logger: e.log, Compute: p.Stores.Compute})
	if err != nil {
		return nil, err
	}
	e.offline = eng
	e.onClose(eng.Close)
	return eng, nil
}

// Online opens the project's online store. With an embedded store another
// process holds open (`atrium serve`), the error wraps online.ErrInUse.
func (e *env) Online() (online.Store, error) {
	if e.online != nil {
		return e.online, nil
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	// The applied feature sets' ttl, for stores that expire rows with it
	// (none before the first apply).
	var ttl map[string]time.Duration
	l, err := loadCatalog(e)
	switch {
	case errors.Is(err, catalog.ErrNotApplied):
	case err != nil:
		return nil, err
	default:
		ttl = make(map[string]time.Duration, len(l.Features.FeatureSets))
		for _, fs := range l.Features.FeatureSets {
			ttl[fs.Name] = fs.TTL.D()
		}
	}
	store, err := online.Open(e.ctx, p.Stores.Online, online.OpenOptions{Logger: e.log, TTL: ttl})
	if err != nil {
		return nil, err
	}
	e.online = store
	e.onClose(store.Close)
	return store, nil
}

// Artifacts opens the project's artifact store.
func (e *env) Artifacts() (artifact.Store, error) {
	if e.artifacts != nil {
		return e.artifacts, nil
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	store, err := artifact.Open(e.ctx, p.Stores.Artifacts)
	if err != nil {
		return nil, err
	}
	e.artifacts = store
	e.onClose(store.Close)
	return store, nil
}
