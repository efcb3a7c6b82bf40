//go:build unix

package onlinetest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLockNode: a shared hold keeps an exclusive one out until the test
// holding it ends, and shared holds do not exclude each other.
func TestLockNode(t *testing.T) {
	name := filepath.Base(t.TempDir()) // a lock of this test's own
	try := func(how int) error {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "atrium-test-"+name+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(os.TempDir(), "atrium-test-"+name+".lock")) })
	t.Run("shared", func(t *testing.T) {
		LockNode(t, name, false)
		if err := try(unix.LOCK_SH); err != nil {
			t.Errorf("a second shared hold: %v, want it granted", err)
		}
		if err := try(unix.LOCK_EX); !errors.Is(err, unix.EWOULDBLOCK) {
			t.Errorf("an exclusive hold beside a shared one: %v, want EWOULDBLOCK", err)
		}
	})
	if err := try(unix.LOCK_EX); err != nil {
		t.Errorf("an exclusive hold once the test holding the lock ended: %v", err)
	}
}
