//go:build !linux

package predlog

// lowerFlusherPriority does nothing where threads cannot be reniced one by
// one (see priority_linux.go).
func lowerFlusherPriority() {}
