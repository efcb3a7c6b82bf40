// Package mlflow_test drives a real `atrium serve` with the official mlflow
// Python client (and with plain HTTP where the client would only be slower):
// the user flow of issue 4, concurrent metric logging, and a server killed
// mid-upload. Every test skips when $ATRIUM_TEST_PYTHON is unset
// (`. .ci/python.sh` creates the virtualenv with mlflow and scikit-learn).
package mlflow_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/proctest"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// atriumBinary is cmd/atrium, built once per test run as a user installs it.
func atriumBinary(t *testing.T) string { return proctest.Atrium(t) }

// atriumServer is a running `atrium serve` process on a project, which a
// test can kill and start again.
type atriumServer struct {
	*proctest.Server
	t    *testing.T
	repo string
	env  []string
}

// startAtrium starts `atrium serve` on a free port for the project in repo
// (created if missing; its data dir holds the SQLite DB and the artifacts unless
// env overrides them) and waits until it is ready. It is stopped when the test ends.
func startAtrium(t *testing.T, repo string, env ...string) *atriumServer {
	t.Helper()
	s := &atriumServer{t: t, repo: repo, env: env}
	s.start()
	return s
}

func (s *atriumServer) start() {
	s.t.Helper()
	if err := os.MkdirAll(s.repo, 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.Server = proctest.StartServer(s.t, nil, s.env, atriumBinary(s.t), "serve", "--repo", s.repo, "--addr", "127.0.0.1:0", "--log-level", "info")
}

// Restart kills the server and starts it again on the same project, on a
// new port.
func (s *atriumServer) Restart() {
	s.Kill()
	s.start()
}

// runPython runs a script of this directory with the server's URL as
// MLFLOW_TRACKING_URI and fails the test with its output if it fails.
func runPython(t *testing.T, srv *atriumServer, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, interoptest.Python(t, "the real-mlflow-client test"), append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(),
		"MLFLOW_TRACKING_URI="+srv.URL,
		"MLFLOW_HTTP_REQUEST_MAX_RETRIES=0", // a 5xx must fail the test, not be retried away
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1", // no __pycache__ in the source tree
		"GIT_PYTHON_REFRESH=quiet",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n--- script output ---\n%s\n--- atrium serve log ---\n%s", script, strings.Join(args, " "), err, out, srv.Logs())
	}
	t.Logf("%s:\n%s", script, out)
	return string(out)
}
