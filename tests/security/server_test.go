// Package security is the adversarial suite of issue 10: it builds the
// atrium binary, starts `atrium serve` on fresh `atrium init` projects the
// way a user deploys it, and replays the probes of testdata/probes.yaml
// against it as an attacker would, item by item of the OWASP API Security
// Top 10 (2023). docs/security.md ("Adversarial suite") maps each item to
// its probes.
package security

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// atriumBinary is cmd/atrium, built once per test run as a user installs it.
func atriumBinary(t *testing.T) string { return proctest.Atrium(t) }

// cli runs `atrium --repo repo args...` with stdin and fails the test unless
// it exits 0; it returns stdout.
func cli(t *testing.T, repo, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(atriumBinary(t), append([]string{"--repo", repo}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("atrium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// initProject runs `atrium init` in a temporary directory, appends extra to
// its atrium.yaml and registers its feature sets (`atrium apply`).
func initProject(t *testing.T, extra string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "proj")
	out, err := exec.Command(atriumBinary(t), "init", repo).CombinedOutput()
	if err != nil {
		t.Fatalf("atrium init: %v\n%s", err, out)
	}
	f, err := os.OpenFile(filepath.Join(repo, "atrium.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cli(t, repo, "", "apply")
	return repo
}

// serverProc is a running `atrium serve` process.
type serverProc struct {
	URL  string // http(s)://127.0.0.1:port
	Addr string // 127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	logs strings.Builder
}

// startServe starts `atrium serve --repo repo args...` and waits until it
// says where it listens and /readyz answers. It is stopped when the test ends.
func startServe(t *testing.T, repo string, client *http.Client, args ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(atriumBinary(t), append([]string{"serve", "--repo", repo}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start atrium serve: %v", err)
	}
	s := &serverProc{cmd: cmd, done: make(chan struct{})}
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
	t.Cleanup(s.stop)
	select {
	case s.URL = <-addr:
	case <-s.done:
		t.Fatalf("atrium serve exited before listening:\n%s", s.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("atrium serve did not listen within 60s:\n%s", s.Logs())
	}
	_, s.Addr, _ = strings.Cut(s.URL, "://")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("atrium serve at %s not ready within 30s (%v):\n%s", s.URL, err, s.Logs())
		}
	}
}

// Logs returns what the server wrote to stderr so far.
func (s *serverProc) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// stop ends the server with SIGTERM, and SIGKILL after 10 s.
func (s *serverProc) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
