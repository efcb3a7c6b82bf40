// Package interoptest finds the Python interpreter whose packages (the real
// clients and peers: mlflow, feast, lightgbm, xgboost, scikit-learn) the
// interop tests drive. .ci/python.sh creates it from
// tests/interop/requirements.txt and exports its path as PythonEnv.
package interoptest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// PythonEnv names the variable holding the interpreter's path.
const PythonEnv = "ATRIUM_TEST_PYTHON"

// Python returns the interpreter, or skips the test when PythonEnv is unset
// or one of modules does not import; what names the test in the message.
func Python(t testing.TB, what string, modules ...string) string {
	t.Helper()
	py := os.Getenv(PythonEnv)
	if py == "" {
		t.Skipf("%s is not set: skipping %s (`. .ci/python.sh` creates the interop virtualenv and sets it)", PythonEnv, what)
	}
	if len(modules) > 0 {
		if out, err := exec.Command(py, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput(); err != nil {
			t.Skipf("%s cannot import %s (tests/interop/requirements.txt installs them): skipping %s: %v\n%s",
				py, strings.Join(modules, ", "), what, err, out)
		}
	}
	return py
}
