package mlflow_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestServingFlow runs serving_flow.py: models logged and registered with the
// real mlflow client (LightGBM with a pandas category, XGBoost in mlflow's
// default UBJSON), served through their champion alias and scored with JSON
// and with tritonclient[http], equal to Booster.predict to 1e-6; an alias
// move deploys within 5 s; a scikit-learn pickle is refused by name.
func TestServingFlow(t *testing.T) {
	interoptest.Python(t, "the serving interop test")
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "atrium.yaml"), []byte("serving:\n  poll_interval: 500ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runPython(t, startAtrium(t, repo), "serving_flow.py")
}
