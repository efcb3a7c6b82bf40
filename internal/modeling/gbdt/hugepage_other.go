//go:build !linux

package gbdt

// adviseHugePages does nothing outside Linux.
func adviseHugePages[T any]([]T) {}
