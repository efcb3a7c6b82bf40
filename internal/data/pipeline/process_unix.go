//go:build unix

package pipeline

import (
	"errors"
	"syscall"
)

// ProcessAlive reports whether a process with this pid exists on this host.
// (A reused pid makes a killed run look alive: it then shows "running", as before.)
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
