//go:build !unix

package duckdb

// lockFile is a no-op where advisory file locks are unavailable: readers and
// writers are then coordinated within one process only.
func lockFile(string, bool) (func(), error) { return func() {}, nil }

// processAlive cannot tell here: staging directories are then never collected
// automatically.
func processAlive(int) bool { return true }
