//go:build !unix

package pipeline

// processAlive cannot tell on this platform: a run recorded as running stays so.
func processAlive(int) bool { return true }
