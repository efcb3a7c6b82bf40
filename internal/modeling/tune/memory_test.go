package tune_test

import (
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunetest"
)

func TestMemoryStorage(t *testing.T) {
	tunetest.Run(t, func(*testing.T) tune.Storage { return tune.NewMemory() })
}
