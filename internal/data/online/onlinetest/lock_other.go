//go:build !unix

package onlinetest

import "testing"

// LockNode does nothing where flock is not available (see lock_unix.go).
func LockNode(t testing.TB, name string, exclusive bool) {}
