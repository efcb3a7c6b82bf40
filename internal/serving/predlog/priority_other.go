//go:build !linux

package predlog

// lowerFlusherPriority does nothing where a thread's scheduling policy
// cannot be set one by one (see priority_linux.go).
func lowerFlusherPriority() {}
