// Package sklearn checks Atrium's modeling library against scikit-learn, run
// from the Python interpreter in $ATRIUM_TEST_PYTHON (.ci/python.sh sets it).
package sklearn

import (
	"os"
	"os/exec"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/linear/lineartest"
)

// python returns the interpreter with scikit-learn, or skips the test.
func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("ATRIUM_TEST_PYTHON")
	if py == "" {
		t.Skip("ATRIUM_TEST_PYTHON is not set (source .ci/python.sh): skipping the scikit-learn interop test")
	}
	return py
}

// TestLinearParity fits scikit-learn's LogisticRegression (lbfgs and saga),
// LinearRegression, Ridge and Lasso on fresh data and checks that Atrium's
// linear models find the same coefficients and predictions to 1e-4, on
// another draw of the data than the copy in internal/modeling/linear/testdata.
func TestLinearParity(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	// Seed 7: another draw than testdata's.
	out, err := exec.Command(py, "linear_parity.py", dir, "7").CombinedOutput()
	if err != nil {
		t.Fatalf("linear_parity.py: %v\n%s", err, out)
	}
	lineartest.CheckParity(t, dir)
}
