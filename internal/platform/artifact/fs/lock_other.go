//go:build !unix

package fs

import "os"

// lockTemp does nothing where flock is missing: temporary files are then
// swept by age only (StaleTempAge).
func lockTemp(*os.File) error { return nil }

// tempHeld cannot tell here: every file counts as held, so only age sweeps it.
func tempHeld(*os.File) (bool, error) { return true, nil }
