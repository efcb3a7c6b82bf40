package steps

import (
	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Stores hands the steps the project's stores (cmd/atrium's env for the
// project directory is one). Each method opens its store on the first call,
// bound to the caller's context, and returns the same one after: the steps
// share one online store between materialize and the in-process server (an
// embedded store admits one opener), one metadata DB, migrated to every
// component's schema, and one offline engine. The caller closes them, after
// Run returns.
type Stores interface {
	Project() (*spec.Project, error)
	Meta() (*meta.DB, error)
	// Offline opens the engine with the catalog feats on the first call;
	// later calls return that engine whatever feats they pass.
	Offline(feats *spec.Features) (offline.Engine, error)
	Online() (online.Store, error)
}
