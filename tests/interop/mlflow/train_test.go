package mlflow_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestTrainFlow runs the tiny demo, whose fit step trains the ranker through
// `atrium train` (a 16-trial study), and reads what it wrote with the real
// MLflow client through `atrium serve` (train_flow.py): the parent run and
// its nested child runs (mlflow.parentRunId) with per-iteration metrics and
// trial states, the registered version behind the champion alias with the
// lineage tags, the reference profile, the spec and the LightGBM copy of the
// model, which lightgbm.Booster loads.
func TestTrainFlow(t *testing.T) {
	interoptest.Python(t, "the atrium train interop test", "lightgbm")
	dir := filepath.Join(t.TempDir(), "demo")
	demo := exec.Command(atriumBinary(t), "demo", "--size", "tiny", "--dir", dir)
	out, err := demo.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered  ranker version 1") {
		t.Fatalf("atrium demo: %v\n%s", err, out)
	}
	srv := startAtrium(t, dir)
	runPython(t, srv, "train_flow.py")
}
