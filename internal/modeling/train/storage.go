package train

import (
	"context"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunedb"
)

// openStorage is the study storage in the metadata database (tunedb; the
// schema is migrated with the others): a killed run's trials are kept, and
// --resume continues them.
func openStorage(_ context.Context, o *Options) (tune.Storage, error) {
	return tunedb.New(o.DB), nil
}
