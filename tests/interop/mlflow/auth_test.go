package mlflow_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestAuthWithMLflowClient runs the unchanged mlflow client against a server
// that requires credentials (a token and a user exist): anonymous calls are
// refused, MLFLOW_TRACKING_TOKEN and MLFLOW_TRACKING_USERNAME/PASSWORD (a
// password, or a token as the password) work, and roles are enforced.
func TestAuthWithMLflowClient(t *testing.T) {
	interoptest.Python(t, "the real-mlflow-client test")
	repo := t.TempDir()
	out, err := exec.Command(atriumBinary(t), "--repo", repo, "token", "create", "--name", "ci", "--role", "editor").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(out))
	add := exec.Command(atriumBinary(t), "--repo", repo, "user", "add", "ana", "--role", "reader", "--password-stdin")
	add.Stdin = strings.NewReader("correct horse\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	srv := startAtrium(t, repo)
	runPython(t, srv, "auth_flow.py", token, "ana", "correct horse")
}
