//go:build !unix

package pipeline

// ProcessAlive cannot tell on this platform: a run recorded as running stays so.
func ProcessAlive(int) bool { return true }
