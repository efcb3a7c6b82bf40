//go:build unix

package fs

import (
	"errors"
	"os"
	"syscall"
)

// lockTemp takes an exclusive flock on a temporary file its writer just
// created, held until the writer closes it (after the rename that commits
// it) or dies. flock locks belong to the open file, so the kernel drops the
// lock of a killed process and keeps that of any live one, in this process
// or another sharing the directory.
func lockTemp(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// tempHeld reports whether a writer holds f's lock: false when the lock
// could be taken (it is then held by f until f is closed).
func tempHeld(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}
