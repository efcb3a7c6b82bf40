//go:build unix

// Package proctest runs the test binary again as a child process, for tests
// of what a process killed at a chosen point leaves behind: the package's
// TestMain sees an environment variable, does the work and kills itself.
package proctest

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// Run re-executes the test binary with no test selected and env ("K=V")
// added, and reports how the child ended: killed by SIGKILL, or its exit
// code. The test fails if the child could not run at all.
func Run(t testing.TB, env ...string) (killed bool, code int, out []byte) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return false, 0, out
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true, -1, out
	}
	return false, exit.ExitCode(), out
}

// Killed runs the child (see Run) and fails the test unless SIGKILL ended it.
func Killed(t testing.TB, env ...string) {
	t.Helper()
	if killed, code, out := Run(t, env...); !killed {
		t.Fatalf("child process (%v) exited with %d, want it killed\n%s", env, code, out)
	}
}
