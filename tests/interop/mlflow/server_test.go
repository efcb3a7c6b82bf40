// Package mlflow_test drives a real `atrium serve` with the official mlflow
// Python client (and with plain HTTP where the client would only be slower):
// the user flow of issue 4, concurrent metric logging, and a server killed
// mid-upload. Every test skips when $ATRIUM_TEST_PYTHON is unset
// (`. .ci/python.sh` creates the virtualenv with mlflow and scikit-learn).
package mlflow_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/proctest"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// atriumBinary is cmd/atrium, built once per test run as a user installs it.
func atriumBinary(t *testing.T) string { return proctest.Atrium(t) }

// atriumServer is a running `atrium serve` process.
type atriumServer struct {
	t    *testing.T
	cmd  *exec.Cmd
	URL  string // http://127.0.0.1:port
	repo string
	env  []string
	done chan struct{}
	logs *strings.Builder
	mu   sync.Mutex
}

// startAtrium starts `atrium serve` on a free port for the project in repo
// (created if missing; its data dir holds the SQLite DB and the artifacts unless
// env overrides them) and waits until it is ready. It is killed when the test ends.
func startAtrium(t *testing.T, repo string, env ...string) *atriumServer {
	t.Helper()
	s := &atriumServer{t: t, repo: repo, env: env}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *atriumServer) start() {
	t := s.t
	t.Helper()
	if err := os.MkdirAll(s.repo, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(atriumBinary(t), "serve", "--repo", s.repo, "--addr", "127.0.0.1:0", "--log-level", "info")
	cmd.Env = append(os.Environ(), s.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start atrium serve: %v", err)
	}
	s.cmd, s.done, s.logs = cmd, make(chan struct{}), &strings.Builder{}
	addr := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			if u, ok := strings.CutPrefix(line, "atrium serving on "); ok {
				addr <- u
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case s.URL = <-addr:
	case <-s.done:
		t.Fatalf("atrium serve exited before listening:\n%s", s.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("atrium serve did not listen within 60s:\n%s", s.Logs())
	}
	s.waitReady()
}

func (s *atriumServer) waitReady() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("atrium serve at %s not ready within 30s:\n%s", s.URL, s.Logs())
}

// Logs returns what the server wrote to stderr so far.
func (s *atriumServer) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Kill ends the server with SIGKILL (no shutdown code runs) and waits for it.
func (s *atriumServer) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Restart starts the server again on the same project, on a new port.
func (s *atriumServer) Restart() {
	s.Kill()
	s.start()
}

// Stop ends the server gracefully (SIGTERM), killing it after 10s.
func (s *atriumServer) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
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
