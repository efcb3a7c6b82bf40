// Package sklearn checks Atrium's modeling library against scikit-learn, run
// from the Python interpreter in $ATRIUM_TEST_PYTHON (.ci/python.sh sets it).
package sklearn

import (
	"os/exec"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/linear/lineartest"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestLinearParity fits scikit-learn's LogisticRegression (lbfgs and saga),
// LinearRegression, Ridge and Lasso on fresh data and checks that Atrium's
// linear models find the same coefficients and predictions to 1e-4, on
// another draw of the data than the copy in internal/modeling/linear/testdata.
func TestLinearParity(t *testing.T) {
	py := interoptest.Python(t, "the scikit-learn interop test")
	dir := t.TempDir()
	// Seed 7: another draw than testdata's.
	out, err := exec.Command(py, "linear_parity.py", dir, "7").CombinedOutput()
	if err != nil {
		t.Fatalf("linear_parity.py: %v\n%s", err, out)
	}
	lineartest.CheckParity(t, dir)
}
