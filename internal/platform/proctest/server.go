//go:build unix

package proctest

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running `atrium serve` process.
type Server struct {
	URL  string // http(s)://127.0.0.1:port
	Addr string // 127.0.0.1:port

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	logs strings.Builder
}

// StartServer runs the atrium binary bin with args (a `serve` command line)
// and env added to the test's environment, and waits until it prints where
// it listens and its /readyz answers 200 through client (nil:
// http.DefaultClient, which does not trust a test's TLS certificate). It is
// stopped when the test ends.
func StartServer(t testing.TB, client *http.Client, env []string, bin string, args ...string) *Server {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start atrium %s: %v", strings.Join(args, " "), err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
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
	t.Cleanup(s.Stop)
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
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Stop ends the server gracefully (SIGTERM), killing it after 10 s, and
// waits for it. Stopping a server that has exited does nothing.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
}

// Kill ends the server with SIGKILL (no shutdown code runs) and waits for it.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}
