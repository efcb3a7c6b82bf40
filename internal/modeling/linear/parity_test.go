package linear_test

import (
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/linear/lineartest"
)

// TestSklearnParity compares with scikit-learn's fits precomputed in testdata
// (regenerate: python tests/interop/sklearn/linear_parity.py testdata/sklearn).
func TestSklearnParity(t *testing.T) {
	lineartest.CheckParity(t, "testdata/sklearn")
}
