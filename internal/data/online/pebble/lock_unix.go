//go:build unix

package pebble

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is the file in a store's directory that Open locks.
const lockFile = "ATRIUM.LOCK"

// lockDir takes an exclusive flock on dir's lock file without waiting. flock
// locks belong to the open file, not the process, so a second Open of the
// same directory conflicts whether it comes from another process or this one;
// either way the error wraps ErrLocked. Pebble's own lock (fcntl, per process)
// would only name the conflict in its message text. The lock dies with the
// process, so a killed server leaves nothing to clean up.
func lockDir(dir string) (release func() error, err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%v)", ErrLocked, err)
		}
		return nil, err
	}
	return f.Close, nil // closing the file releases the lock
}
