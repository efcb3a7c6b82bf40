//go:build unix

package proctest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WaitStopped waits until the kernel shows every thread of each pid stopped
// (state T or t in /proc) after a SIGSTOP the caller sent: kill(2) only
// queues the signal, which each thread takes when it is next scheduled, so
// on a loaded machine a server could answer one more request after kill
// returned. A process that is gone, or dead and not yet reaped (Z, X: a
// child that exited while its stopped parent cannot reap it), counts as
// stopped. Bounded to 5 s; where
// /proc is not readable it returns at once.
func WaitStopped(t testing.TB, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		for i := 0; !threadsStopped(pid); i++ {
			if i == 500 {
				t.Fatalf("process %d not stopped 5 s after SIGSTOP", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func threadsStopped(pid int) bool {
	stats, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		// "tid (comm) state ...": the name may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		if fields := strings.Fields(rest); len(fields) > 0 && !strings.Contains("TtZX", fields[0]) {
			return false
		}
	}
	return true
}
