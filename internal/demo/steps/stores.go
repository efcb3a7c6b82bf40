package steps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Stores hands the steps the project's stores. Each method opens its store on
// the first call and returns the same one after: the steps share one online
// store between materialize and the in-process server (an embedded store
// admits one opener per process), one metadata DB and one offline engine.
// The caller closes them, after Run returns.
type Stores interface {
	Project() (*spec.Project, error)
	Meta(ctx context.Context) (*meta.DB, error)
	// Offline opens the engine with the catalog feats on the first call;
	// later calls return that engine whatever feats they pass.
	Offline(ctx context.Context, feats *spec.Features) (offline.Engine, error)
	Online(ctx context.Context) (online.Store, error)
}

// ProjectStores opens the stores of the project in a directory by the URLs of
// its atrium.yaml (and the ATRIUM_* environment overrides). The backends the
// URLs name must be registered by the program (blank imports in cmd/atrium).
// It is not safe for concurrent use.
type ProjectStores struct {
	dir string
	log *slog.Logger

	project *spec.Project
	meta    *meta.DB
	offline offline.Engine
	online  online.Store
}

var _ Stores = (*ProjectStores)(nil)

// NewProjectStores returns the stores of the project in dir, none open yet.
// log receives the offline engine's warnings; nil is slog.Default().
func NewProjectStores(dir string, log *slog.Logger) *ProjectStores {
	if log == nil {
		log = slog.Default()
	}
	return &ProjectStores{dir: dir, log: log}
}

// Project loads the directory's atrium.yaml.
func (s *ProjectStores) Project() (*spec.Project, error) {
	if s.project == nil {
		p, err := spec.LoadProject(s.dir)
		if err != nil {
			return nil, err
		}
		s.project = p
	}
	return s.project, nil
}

// Meta opens the metadata DB (migrated to the newest schema).
func (s *ProjectStores) Meta(ctx context.Context) (*meta.DB, error) {
	if s.meta != nil {
		return s.meta, nil
	}
	p, err := s.Project()
	if err != nil {
		return nil, err
	}
	if s.meta, err = meta.Open(ctx, p.Stores.Meta); err != nil {
		return nil, err
	}
	return s.meta, nil
}

// Offline opens the offline engine with feats (see Stores).
func (s *ProjectStores) Offline(ctx context.Context, feats *spec.Features) (offline.Engine, error) {
	if s.offline != nil {
		return s.offline, nil
	}
	p, err := s.Project()
	if err != nil {
		return nil, err
	}
	if s.offline, err = offline.Open(ctx, p.Stores.Offline, offline.Options{Features: feats, BaseDir: p.Dir, Logger: s.log}); err != nil {
		return nil, err
	}
	return s.offline, nil
}

// Online opens the online store.
func (s *ProjectStores) Online(ctx context.Context) (online.Store, error) {
	if s.online != nil {
		return s.online, nil
	}
	p, err := s.Project()
	if err != nil {
		return nil, err
	}
	if s.online, err = online.Open(ctx, p.Stores.Online); err != nil {
		return nil, err
	}
	return s.online, nil
}

// Close closes every store that was opened, in reverse order of dependence,
// and reports every failure.
func (s *ProjectStores) Close() error {
	var errs []error
	if s.online != nil {
		errs = append(errs, wrapClose("online store", s.online.Close()))
	}
	if s.offline != nil {
		errs = append(errs, wrapClose("offline engine", s.offline.Close()))
	}
	if s.meta != nil {
		errs = append(errs, wrapClose("metadata DB", s.meta.Close()))
	}
	s.online, s.offline, s.meta = nil, nil, nil
	return errors.Join(errs...)
}

func wrapClose(what string, err error) error {
	if err != nil {
		return fmt.Errorf("close the %s: %w", what, err)
	}
	return nil
}
