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

// TestGrantsWithAuthServiceClient runs MLflow 3's AuthServiceClient against
// atrium serve: an admin grants and revokes a user's permission per
// experiment, asks for the effective one, and the user's own unchanged
// client is held to it.
func TestGrantsWithAuthServiceClient(t *testing.T) {
	py := interoptest.Python(t, "the real-mlflow-client test")
	// The client lives in mlflow's basic-auth app, which needs mlflow[auth]
	// (Flask-WTF) beyond what the interop requirements install.
	if out, err := exec.Command(py, "-c", "import mlflow.server.auth.client").CombinedOutput(); err != nil {
		t.Skipf("mlflow.server.auth.client does not import (install mlflow[auth], or put Flask-WTF on PYTHONPATH): %v\n%s", err, lastLine(out))
	}
	repo := t.TempDir()
	out, err := exec.Command(atriumBinary(t), "--repo", repo, "token", "create", "--name", "root", "--role", "admin").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	add := exec.Command(atriumBinary(t), "--repo", repo, "user", "add", "ana", "--role", "reader", "--password-stdin")
	add.Stdin = strings.NewReader("s3cret ana\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	srv := startAtrium(t, repo)
	runPython(t, srv, "grants_flow.py", strings.TrimSpace(string(out)), "s3cret ana")
}

// lastLine is the last non-empty line of a command's output.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
