package modelfile_test

import (
	"path/filepath"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/modelfile/modelfiletest"
)

// Models LightGBM and XGBoost wrote predict in Atrium what those libraries
// predicted, for values at, just above and just below every split
// threshold, its float32 neighbours and values between the threshold and
// its float32 rounding (testdata/thresholds, written by
// tests/interop/modelfile/thresholds.py; regenerate with
// $ATRIUM_TEST_PYTHON ../../../tests/interop/modelfile/thresholds.py testdata/thresholds).
func TestThresholdParity(t *testing.T) {
	dir := filepath.Join("testdata", "thresholds")
	for _, name := range modelfiletest.Cases(t, dir) {
		t.Run(name, func(t *testing.T) { modelfiletest.CheckCase(t, dir, name) })
	}
}
