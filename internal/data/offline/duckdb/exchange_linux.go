//go:build linux

package duckdb

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// exchange atomically puts the directory staged in place of target (creating
// target if it does not exist) and leaves the previous target at staged, for the
// caller to delete. Readers see either the old or the new directory, never none.
func exchange(staged, target string) error {
	err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOENT) {
		if _, statErr := os.Stat(target); errors.Is(statErr, os.ErrNotExist) {
			return os.Rename(staged, target)
		}
	}
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		return exchangeByRenames(staged, target)
	}
	return err
}
