//go:build unix

package onlinetest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// LockNode keeps a test that pauses or stops a shared server (exclusive)
// apart from the tests of other packages using it (shared): go test runs
// packages in parallel, and CI starts one Cassandra node for all of them
// (a materialization of another package timed out while the fault test had
// the node paused). name names the server; the lock is held until the test
// ends. Tests of one package run one at a time, so a package's own tests
// need no lock; a package that pauses the server must not also take it
// shared (a shared lock then an exclusive one in one process wait for
// each other).
func LockNode(t testing.TB, name string, exclusive bool) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "atrium-test-"+name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() }) // closing the file releases the lock
}
